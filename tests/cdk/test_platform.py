"""Network, cluster and Airflow: the contract of each platform construct."""

from __future__ import annotations

import json
import zipfile
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
    template = Template.from_json(synthesized.template("dev", "Airflow"))
    log = {"Enabled": True, "LogLevel": "INFO"}
    template.has_resource_properties(
        "AWS::MWAA::Environment",
        {
            "Name": "mlp-dev-airflow",
            "AirflowVersion": "3.3.1",
            "EnvironmentClass": "mw1.small",
            "WebserverAccessMode": "PUBLIC_ONLY",
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
        template = Template.from_json(synthesized.template(env, "Airflow"))
        mwaa = list(template.find_resources("AWS::MWAA::Environment").values())
        if mwaa:
            options = mwaa[0]["Properties"]["AirflowConfigurationOptions"]
            assert int(options["core.max_map_length"]) >= largest
        else:  # self-hosted: every Airflow container has the option
            definitions = template.find_resources("AWS::ECS::TaskDefinition").values()
            values = {
                variable["Value"]
                for definition in definitions
                for container in definition["Properties"]["ContainerDefinitions"]
                for variable in container["Environment"]
                if variable["Name"] == "AIRFLOW__CORE__MAX_MAP_LENGTH"
            }
            assert len(definitions) == 5 and len(values) == 1
            assert int(values.pop()) >= largest


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


def deployments(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The bucket deployments by destination prefix (dags/, plugins/)."""
    return {
        d["Properties"]["DestinationBucketKeyPrefix"]: d["Properties"]
        for d in resources(template, "Custom::CDKBucketDeployment")
    }


def test_dags_folder_gets_only_the_dag_file_and_the_manifest(
    synthesized: Synthesized,
) -> None:
    dags = deployments(synthesized.template("dev", "Airflow"))["dags/"]
    assert dags["Prune"] is True
    folder_key, _manifest_key = dags["SourceObjectKeys"]  # the dags/ folder, manifest.json
    # The manifest's deploy-time values (subnets, security group) are filled in by CDK.
    assert dags["SourceMarkers"][0] == {} and dags["SourceMarkers"][1]
    staged = synthesized.outdir / f"asset.{folder_key.removesuffix('.zip')}"
    assert sorted(p.name for p in staged.iterdir()) == ["ml_platform_dags.py"]


def test_runtime_package_is_deployed_as_plugins_zip_with_its_version(
    synthesized: Synthesized,
) -> None:
    template = synthesized.template("dev", "Airflow")
    plugins = deployments(template)["plugins/"]
    assert plugins["Extract"] is False and plugins["Prune"] is False
    (key,) = plugins["SourceObjectKeys"]
    with zipfile.ZipFile(synthesized.outdir / f"asset.{key}") as archive:
        names = set(archive.namelist())
    assert {
        ".airflowignore",
        "ml_platform/__init__.py",
        "ml_platform/contract.py",
        "ml_platform/cost.py",
        "ml_platform/factory.py",
        "ml_platform/fargate.py",
        "ml_platform/fleet.py",
        "ml_platform/metrics.py",
        "ml_platform/report.py",
    } == names
    (environment,) = resources(template, "AWS::MWAA::Environment")
    path = environment["Properties"]["PluginsS3Path"]["Fn::Join"][1]
    assert path[0] == "plugins/" and path[1]["Fn::Select"][1]["Fn::GetAtt"][1] == "SourceObjectKeys"
    # The version is the one S3 reports for the key just uploaded (a new key per change).
    version = environment["Properties"]["PluginsS3ObjectVersion"]["Fn::GetAtt"]
    assert version[1] == "VersionId"
    head = template["Resources"][version[0]]
    call = head["Properties"]["Create"]["Fn::Join"][1]
    assert '"action":"headObject","service":"S3"' in call[0]
    assert call[3] == path[1]  # the same key as PluginsS3Path
    assert head["Properties"]["Update"] == head["Properties"]["Create"]


def test_mwaa_is_created_after_its_execution_role_policy(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "Airflow")
    (environment,) = [
        name for name, r in template["Resources"].items() if r["Type"] == "AWS::MWAA::Environment"
    ]
    role = template["Resources"][environment]["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    policies = [
        name
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    ]
    assert policies and set(policies) <= set(template["Resources"][environment]["DependsOn"])


def test_pools_are_upserted_and_read_back_at_deploy_time(synthesized: Synthesized) -> None:
    template = synthesized.template("dev", "Airflow")
    (upsert,) = resources(template, "Custom::AirflowPools")
    assert upsert["Properties"]["EnvironmentName"] == "mlp-dev-airflow"
    assert json.loads(upsert["Properties"]["Pools"]) == [
        {"name": "forecast", "slots": 50, "description": "Location forecast Fargate tasks",
         "include_deferred": True},
        {"name": "pricing", "slots": 20, "description": "Dynamic pricing Fargate tasks",
         "include_deferred": True},
        {"name": "batch", "slots": 10, "description": "Everything else", "include_deferred": True},
    ]  # fmt: skip
    # The same pools as the manifest the DAGs read.
    assert json.loads(upsert["Properties"]["Pools"]) == synthesized.manifest("dev")["pools"]
    # Only after the environment exists.
    assert any("MwaaEnvironment" in d for d in upsert["DependsOn"])
    handlers = [
        f for f in resources(template, "AWS::Lambda::Function")
        if f["Properties"].get("Handler") == "index.on_event"
    ]  # fmt: skip
    assert len(handlers) == 1 and "VpcConfig" in handlers[0]["Properties"]
    statements = [
        s
        for p in resources(template, "AWS::IAM::Policy")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "airflow:InvokeRestApi"
    ]
    # The pools Lambda as Op; the execution role (run notes) as User, which cannot edit pools.
    roles = sorted(s["Resource"]["Fn::Join"][1][-1] for s in statements)
    assert roles == [":role/mlp-dev-airflow/Op", ":role/mlp-dev-airflow/User"]
