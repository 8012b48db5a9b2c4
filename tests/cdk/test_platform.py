"""Network, cluster and Airflow: the contract of each platform construct."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from tests.conftest import Synthesized


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def test_vpc_spans_two_azs_with_private_subnets_and_flow_logs(synthesized: Synthesized) -> None:
    template = Template.from_json(synthesized.template("dev", "Network"))
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.has_resource_properties("AWS::EC2::VPC", {"EnableDnsHostnames": True})
    subnets = resources(synthesized.template("dev", "Network"), "AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets)
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"ResourceType": "VPC", "TrafficType": "ALL"}
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "/mlp-dev/vpc-flow-logs",
            "RetentionInDays": 30,
            "KmsKeyId": Match.any_value(),
        },
    )


def test_prod_spans_three_azs(synthesized: Synthesized) -> None:
    subnets = resources(synthesized.template("prod", "Network"), "AWS::EC2::Subnet")
    assert len(subnets) == 3


def test_endpoints_let_tasks_work_without_nat(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "Network")
    assert not resources(template, "AWS::EC2::NatGateway")
    assert not resources(template, "AWS::EC2::InternetGateway")
    services = {
        str(e["Properties"]["ServiceName"]) for e in resources(template, "AWS::EC2::VPCEndpoint")
    }
    for service in (
        "ecr.api",
        "ecr.dkr",
        ".ecs",
        ".logs",
        "secretsmanager",
        ".sts",
        ".s3",
        "airflow.api",
        "airflow.env",
        "airflow.ops",
        ".sqs",
        "monitoring",
        ".kms",
    ):
        assert any(service in s for s in services), (service, services)
    gateway = [
        e
        for e in resources(template, "AWS::EC2::VPCEndpoint")
        if e["Properties"].get("VpcEndpointType") == "Gateway"
    ]
    assert len(gateway) == 1


def test_no_security_group_is_open_to_the_internet(synthesized: Synthesized) -> None:
    for path in synthesized.templates():
        template = json.loads(path.read_text())
        for group in resources(template, "AWS::EC2::SecurityGroup"):
            for rule in group["Properties"].get("SecurityGroupIngress", []):
                assert rule.get("CidrIp") != "0.0.0.0/0", (path.name, rule)
                assert rule.get("CidrIpv6") != "::/0", (path.name, rule)
        for rule in resources(template, "AWS::EC2::SecurityGroupIngress"):
            assert rule["Properties"].get("CidrIp") != "0.0.0.0/0", (path.name, rule)


def test_cluster_has_both_fargate_capacity_providers_and_insights(
    synthesized: Synthesized,
) -> None:
    template = Template.from_json(synthesized.template("dev", "Compute"))
    template.has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "ClusterName": "mlp-dev",
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        },
    )
    template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {"CapacityProviders": Match.array_with(["FARGATE", "FARGATE_SPOT"])},
    )
    Template.from_json(synthesized.template("prod", "Compute")).has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "enhanced"}]},
    )


def test_job_log_key_rotates_and_serves_only_job_log_groups(synthesized: Synthesized) -> None:
    template = Template.from_json(synthesized.template("dev", "Compute"))
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "AllowCloudWatchLogsForPrefix",
                                "Condition": {
                                    "ArnLike": {
                                        "kms:EncryptionContext:aws:logs:arn": {
                                            "Fn::Join": [
                                                "",
                                                Match.array_with([":log-group:/mlp-dev/jobs/*"]),
                                            ]
                                        }
                                    }
                                },
                            }
                        )
                    ]
                )
            },
        },
    )


def test_dag_bucket_is_private_versioned_encrypted_and_ssl_only(
    synthesized: Synthesized,
) -> None:
    template = synthesized.template("dev", "Airflow")
    buckets = resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 2  # DAG bucket and its access-log bucket
    for bucket in buckets:
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    policies = resources(template, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies:
        Template.from_json({"Resources": {"P": policy}}).has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            },
        )


def test_mwaa_environment(synthesized: Synthesized) -> None:
    template = Template.from_json(synthesized.template("prod", "Airflow"))
    log = {"Enabled": True, "LogLevel": "INFO"}
    template.has_resource_properties(
        "AWS::MWAA::Environment",
        {
            "Name": "mlp-prod-airflow",
            "AirflowVersion": "3.3.1",
            "EnvironmentClass": "mw1.medium",
            "WebserverAccessMode": "PRIVATE_ONLY",
            "DagS3Path": "dags",
            "NetworkConfiguration": {
                "SubnetIds": Match.any_value(),
                "SecurityGroupIds": Match.any_value(),
            },
            "LoggingConfiguration": {
                "DagProcessingLogs": log,
                "SchedulerLogs": log,
                "TaskLogs": log,
                "WebserverLogs": log,
                "WorkerLogs": log,
            },
            "AirflowConfigurationOptions": {
                "core.max_map_length": "4096",
                "triggerer.capacity": "1000",
            },
        },
    )
    env = next(iter(template.find_resources("AWS::MWAA::Environment").values()))
    assert len(env["Properties"]["NetworkConfiguration"]["SubnetIds"]) == 2


def test_max_map_length_covers_the_largest_fan_out(synthesized: Synthesized) -> None:
    for env in ("dev", "prod"):
        manifest = synthesized.manifest(env)
        largest = max(
            -(-len(job["partitions"]["values"]) // job["chunk_size"])
            for job in manifest["jobs"]
            if job["partitions"]["kind"] == "static"
        )
        assert largest == 2000
        options = next(
            iter(
                Template.from_json(synthesized.template(env, "Airflow"))
                .find_resources("AWS::MWAA::Environment")
                .values()
            )
        )
        assert (
            int(options["Properties"]["AirflowConfigurationOptions"]["core.max_map_length"])
            >= largest
        )


def test_mwaa_security_group_admits_only_itself(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "Airflow")
    ingress = resources(template, "AWS::EC2::SecurityGroupIngress")
    assert len(ingress) == 1
    rule = ingress[0]["Properties"]
    assert rule["IpProtocol"] == "-1"
    assert rule["SourceSecurityGroupId"] == rule["GroupId"]


def test_mwaa_execution_role_follows_the_user_guide(synthesized: Synthesized) -> None:
    template = Template.from_json(synthesized.template("dev", "Airflow"))
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {
                                "Service": ["airflow-env.amazonaws.com", "airflow.amazonaws.com"]
                            }
                        }
                    )
                ]
            }
        },
    )
    text = str(synthesized.template("dev", "Airflow"))
    for needle in (
        "airflow:PublishMetrics",
        "airflow-celery-*",
        "airflow-mlp-dev-airflow-*",
        "kms:ViaService",
        "s3:ListAllMyBuckets",
    ):
        assert needle in text, needle


def test_dags_and_manifest_are_deployed_to_the_bucket(synthesized: Synthesized) -> None:
    template = Template.from_json(synthesized.template("dev", "Airflow"))
    template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {
            "DestinationBucketKeyPrefix": "dags/",
            "Prune": True,
            "SourceObjectKeys": Match.any_value(),
        },
    )
    deployment = next(iter(template.find_resources("Custom::CDKBucketDeployment").values()))
    assert len(deployment["Properties"]["SourceObjectKeys"]) == 2  # dags/ and manifest.json
    # The manifest's deploy-time values (subnets, security group) are filled in by CDK.
    assert "SourceMarkers" in deployment["Properties"]


def test_pools_are_upserted_in_mwaa_at_deploy_time(synthesized: Synthesized) -> None:
    template = synthesized.template("prod", "Airflow")
    upserts = resources(template, "Custom::AWS")
    assert len(upserts) == 1
    for phase in ("Create", "Update"):
        call = json.loads(upserts[0]["Properties"][phase])
        assert (call["service"], call["action"]) == ("MWAA", "InvokeRestApi")
        assert call["parameters"]["Name"] == "mlp-prod-airflow"
        assert (call["parameters"]["Path"], call["parameters"]["Method"]) == ("/pools", "PATCH")
        (action,) = call["parameters"]["Body"]["actions"]
        assert action["action_on_existence"] == "overwrite"
        assert {(p["name"], p["slots"], p["include_deferred"]) for p in action["entities"]} == {
            ("forecast", 2000, True),
            ("pricing", 150, True),
            ("batch", 50, True),
        }
    # Only after the environment exists, from inside the VPC, as Airflow's Op role only.
    assert any("MwaaEnvironment" in d for d in upserts[0]["DependsOn"])
    # The pools call and the DAG deployment both run inside the VPC.
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) == 2 and all("VpcConfig" in f["Properties"] for f in functions)
    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "airflow:InvokeRestApi"
    ]
    assert len(statements) == 1
    assert statements[0]["Resource"]["Fn::Join"][1][-1] == ":role/mlp-prod-airflow/Op"
