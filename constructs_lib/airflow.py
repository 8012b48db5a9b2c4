"""Amazon MWAA: the DAG bucket, the environment, its execution role, the deployment of the
DAGs (``dags/``) and of the runtime package (``plugins.zip``), and the pools."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_mwaa as mwaa
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from config.model import MwaaConfig
from constructs_lib.acknowledgements import (
    DEPLOY_TIME_HANDLER_SKIPS,
    NIST,
    ONE_ROLE_POLICY,
    acknowledge,
    cdk_provider_functions,
    ignore_lint_in_cdk_provider,
    lint_ignore,
    skip_checkov,
    skip_checkov_in_cdk_provider,
)
from constructs_lib.plugins_bundle import build_plugins_zip
from ml_platform.contract import Pool

MANIFEST_KEY = "manifest.json"
DAGS_PREFIX = "dags/"
PLUGINS_PREFIX = "plugins/"
POOLS_HANDLER = Path(__file__).resolve().parent / "handlers" / "airflow_pools"
# Local leftovers that must never reach the DAG bucket.
_DAG_EXCLUDES = ["**/__pycache__/**", "*.pyc", MANIFEST_KEY]
#: Construct id of CDK's singleton AwsCustomResource handler, at the stack root.
AWS_CUSTOM_RESOURCE_HANDLER = "AWS679f53fac002430cb0da5b7982bd2287"
_LOG_TYPES = ("DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs")


class SecureBucket(s3.Bucket):
    """Versioned, encrypted, SSL-only, public access blocked."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        removal_policy: cdk.RemovalPolicy,
        server_access_logs_bucket: s3.IBucket | None = None,
        server_access_logs_prefix: str | None = None,
        object_ownership: s3.ObjectOwnership | None = None,
    ) -> None:
        super().__init__(
            scope,
            id,
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            server_access_logs_bucket=server_access_logs_bucket,
            server_access_logs_prefix=server_access_logs_prefix,
            object_ownership=object_ownership,
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == cdk.RemovalPolicy.DESTROY,
        )


def acknowledge_deploy_time_handler(handler: IConstruct, why: str) -> None:
    """NIST findings on a CDK handler that only CloudFormation invokes, one event at a time."""
    for rule, reason in (
        ("LambdaConcurrency", "CloudFormation invokes it once per resource event"),
        ("LambdaDLQ", "CloudFormation waits for its answer and reports a failure itself"),
        ("IAMNoInlinePolicy", ONE_ROLE_POLICY),
    ):
        acknowledge(handler, rule, f"{reason}. {why}", pack=NIST)


class MwaaEnvironment(Construct):
    """An MWAA environment in private subnets, fed from a versioned DAG bucket.

    :param environment_name: the MWAA environment's name (also its log-group prefix).
    :param config: size, version, access mode and Airflow options.
    :param subnets: exactly two private subnets in different AZs are used.
    :param dags_directory: local folder deployed to ``s3://<bucket>/dags/`` (DAG files only).
    :param plugins_directory: local folder zipped into ``plugins.zip``: the runtime package
        every Airflow component imports (MWAA puts its plugins folder on ``sys.path``).
    :param manifest: the job manifest, written beside the DAG file as ``manifest.json``.
    :param pools: created or updated in Airflow on every deploy, deferred tasks included.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment_name: str,
        config: MwaaConfig,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        dags_directory: str,
        plugins_directory: str,
        manifest: Mapping[str, Any],
        pools: Sequence[Pool],
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.environment_name = environment_name

        self.access_logs = SecureBucket(
            self,
            "AccessLogs",
            removal_policy=removal_policy,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
        )
        self.bucket = SecureBucket(
            self,
            "DagBucket",
            removal_policy=removal_policy,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="dag-bucket/",
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=True,
            description=f"MWAA {environment_name}: its own workers, scheduler and webserver",
        )
        # MWAA's components talk to each other; the docs require a self-referencing rule.
        self.security_group.add_ingress_rule(
            self.security_group, ec2.Port.all_traffic(), "MWAA components to each other"
        )

        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("airflow.amazonaws.com"),
                iam.ServicePrincipal("airflow-env.amazonaws.com"),
            ),
            description=f"MWAA {environment_name}: Airflow's own needs plus the jobs it runs",
        )
        self._grant_mwaa_needs(stack)

        self.deployment = s3deploy.BucketDeployment(
            self,
            "DeployDags",
            destination_bucket=self.bucket,
            destination_key_prefix=DAGS_PREFIX,
            sources=[
                s3deploy.Source.asset(dags_directory, exclude=_DAG_EXCLUDES),
                s3deploy.Source.json_data(MANIFEST_KEY, dict(manifest)),
            ],
            prune=True,
            retain_on_delete=False,
            memory_limit=512,
            # In the VPC like everything else; S3 is reached through the gateway endpoint.
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
        )

        self.plugins_key, self.plugins_version = self._deploy_plugins(
            Path(plugins_directory), vpc, subnets
        )

        log_config = {
            attr: mwaa.CfnEnvironment.ModuleLoggingConfigurationProperty(
                enabled=True, log_level=config.log_level
            )
            for attr in _LOG_TYPES
        }
        # MWAA takes exactly two subnets, in different AZs.
        private_subnets = [subnet.subnet_id for subnet in subnets[:2]]
        self.environment = mwaa.CfnEnvironment(
            self,
            "Environment",
            name=environment_name,
            airflow_version=config.version,
            environment_class=config.environment_class,
            min_workers=config.min_workers,
            max_workers=config.max_workers,
            schedulers=config.schedulers,
            execution_role_arn=self.execution_role.role_arn,
            source_bucket_arn=self.bucket.bucket_arn,
            dag_s3_path=DAGS_PREFIX.rstrip("/"),
            plugins_s3_path=self.plugins_key,
            plugins_s3_object_version=self.plugins_version,
            webserver_access_mode=config.webserver_access.value,
            weekly_maintenance_window_start=config.weekly_maintenance_window_start,
            network_configuration=mwaa.CfnEnvironment.NetworkConfigurationProperty(
                subnet_ids=private_subnets,
                security_group_ids=[self.security_group.security_group_id],
            ),
            logging_configuration=mwaa.CfnEnvironment.LoggingConfigurationProperty(
                dag_processing_logs=log_config["DagProcessingLogs"],
                scheduler_logs=log_config["SchedulerLogs"],
                task_logs=log_config["TaskLogs"],
                webserver_logs=log_config["WebserverLogs"],
                worker_logs=log_config["WorkerLogs"],
            ),
            airflow_configuration_options={
                # A job's chunks are mapped task instances; fan-out above this fails the run.
                "core.max_map_length": str(config.max_map_length),
                # Deferred Fargate waits one triggerer holds at once.
                "triggerer.capacity": str(config.triggerer_capacity),
            },
        )
        # The DAGs and manifest are in place before Airflow first parses the bucket.
        self.environment.node.add_dependency(self.deployment)
        # MWAA checks its role's permissions when it is created: after the role's policy
        # (the grants the stack adds later land in it too; the role itself is a GetAtt).
        self.environment.node.add_dependency(self.execution_role.node.find_child("DefaultPolicy"))
        self.pools = AirflowPools(
            self, "Pools", environment=self, pools=pools, vpc=vpc, subnets=subnets
        )
        self._acknowledge_findings(stack)

    def _deploy_plugins(
        self, directory: Path, vpc: ec2.IVpc, subnets: Sequence[ec2.ISubnet]
    ) -> tuple[str, str]:
        """Upload ``plugins.zip`` as is; return its key and the S3 version uploaded.

        The key carries the zip's content hash, so a code change is a new key, a new
        version read back, and an environment update; an unchanged zip changes nothing.
        """
        self.plugins_deployment = s3deploy.BucketDeployment(
            self,
            "DeployPlugins",
            destination_bucket=self.bucket,
            destination_key_prefix=PLUGINS_PREFIX,
            sources=[s3deploy.Source.asset(str(build_plugins_zip(directory)))],
            extract=False,
            # Earlier versions stay: a rolled-back environment still finds its zip.
            prune=False,
            retain_on_delete=False,
            memory_limit=512,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
        )
        key = cdk.Fn.join(
            "", [PLUGINS_PREFIX, cdk.Fn.select(0, self.plugins_deployment.object_keys)]
        )
        head = cr.AwsSdkCall(
            service="S3",
            action="headObject",
            parameters={"Bucket": self.bucket.bucket_name, "Key": key},
            physical_resource_id=cr.PhysicalResourceId.from_response("VersionId"),
        )
        version = cr.AwsCustomResource(
            self,
            "PluginsVersion",
            on_create=head,
            on_update=head,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["s3:GetObject", "s3:GetObjectVersion"],
                        resources=[self.bucket.arn_for_objects(f"{PLUGINS_PREFIX}*")],
                    )
                ]
            ),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            install_latest_aws_sdk=False,
            timeout=cdk.Duration.minutes(2),
        )
        self.plugins_version_reader = version
        return key, version.get_response_field("VersionId")

    @property
    def job_role(self) -> iam.IRole:
        """The role Airflow runs the jobs with: MWAA's execution role."""
        return self.execution_role

    @property
    def arn(self) -> str:
        return cdk.Stack.of(self).format_arn(
            service="airflow", resource="environment", resource_name=self.environment_name
        )

    def health_metrics(self) -> dict[str, tuple[cw.IMetric, float, cw.ComparisonOperator, str]]:
        """What says this MWAA is unwell, for the platform alarms: the scheduler's and the
        triggerer's heartbeats (namespace AmazonMWAA, dimensions Function and Environment:
        MWAA's "Monitoring dashboards and alarms" and "Apache Airflow metrics" pages)."""

        def heartbeat(component: str) -> cw.Metric:
            return cw.Metric(
                namespace="AmazonMWAA",
                metric_name=f"{component}Heartbeat",
                dimensions_map={"Function": component, "Environment": self.environment_name},
                statistic="Sum",
                period=cdk.Duration.minutes(1),
            )

        below = cw.ComparisonOperator.LESS_THAN_THRESHOLD
        return {
            "SchedulerHeartbeat": (heartbeat("Scheduler"), 1, below,
                                   "No scheduler heartbeat for 3 minutes: nothing is scheduled."),
            "TriggererHeartbeat": (heartbeat("Triggerer"), 1, below,
                                   "No triggerer heartbeat for 3 minutes: deferred chunks are "
                                   "neither launched nor followed."),
        }  # fmt: skip

    def _grant_mwaa_needs(self, stack: cdk.Stack) -> None:
        """The execution-role policy from the MWAA user guide (AWS-owned key variant)."""
        role = self.execution_role
        role.add_to_policy(
            iam.PolicyStatement(actions=["airflow:PublishMetrics"], resources=[self.arn])
        )
        # Each run's summary writes its note through the REST API, as Airflow's User role
        # (it may edit DAG runs; not pools, connections or variables).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["airflow:InvokeRestApi"],
                resources=[
                    stack.format_arn(
                        service="airflow",
                        resource="role",
                        resource_name=f"{self.environment_name}/User",
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                effect=iam.Effect.DENY,
                actions=["s3:ListAllMyBuckets"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            )
        )
        self.bucket.grant_read(role)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogStream",
                    "logs:CreateLogGroup",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:GetLogRecord",
                    "logs:GetLogGroupFields",
                    "logs:GetQueryResults",
                ],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"airflow-{self.environment_name}-*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:DescribeLogGroups",
                    "s3:GetAccountPublicAccessBlock",
                    "cloudwatch:PutMetricData",
                ],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                    "sqs:SendMessage",
                ],
                resources=[f"arn:{stack.partition}:sqs:{stack.region}:*:airflow-celery-*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"],
                not_resources=[f"arn:{stack.partition}:kms:*:{stack.account}:key/*"],
                conditions={
                    "StringLike": {"kms:ViaService": [f"sqs.{stack.region}.amazonaws.com"]}
                },
            )
        )

    def _acknowledge_findings(self, stack: cdk.Stack) -> None:
        role = self.execution_role
        acknowledge(role, "IAMNoInlinePolicy", ONE_ROLE_POLICY, pack=NIST)
        acknowledge(
            self.security_group,
            "EC2RestrictedCommonPorts",
            "The only ingress is the self-reference MWAA requires between its own "
            "components; nothing outside the group reaches any port.",
            pack=NIST,
        )
        rebuilt = "holds only what `cdk deploy` writes from git (DAG code and the manifest)"
        for bucket, what in ((self.bucket, rebuilt), (self.access_logs, "holds access logs")):
            acknowledge(
                bucket,
                "S3BucketReplicationEnabled",
                f"The bucket {what}; a replica would add cost, not recoverability.",
                pack=NIST,
            )
        acknowledge(
            self.bucket,
            "S3DefaultEncryptionKMS",
            f"SSE-S3 encrypts it at rest; it {rebuilt}, no data and no secrets, so a "
            "customer key would add key policy to MWAA and the deployment for no gain.",
            pack=NIST,
        )
        acknowledge(
            self.access_logs,
            "S3DefaultEncryptionKMS",
            "S3 server access logging delivers only to buckets encrypted with SSE-S3.",
            pack=NIST,
        )
        why_docs = "Required by MWAA as its user guide's execution-role policy states."
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*"):
            acknowledge(
                role,
                "IAM5",
                action=action,
                reason=f"Read-only access to the DAG bucket only. {why_docs}",
            )
        acknowledge(
            role,
            "IAM5",
            resource=self.bucket.arn_for_objects("*"),
            reason="Airflow reads every DAG file in its own bucket.",
        )
        acknowledge(
            role,
            "IAM5",
            resource="*",
            reason="logs:DescribeLogGroups, s3:GetAccountPublicAccessBlock and "
            f"cloudwatch:PutMetricData have no resource-level permissions. {why_docs}",
        )
        acknowledge(
            role,
            "IAM5",
            action="kms:GenerateDataKey*",
            reason="SQS needs it for MWAA's Celery queue; limited to calls via SQS "
            f"and to AWS-owned keys. {why_docs}",
        )
        acknowledge(
            role,
            "IAM5",
            resource=stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"airflow-{self.environment_name}-*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            ),
            reason=f"MWAA creates one log group per log type under this prefix. {why_docs}",
        )
        acknowledge(
            role,
            "IAM5",
            resource=f"arn:{stack.partition}:sqs:{stack.region}:*:airflow-celery-*",
            reason=f"MWAA's Celery queue lives in an AWS-owned account. {why_docs}",
        )

        # BucketDeployment's handler is a CDK-provided singleton at the stack root.
        handler = next(
            child
            for child in stack.node.children
            if child.node.id.startswith("Custom::CDKBucketDeployment")
        )
        why_cdk = "CDK's BucketDeployment handler, which runs only during deployments."
        acknowledge(
            handler,
            "IAM4",
            policy=(
                f"arn:{stack.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            ),
            reason=f"Writes its own CloudWatch logs. {why_cdk}",
        )
        for action in (
            "s3:GetObject*",
            "s3:GetBucket*",
            "s3:List*",
            "s3:Abort*",
            "s3:DeleteObject*",
        ):
            acknowledge(
                handler,
                "IAM5",
                action=action,
                reason=f"Copies and prunes the DAG files; scoped to two buckets. {why_cdk}",
            )
        qualifier = cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
        acknowledge(
            handler,
            "IAM5",
            resource=(
                f"arn:{stack.partition}:s3:::cdk-{qualifier}-assets-{stack.account}-{stack.region}/*"
            ),
            reason=f"Reads the staged DAG asset from the CDK asset bucket. {why_cdk}",
        )
        acknowledge(
            handler,
            "IAM5",
            resource=self.bucket.arn_for_objects("*"),
            reason=f"Writes the DAG files into the DAG bucket. {why_cdk}",
        )
        acknowledge(handler, "L1", reason=f"CDK pins the runtime of its handler. {why_cdk}")
        acknowledge(
            handler,
            "IAM4",
            policy=(
                f"arn:{stack.partition}:iam::aws:policy/service-role/"
                "AWSLambdaVPCAccessExecutionRole"
            ),
            reason=f"Attaches to the VPC. {why_cdk}",
        )
        acknowledge_deploy_time_handler(handler, why_cdk)
        redundant = "CDK adds a DependsOn that its own GetAtt already implies: harmless."
        for provider in ("Custom::CDKBucketDeployment", "Custom::S3AutoDeleteObjects"):
            ignore_lint_in_cdk_provider(stack, provider, "W3005", redundant)
        skip_checkov_in_cdk_provider(stack, "Custom::CDKBucketDeployment", in_vpc=True)
        skip_checkov_in_cdk_provider(stack, "Custom::S3AutoDeleteObjects", in_vpc=False)
        skip_checkov(
            cdk_provider_functions(stack, "Custom::CDKBucketDeployment"),
            "CKV_AWS_173",
            "Its one environment variable is the CA bundle's file path, not a secret.",
        )
        skip_checkov(
            [cast(cdk.CfnResource, self.access_logs.node.default_child)],
            "CKV_AWS_18",
            "This is the access-log destination; logging it into itself would loop.",
        )
        self._acknowledge_plugins_version_reader(stack)

    def _acknowledge_plugins_version_reader(self, stack: cdk.Stack) -> None:
        """CDK's AwsCustomResource singleton, which reads the uploaded plugins.zip version."""
        handler = next(
            child
            for child in stack.node.children
            if child.node.id.startswith(AWS_CUSTOM_RESOURCE_HANDLER)
        )
        why = "CDK's AwsCustomResource handler, which runs only during deployments."
        for policy in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"):
            acknowledge(
                handler,
                "IAM4",
                policy=(f"arn:{stack.partition}:iam::aws:policy/service-role/{policy}"),
                reason=f"Writes its logs and attaches to the VPC. {why}",
            )
        acknowledge(handler, "L1", reason=f"CDK pins the runtime of its handler. {why}")
        acknowledge_deploy_time_handler(handler, why)
        acknowledge(self.plugins_version_reader, "IAMNoInlinePolicy", ONE_ROLE_POLICY, pack=NIST)
        acknowledge(
            self.plugins_version_reader,
            "IAM5",
            resource=self.bucket.arn_for_objects(f"{PLUGINS_PREFIX}*"),
            reason="Reads the version of the plugins.zip it was just given; zip names carry "
            "their content hash, known only at deploy time.",
        )
        skip_checkov_in_cdk_provider(stack, AWS_CUSTOM_RESOURCE_HANDLER, in_vpc=True)
        ignore_lint_in_cdk_provider(
            stack,
            AWS_CUSTOM_RESOURCE_HANDLER,
            "W3005",
            "CDK adds a DependsOn that its own GetAtt already implies: harmless.",
        )


class AirflowPools(Construct):
    """Creates or overwrites the environment's pools on each deploy, then reads them back.

    A Lambda in the VPC calls MWAA's ``InvokeRestApi`` as Airflow's Op role: one bulk
    ``PATCH /pools`` (create, overwrite if present), then ``GET /pools``; the deploy fails,
    naming the pool, when Airflow's pools differ from the declared ones (the bulk call
    answers 200 even when an item fails). Code: ``handlers/airflow_pools``.
    """

    AIRFLOW_ROLE = "Op"  # pools need no more than Airflow's Op role

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: MwaaEnvironment,
        pools: Sequence[Pool],
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        role_arn = stack.format_arn(
            service="airflow",
            resource="role",
            resource_name=f"{environment.environment_name}/{self.AIRFLOW_ROLE}",
        )
        self.handler = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.on_event",
            code=lambda_.Code.from_asset(str(POOLS_HANDLER), exclude=["__pycache__"]),
            timeout=cdk.Duration.minutes(2),
            memory_size=256,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            description=f"Upserts and reads back the pools of {environment.environment_name}",
            # Runs once per deploy: one at a time is all it ever needs.
            reserved_concurrent_executions=1,
        )
        self.handler.add_to_role_policy(
            iam.PolicyStatement(actions=["airflow:InvokeRestApi"], resources=[role_arn])
        )
        provider = cr.Provider(self, "Provider", on_event_handler=self.handler)
        self.resource = cdk.CustomResource(
            self,
            "Upsert",
            service_token=provider.service_token,
            resource_type="Custom::AirflowPools",
            properties={
                "EnvironmentName": environment.environment_name,
                # One JSON string: CloudFormation would turn numbers and booleans into text.
                "Pools": json.dumps([dataclasses.asdict(pool) for pool in pools]),
            },
        )
        # The REST API answers only once the environment is available.
        self.resource.node.add_dependency(environment.environment)
        self._acknowledge_findings(stack, provider)

    def _acknowledge_findings(self, stack: cdk.Stack, provider: cr.Provider) -> None:
        why = "It runs only while CloudFormation deploys this stack."
        for function in (self.handler, provider):
            acknowledge(
                function,
                "IAM4",
                policy=(
                    f"arn:{stack.partition}:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole"
                ),
                reason=f"Writes its own CloudWatch logs. {why}",
            )
            acknowledge(function, "IAMNoInlinePolicy", ONE_ROLE_POLICY, pack=NIST)
        acknowledge(
            self.handler,
            "IAM4",
            policy=(
                f"arn:{stack.partition}:iam::aws:policy/service-role/"
                "AWSLambdaVPCAccessExecutionRole"
            ),
            reason=f"Attaches to the VPC to reach MWAA's private endpoints. {why}",
        )
        acknowledge(
            self.handler,
            "LambdaDLQ",
            f"CloudFormation waits for its answer and reports a failure itself. {why}",
            pack=NIST,
        )
        acknowledge(
            provider,
            "IAM5",
            resource=f"{self.handler.function_arn}:*",
            reason=f"CDK's Provider framework invokes any version of the pools handler. {why}",
        )
        framework = provider.node.find_child("framework-onEvent")
        acknowledge(framework, "L1", reason=f"CDK pins the runtime of its framework. {why}")
        acknowledge_deploy_time_handler(framework, "CDK's Provider framework. " + why)
        acknowledge(
            framework,
            "LambdaInsideVPC",
            "CDK's Provider framework only invokes the pools handler (the Lambda API, for "
            "which this VPC has no endpoint) and answers CloudFormation; it sees no data. " + why,
            pack=NIST,
        )
        handler = cast(cdk.CfnResource, self.handler.node.default_child)
        for check, reason in DEPLOY_TIME_HANDLER_SKIPS.items():
            if check != "CKV_AWS_115":  # it has a concurrency limit
                skip_checkov([handler], check, reason.replace("CDK's deploy-time", "A deploy-time"))
        skip_checkov(
            [handler],
            "CKV_AWS_173",
            "Its environment holds no variables; checkov flags the unencrypted default.",
        )
        redundant = "CDK adds a DependsOn that its own GetAtt already implies: harmless."
        for lambda_function in (self.handler, framework):
            lint_ignore(
                cast(cdk.CfnResource, lambda_function.node.default_child), "W3005", redundant
            )
        framework_function = cast(cdk.CfnResource, framework.node.default_child)
        for check, reason in DEPLOY_TIME_HANDLER_SKIPS.items():
            skip_checkov([framework_function], check, reason)
        skip_checkov(
            [framework_function],
            "CKV_AWS_117",
            "CDK's Provider framework only invokes the pools handler and answers "
            "CloudFormation; the VPC has no Lambda endpoint for it.",
        )
        skip_checkov(
            [framework_function],
            "CKV_AWS_173",
            "Its one variable is the pools handler's name, not a secret.",
        )
