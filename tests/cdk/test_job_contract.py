"""What one MlJob gives its user, read from the real synthesized app."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from constructs_lib.job import JobConfigError, JobImage, MlJob, Partitions
from tests.conftest import Synthesized, make_bench


def pricing(synthesized: Synthesized) -> tuple[Template, MlJob, cdk.Stack]:
    stack = synthesized.stages["dev"].job_stacks["pricing"]
    job = stack.node.find_child("DynamicPricing")
    return Template.from_json(synthesized.template("dev", "Jobs-pricing")), job, stack


def logical_id(stack: cdk.Stack, construct: Any) -> str:
    return stack.get_logical_id(construct.node.default_child)


def test_task_definition_family_size_and_roles(synthesized: Synthesized) -> None:
    template, job, stack = pricing(synthesized)
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Family": "mlp-dev-dynamic-pricing",
            "Cpu": "256",
            "Memory": "512",
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
            "TaskRoleArn": {"Fn::GetAtt": [logical_id(stack, job.task_role), "Arn"]},
            "ExecutionRoleArn": {"Fn::GetAtt": [logical_id(stack, job.execution_role), "Arn"]},
        },
    )


def test_container_logs_to_the_jobs_own_log_group(synthesized: Synthesized) -> None:
    template, job, stack = pricing(synthesized)
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": [
                Match.object_like(
                    {
                        "Name": "model",
                        "Memory": 512,
                        "Environment": Match.array_with(
                            [{"Name": "ML_JOB_NAME", "Value": "dynamic-pricing"}]
                        ),
                        "LogConfiguration": {
                            "LogDriver": "awslogs",
                            "Options": {
                                "awslogs-group": {"Ref": logical_id(stack, job.log_group)},
                                "awslogs-stream-prefix": "job",
                                "awslogs-region": {"Ref": "AWS::Region"},
                            },
                        },
                    }
                )
            ]
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "/mlp-dev/jobs/dynamic-pricing",
            "RetentionInDays": 14,
            "KmsKeyId": Match.any_value(),
        },
    )


def test_task_role_has_no_permissions_unless_granted(synthesized: Synthesized) -> None:
    template, job, stack = pricing(synthesized)
    role_id = logical_id(stack, job.task_role)
    attached = [
        policy
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    ]
    assert attached == []
    role = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role


def test_grants_to_the_job_reach_its_task_role_only() -> None:
    bench = make_bench()
    stack = bench.jobs_stack()
    bucket = s3.Bucket(stack, "Features")
    job = MlJob(
        stack,
        "Job",
        platform=bench.platform,
        name="reader",
        team="t",
        image=JobImage.from_model("dynamic_pricing"),
    )
    bucket.grant_read(job)
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": logical_id(stack, job.task_role)}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": Match.array_with(["s3:GetObject*"])})]
                )
            },
        },
    )


def test_cost_tags_on_every_resource_of_the_job(synthesized: Synthesized) -> None:
    template, _, _ = pricing(synthesized)
    for kind in ("AWS::ECS::TaskDefinition", "AWS::Logs::LogGroup", "AWS::IAM::Role"):
        for resource in template.find_resources(kind).values():
            tags = {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}
            assert (
                tags
                | {
                    "team": "pricing",
                    "job": "dynamic-pricing",
                    "cost-center": "cc-2001",
                    "project": "ml-platform",
                    "environment": "dev",
                }
                == tags
            ), (kind, tags)


def test_a_jobs_names_lie_under_what_the_platform_grants_airflow(
    synthesized: Synthesized,
) -> None:
    # Airflow may run, pass and read what lies under these (JobPlatform.grant_run_jobs);
    # a job named outside them could not be launched.
    platform = synthesized.stages["dev"].platform
    for job in platform.jobs:
        assert job.family.startswith(platform.family_prefix)
        assert job.log_group_name.startswith(platform.log_group_prefix)
        for role in (job.task_role, job.execution_role):
            role_resource = role.node.default_child
            assert cdk.Stack.of(role).resolve(role_resource.path) == platform.role_path


def test_manifest_entry_of_a_job(synthesized: Synthesized) -> None:
    entry = next(j for j in synthesized.manifest("dev")["jobs"] if j["name"] == "dynamic-pricing")
    assert entry["task_definition_family"] == "mlp-dev-dynamic-pricing"
    assert entry["container_name"] == "model"
    assert entry["logs"] == {"group": "/mlp-dev/jobs/dynamic-pricing", "stream_prefix": "job"}
    assert entry["schedule"] == "@hourly"
    assert entry["pool"] == "pricing"
    assert entry["capacity"] == "on-demand"
    assert len(entry["partitions"]["values"]) == 120
    assert entry["retry"] == {
        "retries": 3,
        "delay_seconds": 60,
        "exponential_backoff": True,
        "max_delay_seconds": 1800,
    }
    assert entry["execution_timeout_seconds"] == 900
    assert entry["tags"]["team"] == "pricing" and entry["tags"]["environment"] == "dev"


def test_defaults_come_from_the_environment(synthesized: Synthesized) -> None:
    dev = {j["name"]: j for j in synthesized.manifest("dev")["jobs"]}
    prod = {j["name"]: j for j in synthesized.manifest("prod")["jobs"]}
    # The anomaly detector names no pool and no capacity.
    assert dev["anomaly-detector"]["pool"] == "batch"
    assert dev["anomaly-detector"]["capacity"] == "spot"
    assert prod["anomaly-detector"]["capacity"] == "spot-with-fallback"


def test_s3_partitions_are_granted_to_airflow() -> None:
    bench = make_bench()
    stack = bench.jobs_stack()
    bucket = s3.Bucket(stack, "Partitions")
    job = MlJob(
        stack,
        "Job",
        platform=bench.platform,
        name="s3-parts",
        team="t",
        image=JobImage.from_model("dynamic_pricing"),
        partitions=Partitions.from_s3(bucket, "lists/sensors.json"),
    )
    role = cdk.aws_iam.Role(
        stack, "Orchestrator", assumed_by=cdk.aws_iam.ServicePrincipal("airflow.amazonaws.com")
    )
    job.grant_run(role)
    assert job.manifest_entry()["partitions"]["kind"] == "s3"
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": Match.array_with(["s3:GetObject*"]),
                                "Resource": Match.array_with(
                                    [
                                        {
                                            "Fn::Join": [
                                                "",
                                                [
                                                    {"Fn::GetAtt": [Match.any_value(), "Arn"]},
                                                    "/lists/sensors.json",
                                                ],
                                            ]
                                        }
                                    ]
                                ),
                            }
                        )
                    ]
                )
            }
        },
    )


def test_grant_read_objects_is_narrow_and_needs_a_reason() -> None:
    bench = make_bench()
    stack = bench.jobs_stack()
    bucket = s3.Bucket(stack, "Features")
    job = MlJob(
        stack,
        "Job",
        platform=bench.platform,
        name="narrow-reader",
        team="t",
        image=JobImage.from_model("dynamic_pricing"),
    )
    job.grant_read_objects(bucket, "features/*", reason="Reads the features it scores.")
    job.grant_write_objects(bucket, "scores/*", reason="Writes one score file per chunk.")
    template = Template.from_stack(stack)
    statements = next(iter(template.find_resources("AWS::IAM::Policy").values()))["Properties"][
        "PolicyDocument"
    ]["Statement"]
    by_action = {json_key(s["Action"]): s for s in statements}
    assert by_action["s3:GetObject"]["Resource"]["Fn::Join"][1][-1] == "/features/*"
    assert by_action["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["features/*"]}}
    assert by_action["s3:AbortMultipartUpload,s3:PutObject"]["Resource"]["Fn::Join"][1][-1] == (
        "/scores/*"
    )
    with pytest.raises(JobConfigError, match="field 'reason'"):
        job.grant_read_objects(bucket, "*", reason="")


def json_key(action: str | list[str]) -> str:
    return ",".join(sorted(action)) if isinstance(action, list) else action
