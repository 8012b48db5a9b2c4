"""Builds the CDK app: one PlatformStage per environment, cdk-nag's AwsSolutions and
NIST 800-53 rev 5 packs on all of them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from config.model import EnvironmentConfig
from constructs_lib.job_placement import StackPlacement
from stacks.findings import NagFindings, raise_on_findings
from stacks.platform_stage import JobGroup, PlatformStage
from stacks.quotas import check_assembly

#: Feature flags, here rather than in cdk.json so tests synthesize what the CLI does.
FEATURE_FLAGS: dict[str, Any] = {
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/aws-ecs:arnFormatIncludesClusterName": True,
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-ec2:restrictDefaultSecurityGroup": True,
}
#: CDK's own 500-resource check names no job; stacks/quotas.py checks it, and the rest.
QUOTA_CONTEXT: dict[str, Any] = {"@aws-cdk/core:stackResourceLimit": 0}
#: Where the synth-time manifest copies go, per environment (relative to cdk.out).
MANIFEST_DIR = "manifests"
#: Per environment: the busy minutes of the launch plan (constructs_lib/launch_plan.py).
PLAN_DIR = "launch-plans"
#: cdk-nag's findings, written by CDK when validation fails; kept for the user.
VALIDATION_REPORT = "validation-report.json"


class PlatformApp(cdk.App):
    """An app that builds in a private staging directory and publishes only a whole,
    valid assembly: a refused declaration or a cdk-nag finding leaves nothing half-written
    (CDK copies assets while constructs are created, before any check has run)."""

    def __init__(self, *, publish_to: Path | None, context: Mapping[str, Any]) -> None:
        self.staging = Path(tempfile.mkdtemp(prefix="mlp-synth-"))
        self.publish_to = publish_to
        super().__init__(outdir=str(self.staging), context=dict(context))

    def discard(self, *, keep: tuple[str, ...] = ()) -> None:
        """Drop the staging directory, publishing only the named reports."""
        if self.publish_to is not None:
            for name in keep:
                if (self.staging / name).is_file():
                    self.publish_to.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(self.staging / name, self.publish_to / name)
        shutil.rmtree(self.staging, ignore_errors=True)

    def publish(self) -> Path:
        """Move the assembly to its destination; return where it is."""
        if self.publish_to is None:
            return self.staging  # no destination asked for: stays in its temporary directory
        shutil.copytree(self.staging, self.publish_to, dirs_exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        return self.publish_to


def build_app(
    environments: Mapping[str, EnvironmentConfig],
    job_groups: Mapping[str, JobGroup],
    *,
    placement: StackPlacement | None = None,
    outdir: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> tuple[PlatformApp, dict[str, PlatformStage]]:
    """:param placement: each job's stack in its group (``jobs/stacks.json``); default:
        none recorded yet, so every job is placed afresh.
    :param outdir: where the assembly goes; default: the CLI's CDK_OUTDIR."""
    target = outdir or os.environ.get("CDK_OUTDIR")
    app = PlatformApp(
        publish_to=Path(target) if target else None,
        context={**FEATURE_FLAGS, **QUOTA_CONTEXT, **(context or {})},
    )
    placement = placement or StackPlacement()  # one for all environments
    try:
        stages = {
            name: PlatformStage(app, config=config, job_groups=job_groups, placement=placement)
            for name, config in environments.items()
        }
    except BaseException:
        app.discard()
        raise
    # Findings are errors: synth fails on any finding not acknowledged with a reason.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))
    return app, stages


def synth(app: PlatformApp, stages: Mapping[str, PlatformStage]) -> Path:
    """Synthesize, write each environment's manifest to manifests/<env>.json, publish.

    Any cdk-nag finding refuses the whole assembly (``NagFindings``, one line each); only
    the validation report is published then. So does a template that CloudFormation or
    IAM would refuse at deploy (``QuotaExceeded``).
    """
    report = app.staging / VALIDATION_REPORT
    shown_as = (app.publish_to or app.staging) / VALIDATION_REPORT
    try:
        assembly = app.synth()
        raise_on_findings(report, shown_as)
        check_assembly(Path(assembly.directory))
    except BaseException as error:
        app.discard(keep=(VALIDATION_REPORT,))
        if not isinstance(error, NagFindings) and report.is_file():
            raise_on_findings(shown_as, shown_as)  # CDK's own ValidationFailed, explained
        raise
    directory = Path(assembly.directory) / MANIFEST_DIR
    directory.mkdir(parents=True, exist_ok=True)
    plans = Path(assembly.directory) / PLAN_DIR
    plans.mkdir(parents=True, exist_ok=True)
    for name, stage in stages.items():
        (directory / f"{name}.json").write_text(
            json.dumps(stage.manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        (plans / f"{name}.json").write_text(
            json.dumps([minute.to_dict() for minute in stage.launch_plan], indent=2) + "\n",
            encoding="utf-8",
        )
    return app.publish()
