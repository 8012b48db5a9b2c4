"""Builds the CDK app: one PlatformStage per environment, cdk-nag on all of them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from config.model import EnvironmentConfig
from stacks.platform_stage import JobGroup, PlatformStage

#: Feature flags, here rather than in cdk.json so tests synthesize what the CLI does.
FEATURE_FLAGS: dict[str, Any] = {
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/aws-ecs:arnFormatIncludesClusterName": True,
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-ec2:restrictDefaultSecurityGroup": True,
}
#: Where the synth-time manifest copies go, per environment (relative to cdk.out).
MANIFEST_DIR = "manifests"


def build_app(
    environments: Mapping[str, EnvironmentConfig],
    job_groups: Mapping[str, JobGroup],
    *,
    outdir: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> tuple[cdk.App, dict[str, PlatformStage]]:
    app = cdk.App(outdir=outdir, context={**FEATURE_FLAGS, **(context or {})})
    stages = {
        name: PlatformStage(app, config=config, job_groups=job_groups)
        for name, config in environments.items()
    }
    # Findings are errors: synth fails on any finding not acknowledged with a reason.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stages


def synth(app: cdk.App, stages: Mapping[str, PlatformStage]) -> cdk.cx_api.CloudAssembly:
    """Synthesize, then write each environment's manifest to cdk.out/manifests/<env>.json."""
    assembly = app.synth()
    directory = Path(assembly.directory) / MANIFEST_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for name, stage in stages.items():
        (directory / f"{name}.json").write_text(
            json.dumps(stage.manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return assembly
