"""Builds an environment's platform in the local endpoint from what `make synth` wrote.

Reads ``cdk.out/manifests/<env>.json`` and the job stacks' templates, creates the VPC,
subnets, security group, cluster, log groups and task definitions in moto, and returns
the manifest with its deploy-time placeholders filled in with the local ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ml_platform.contract import parse_manifest
from simulator.containers import BuildSource, Engine
from simulator.fargate import DEFAULT_ACCOUNT_ID, ContainerBehaviour, ModelContainer, Scripted

# moto accepts any credentials; these never leave 127.0.0.1.
ACCESS_KEY = SECRET_KEY = "testing"


def airflow_connection(endpoint_url: str, region: str) -> str:
    """An Airflow AWS connection (for ``AIRFLOW_CONN_<ID>``) pointing at the local endpoint.

    Differs from AWS in one setting: MWAA's InvokeRestApi prefixes the host with the
    environment's name (``<env>.airflow...``); 127.0.0.1 has no such names, so the prefix
    is left out (``inject_host_prefix``). On AWS the default connection keeps it."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {
                "endpoint_url": endpoint_url,
                "region_name": region,
                "config_kwargs": {"inject_host_prefix": False},
            },
        }
    )


def client(service: str, endpoint_url: str, region: str, *, config: Config | None = None) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=region
    )
    return session.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint_url, config=config
    )


@dataclass(frozen=True)
class DeployedAirflow:
    """What ``cdk deploy`` hands MWAA, read from the synthesized Airflow template."""

    environment_name: str
    airflow_version: str
    #: The staged DAG asset: what the deployment syncs into the bucket's ``dags/``.
    dags: Path
    #: The staged ``plugins.zip``, byte for byte what is uploaded.
    plugins_zip: Path


def deployed_airflow(cdk_out: Path, env: str) -> DeployedAirflow:
    template = next((cdk_out / f"assembly-{env}").glob(f"{env}Airflow*.template.json"))
    resources = json.loads(template.read_text())["Resources"].values()
    environment = next(r for r in resources if r["Type"] == "AWS::MWAA::Environment")
    staged: dict[str, Path] = {}
    for resource in resources:
        if resource["Type"] == "Custom::CDKBucketDeployment":
            prefix = resource["Properties"]["DestinationBucketKeyPrefix"].rstrip("/")
            # The first source is the folder or file asset; a dags/ deployment's second
            # source is the manifest, which the harness writes itself (localized).
            key = resource["Properties"]["SourceObjectKeys"][0]
            asset = cdk_out / f"asset.{key.removesuffix('.zip')}"
            staged[prefix] = asset if asset.is_dir() else cdk_out / f"asset.{key}"
    return DeployedAirflow(
        environment_name=environment["Properties"]["Name"],
        airflow_version=environment["Properties"]["AirflowVersion"],
        dags=staged["dags"],
        plugins_zip=staged["plugins"],
    )


def _local_secrets(container: dict[str, Any], region: str) -> list[dict[str, str]]:
    """The container's secrets whose references can be spelled locally (the rest would
    name resources of the real account)."""
    out = []
    for secret in container.get("Secrets", []):
        value_from = _local_value(secret["ValueFrom"], region, DEFAULT_ACCOUNT_ID)
        if value_from is not None:
            out.append({"name": secret["Name"], "valueFrom": value_from})
    return out


def _task_definitions(cdk_out: Path, env: str) -> dict[str, dict[str, Any]]:
    """Task definition properties by family, from the synthesized templates."""
    found = {}
    for template in (cdk_out / f"assembly-{env}").glob("*.template.json"):
        for resource in json.loads(template.read_text())["Resources"].values():
            if resource["Type"] == "AWS::ECS::TaskDefinition":
                found[resource["Properties"]["Family"]] = resource["Properties"]
    return found


def bootstrap(cdk_out: Path, env: str, endpoint_url: str, region: str) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((cdk_out / "manifests" / f"{env}.json").read_text())
    ec2 = client("ec2", endpoint_url, region)
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.40.{i * 16}.0/20", AvailabilityZone=f"{region}{zone}"
        )["Subnet"]["SubnetId"]
        # As many as the environment spreads its tasks over (one per AZ).
        for i, zone in enumerate("abcdef"[: len(manifest["network"]["subnets"])])
    ]
    group = ec2.create_security_group(GroupName="ml-jobs", Description="ML job tasks", VpcId=vpc)[
        "GroupId"
    ]
    ecs = client("ecs", endpoint_url, region)
    ecs.create_cluster(
        clusterName=manifest["cluster"], capacityProviders=["FARGATE", "FARGATE_SPOT"]
    )
    logs = client("logs", endpoint_url, region)
    definitions = _task_definitions(cdk_out, env)
    for job in manifest["jobs"]:
        props = definitions[job["task_definition_family"]]
        container = props["ContainerDefinitions"][0]
        logs.create_log_group(logGroupName=job["logs"]["group"])
        ecs.register_task_definition(
            family=job["task_definition_family"],
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu=props["Cpu"],
            memory=props["Memory"],
            containerDefinitions=[
                {
                    "name": container["Name"],
                    "image": job["image"],
                    "essential": True,
                    "memory": container["Memory"],
                    "command": container.get("Command", []),
                    "environment": [
                        {"name": e["Name"], "value": e["Value"]}
                        for e in container.get("Environment", [])
                    ],
                    "secrets": _local_secrets(container, region),
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": job["logs"]["group"],
                            "awslogs-stream-prefix": job["logs"]["stream_prefix"],
                            "awslogs-region": region,
                        },
                    },
                }
            ],
        )
    manifest["region"] = region
    manifest["network"]["subnets"] = subnets
    manifest["network"]["security_groups"] = [group]
    parse_manifest(manifest, source=f"local manifest of {env!r}")
    return manifest


def model_behaviours(
    manifest: dict[str, Any],
    cdk_out: Path,
    env: str,
    *,
    min_seconds: float = 0.0,
    engine: Engine | None = None,
) -> dict[str, ContainerBehaviour]:
    """Each family runs its real image as a container, built from the image asset that
    ``cdk deploy`` would publish (cached: unchanged, a rebuild takes about a second).

    A job whose image is already in a registry (``JobImage.from_ecr``) cannot be pulled
    here (no registry is reachable), so it runs a scripted container instead.
    """
    engine = engine or Engine.detect()
    definitions = _task_definitions(cdk_out, env)
    built: dict[str, str] = {}
    behaviours: dict[str, ContainerBehaviour] = {}
    for job in manifest["jobs"]:
        family = job["task_definition_family"]
        image = definitions[family]["ContainerDefinitions"][0]["Image"]
        asset = _asset_hash(image)
        if asset is None:
            behaviours[family] = Scripted(seconds=min_seconds or 1.0)
            continue
        if asset not in built:
            source = BuildSource.from_assembly(cdk_out, asset)
            built[asset] = engine.build(source, f"localhost/ml-platform-job/{asset[:16]}")
        behaviours[family] = ModelContainer(
            engine,
            built[asset],
            cpu_units=int(definitions[family]["Cpu"]),
            memory_mib=int(definitions[family]["Memory"]),
            min_seconds=min_seconds,
        )
    return behaviours


def _asset_hash(image: Any) -> str | None:
    """The asset hash of a CDK image asset's URI (``...container-assets-...:<hash>``)."""
    uri = image.get("Fn::Sub", "") if isinstance(image, dict) else ""
    return uri.rsplit(":", 1)[-1] if "container-assets" in uri else None


def _local_value(value: Any, region: str, account: str) -> str | None:
    """A template value spelled with this endpoint's account and region, if it only
    depends on those (a secret's ARN from ``Secret.from_secret_name_v2``)."""
    pseudo = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account,
              "AWS::URLSuffix": "amazonaws.com"}  # fmt: skip
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return pseudo.get(value["Ref"])
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        spelled = [_local_value(part, region, account) for part in parts]
        return None if None in spelled else separator.join(s for s in spelled if s is not None)
    return None


def bootstrap_family(
    endpoint_url: str,
    region: str,
    *,
    cluster: str,
    family: str,
    log_group: str,
    stream_prefix: str = "job",
) -> dict[str, Any]:
    """One cluster, one task definition and a network: enough for benchmarks and tests."""
    ec2 = client("ec2", endpoint_url, region)
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.0.0/20", AvailabilityZone=f"{region}a")[
        "Subnet"
    ]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{family}-sg", Description="tasks", VpcId=vpc)[
        "GroupId"
    ]
    ecs = client("ecs", endpoint_url, region)
    ecs.create_cluster(clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    client("logs", endpoint_url, region).create_log_group(logGroupName=log_group)
    ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "model",
                "image": "model:latest",
                "essential": True,
                "memory": 512,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": log_group,
                        "awslogs-stream-prefix": stream_prefix,
                        "awslogs-region": region,
                    },
                },
            }
        ],
    )
    return {"subnets": [subnet], "security_groups": [group]}
