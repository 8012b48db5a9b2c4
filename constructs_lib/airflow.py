"""Amazon MWAA: the DAG bucket, the environment, its execution role and the DAG deployment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_mwaa as mwaa
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from config.model import AirflowConfig, PoolConfig
from constructs_lib.acknowledgements import (
    NIST,
    ONE_ROLE_POLICY,
    acknowledge,
    cdk_provider_functions,
    ignore_lint_in_cdk_provider,
    skip_checkov,
    skip_checkov_in_cdk_provider,
)
from ml_platform.manifest import Pool
from ml_platform.pools import bulk_upsert

MANIFEST_KEY = "manifest.json"
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
    :param dags_directory: local folder deployed to ``s3://<bucket>/dags/``.
    :param manifest: the job manifest, written beside the DAG file as ``manifest.json``.
    :param pools: created or updated in Airflow on every deploy, deferred tasks included.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment_name: str,
        config: AirflowConfig,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        dags_directory: str,
        manifest: Mapping[str, Any],
        pools: Sequence[PoolConfig],
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
            destination_key_prefix="dags/",
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
            dag_s3_path="dags",
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
        self.pools = AirflowPools(
            self, "Pools", environment=self, pools=pools, vpc=vpc, subnets=subnets
        )
        self._acknowledge_findings(stack)

    @property
    def arn(self) -> str:
        return cdk.Stack.of(self).format_arn(
            service="airflow", resource="environment", resource_name=self.environment_name
        )

    def _grant_mwaa_needs(self, stack: cdk.Stack) -> None:
        """The execution-role policy from the MWAA user guide (AWS-owned key variant)."""
        role = self.execution_role
        role.add_to_policy(
            iam.PolicyStatement(actions=["airflow:PublishMetrics"], resources=[self.arn])
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


class AirflowPools(Construct):
    """Creates or overwrites the environment's pools through MWAA's REST API on each deploy.

    One idempotent bulk ``PATCH /pools`` (create, overwrite if present), from a function in
    the VPC: a private webserver answers only there.
    """

    AIRFLOW_ROLE = "Op"  # pools need no more than Airflow's Op role

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: MwaaEnvironment,
        pools: Sequence[PoolConfig],
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        body = bulk_upsert(
            Pool(name=p.name, slots=p.slots, description=p.description) for p in pools
        )
        call = cr.AwsSdkCall(
            service="MWAA",
            action="InvokeRestApi",
            parameters={
                "Name": environment.environment_name,
                "Path": "/pools",
                "Method": "PATCH",
                "Body": body,
            },
            physical_resource_id=cr.PhysicalResourceId.of(f"{environment.environment_name}-pools"),
        )
        role_arn = stack.format_arn(
            service="airflow",
            resource="role",
            resource_name=f"{environment.environment_name}/{self.AIRFLOW_ROLE}",
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Upsert",
            on_create=call,
            on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["airflow:InvokeRestApi"], resources=[role_arn])]
            ),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            install_latest_aws_sdk=False,
            timeout=cdk.Duration.minutes(2),
        )
        # The REST API answers only once the environment is available.
        self.resource.node.add_dependency(environment.environment)

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
        acknowledge(self.resource, "IAMNoInlinePolicy", ONE_ROLE_POLICY, pack=NIST)
        skip_checkov_in_cdk_provider(stack, AWS_CUSTOM_RESOURCE_HANDLER, in_vpc=True)
        ignore_lint_in_cdk_provider(
            stack,
            AWS_CUSTOM_RESOURCE_HANDLER,
            "W3005",
            "CDK adds a DependsOn that its own GetAtt already implies: harmless.",
        )
