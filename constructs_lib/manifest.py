"""Builds the job manifest of one environment from its platform and jobs.

Two copies: ``deployed`` keeps deploy-time values as CloudFormation tokens (CDK fills
them in when it writes the file to the DAG bucket); ``local`` replaces each token with
its ``Fn::Sub`` spelling (``${LogicalId}``, ``${AWS::Region}``) so that tests and local
runs can read it from ``cdk.out/manifests/<env>.json`` without AWS.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aws_cdk as cdk

from config.model import MwaaConfig
from config.prices import fargate_prices
from constructs_lib.job import JobPlatform
from ml_platform.contract import SCHEMA_VERSION, parse_manifest


def build_manifest(platform: JobPlatform) -> dict[str, Any]:
    """The manifest with tokens; its shape is ``ml_platform.contract.Manifest``."""
    env = platform.environment
    return {
        "schema_version": SCHEMA_VERSION,
        "environment": env.name,
        "region": env.region or cdk.Aws.REGION,
        "cluster": env.prefix,
        "network": {
            "subnets": [subnet.subnet_id for subnet in platform.task_subnets],
            "security_groups": [platform.task_security_group.security_group_id],
            "assign_public_ip": False,
        },
        "max_map_length": env.airflow.max_map_length,
        # Each triggerer spends its share of the environment's budget.
        "fleet": env.ecs_budget.share(env.airflow.triggerers).to_dict(),
        "prices": fargate_prices(env.region),
        "observability": {
            "namespace": env.metrics_namespace,
            "mwaa_environment": env.airflow_name if isinstance(env.airflow, MwaaConfig) else None,
        },
        "pools": [dataclasses.asdict(pool) for pool in env.pools],
        "jobs": [job.manifest_entry() for job in platform.jobs],
    }


def _sub(intrinsic: Any) -> str:
    """Spell a resolved CloudFormation value the way Fn::Sub would."""
    if isinstance(intrinsic, str):
        return intrinsic
    if isinstance(intrinsic, dict) and len(intrinsic) == 1:
        ((fn, arg),) = intrinsic.items()
        if fn == "Ref":
            return f"${{{arg}}}"
        if fn == "Fn::GetAtt":
            return f"${{{arg[0]}.{arg[1]}}}"
        if fn == "Fn::Join" and arg[0] == "":
            return "".join(_sub(part) for part in arg[1])
    return "${" + json.dumps(intrinsic, sort_keys=True, separators=(",", ":")) + "}"


def localize(value: Any, stack: cdk.Stack) -> Any:
    """Replace every token in ``value`` with its Fn::Sub spelling."""
    if isinstance(value, dict):
        return {key: localize(item, stack) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [localize(item, stack) for item in value]
    # Only strings with a token marker can hold one; asking jsii of every string is slow.
    if isinstance(value, str) and "{Token[" in value and cdk.Token.is_unresolved(value):
        return _sub(stack.resolve(value))
    return value


def deploy_time_values(deployed: Any, local: Any) -> dict[str, str]:
    """Each placeholder of the local copy, without its ``${`` ``}`` (``LogicalId``,
    ``AWS::Region``) -> its token in ``deployed``.

    What an image that bakes the local copy needs at start to fill the placeholders in
    (CloudFormation resolves the tokens when they travel as environment variables; a
    ``${...}`` spelled in a template would read as an Fn::Sub that is not one).
    """
    if isinstance(deployed, dict):
        return {
            k: v
            for key in deployed
            for k, v in deploy_time_values(deployed[key], local[key]).items()
        }
    if isinstance(deployed, list | tuple):
        return {
            k: v
            for d, lo in zip(deployed, local, strict=True)
            for k, v in deploy_time_values(d, lo).items()
        }
    if isinstance(deployed, str) and deployed != local:
        if not (local.startswith("${") and local.endswith("}")):
            raise ValueError(f"a deploy-time value inside a longer string: {local!r}")
        return {local[2:-1]: deployed}
    return {}


def local_manifest(platform: JobPlatform) -> dict[str, Any]:
    """The synth-time copy, checked against the schema the DAG side uses."""
    manifest: dict[str, Any] = localize(build_manifest(platform), cdk.Stack.of(platform.cluster))
    parse_manifest(manifest, source=f"manifest of environment {platform.environment.name!r}")
    return manifest
