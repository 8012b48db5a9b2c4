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
        image=JobImage.from_directory("models/dynamic_pricing"),
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


def _airflow_statements(synthesized: Synthesized, env: str) -> list[dict[str, Any]]:
    template = synthesized.template(env, "Airflow")
    return [
        statement
        for policy in template["Resources"].values()
        if policy["Type"] == "AWS::IAM::Policy"
        and "ExecutionRole" in str(policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_airflow_runs_exactly_the_declared_families_on_the_cluster(
    synthesized: Synthesized,
) -> None:
    run = [s for s in _airflow_statements(synthesized, "dev") if "ecs:RunTask" in _actions(s)]
    assert len(run) == 1
    assert list(run[0]["Condition"]["ArnEquals"]) == ["ecs:cluster"]
    families = sorted(str(r) for r in run[0]["Resource"])
    assert len(families) == len(synthesized.manifest("dev")["jobs"])
    for family in (
        "mlp-dev-location-forecast",
        "mlp-dev-dynamic-pricing",
        "mlp-dev-anomaly-detector",
    ):
        assert any(f"task-definition/{family}:*" in r for r in families), families


def test_airflow_passes_only_the_jobs_roles_to_ecs(synthesized: Synthesized) -> None:
    passes = [s for s in _airflow_statements(synthesized, "dev") if "iam:PassRole" in _actions(s)]
    assert passes
    for statement in passes:
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        }
    roles = [r for s in passes for r in s["Resource"]]
    # Two roles per job (task, execution), each imported from its job stack.
    assert len(roles) == 2 * len(synthesized.manifest("dev")["jobs"])
    assert all("Fn::ImportValue" in role for role in roles)


def test_airflow_reads_only_the_jobs_log_groups(synthesized: Synthesized) -> None:
    reads = [
        s for s in _airflow_statements(synthesized, "dev") if "logs:GetLogEvents" in _actions(s)
    ]
    text = str(reads)
    for job in ("location-forecast", "dynamic-pricing", "anomaly-detector"):
        assert f"log-group:/mlp-dev/jobs/{job}" in text
    groups = [
        r
        for s in reads
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    # MWAA's own log statement aside, every log resource is one of the jobs' groups.
    job_groups = [g for g in groups if "airflow-mlp-dev" not in str(g)]
    assert all("/mlp-dev/jobs/" in str(g) for g in job_groups), job_groups


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
        image=JobImage.from_directory("models/dynamic_pricing"),
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
        image=JobImage.from_directory("models/dynamic_pricing"),
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
