"""Self-hosted Airflow 3 on ECS Fargate: the second Airflow backend.

One image (``runtime/image``: the parity lock, the runtime package, the DAG file and the
manifest) runs as four services on their own cluster, each with its own security group:

- ``api-server``: UI, REST API and the Execution API tasks report to; behind an HTTPS
  load balancer (internal unless config says otherwise) and registered in Cloud Map, so
  the scheduler's task processes reach it inside the VPC;
- ``scheduler``: the LocalExecutor runs task processes in it (each defers at once);
- ``dag-processor`` parses the DAG file;
- ``triggerer``: watches deferred tasks; scaled on CPU between the configured counts.

A one-off ``init`` task (migrate, first admin, pools) runs on every deploy that changes
the image or the pools, before any service rolls (``handlers/airflow_init``). State lives
in RDS for PostgreSQL; every secret comes from Secrets Manager under a customer key.
Airflow's task logs go to CloudWatch (remote logging), so the UI shows them after the
container that wrote them is gone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from aws_cdk import region_info
from constructs import Construct

from config.model import SelfHostedAirflowConfig, ServiceSize
from constructs_lib.acknowledgements import (
    DEPLOY_TIME_HANDLER_SKIPS,
    NIST,
    ONE_ROLE_POLICY,
    acknowledge,
    lint_ignore,
    skip_checkov,
)
from constructs_lib.airflow import SecureBucket, acknowledge_deploy_time_handler
from constructs_lib.airflow_image import stage_airflow_image
from constructs_lib.defaults import retention
from constructs_lib.encryption import LogEncryptionKey
from ml_platform.contract import Pool

INIT_HANDLER = Path(__file__).resolve().parent / "handlers" / "airflow_init"
API_PORT = 8080
#: The REST API user runs write their DAG run notes as (Airflow's User role).
NOTES_USERNAME = "ml-platform-notes"
SCHEDULER_LOG_PORT = 8793  # Airflow's worker log server: live logs of running tasks
TRIGGERER_LOG_PORT = 8794
POSTGRES_PORT = 5432
#: PostgreSQL's logs that RDS exports to CloudWatch.
DATABASE_LOGS = ("postgresql", "upgrade")
#: The image's interpreter and entrypoint (runtime/image/Dockerfile); health checks run
#: without the image's ENTRYPOINT, so they name both.
ENTRYPOINT = ("/opt/airflow/.venv/bin/python", "/opt/airflow/entrypoint.py")
LOG_STREAM_PREFIX = "airflow"
#: Fargate's longest stopTimeout: a scheduler finishes its task processes, a triggerer
#: hands its triggers over.
MAX_STOP_TIMEOUT = cdk.Duration.seconds(120)


class SelfHostedAirflow(Construct):
    """Airflow 3 on ECS Fargate with RDS for PostgreSQL.

    :param environment_name: prefix of the physical names (cluster, secrets, DNS).
    :param log_group_prefix: every log group of this Airflow lives under it.
    :param manifest: the job manifest, baked into the image beside the DAG file, with
        ``${LogicalId}`` placeholders for what only a deploy knows (subnets, region).
    :param deploy_values: each placeholder -> its CloudFormation token; every container
        gets them (``ML_PLATFORM_DEPLOY_VALUES``) and its entrypoint fills them in.
    :param pools: upserted by the init task on every deploy that changes them.

    ``job_role`` is the task role of the scheduler and the triggerers: the components
    that launch, watch and stop the jobs' Fargate tasks (the stack grants it the jobs).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment_name: str,
        config: SelfHostedAirflowConfig,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        public_subnets: Sequence[ec2.ISubnet],
        vpc_cidr: str,
        manifest: Mapping[str, Any],
        deploy_values: Mapping[str, str],
        pools: Sequence[Pool],
        log_group_prefix: str,
        log_retention_days: int,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.environment_name = environment_name
        self.config = config
        self._vpc = vpc
        self._vpc_cidr = vpc_cidr
        self._subnets = ec2.SubnetSelection(subnets=list(subnets))
        self._removal_policy = removal_policy
        stack = cdk.Stack.of(self)

        self.log_key = LogEncryptionKey(
            self,
            "LogKey",
            description=f"Encrypts the log groups of {environment_name}",
            log_group_prefix=log_group_prefix,
            removal_policy=removal_policy,
        ).key
        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Encrypts the secrets of {environment_name}",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self._log_groups: dict[str, logs.LogGroup] = {}
        self._log_group_prefix = log_group_prefix
        self._log_retention_days = log_retention_days
        self.task_log_group = self._log_group("task-logs")

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=environment_name,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.namespace = servicediscovery.PrivateDnsNamespace(
            self,
            "Namespace",
            name=f"{environment_name}.internal",
            vpc=vpc,
            description=f"{environment_name}: how the scheduler's tasks reach the api-server",
        )

        groups = {
            name: ec2.SecurityGroup(
                self,
                f"{name.title().replace('-', '')}SecurityGroup",
                vpc=vpc,
                allow_all_outbound=True,
                description=f"{environment_name} {name}",
            )
            for name in ("api-server", "scheduler", "dag-processor", "triggerer", "init")
        }
        self.security_groups = groups
        self.database = self._database(groups)
        self.secrets = self._secrets()

        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(stage_airflow_image(manifest, version=config.version)),
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        api_url = f"http://api.{self.namespace.namespace_name}:{API_PORT}"
        self.load_balancer = self._load_balancer(groups["api-server"], public_subnets)
        self._environment = {
            "AIRFLOW_DB_HOST": self.database.db_instance_endpoint_address,
            "AIRFLOW_DB_PORT": self.database.db_instance_endpoint_port,
            "AIRFLOW_DB_NAME": "airflow",
            "AIRFLOW_DB_SSLMODE": "require",
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(config.max_map_length),
            "AIRFLOW__CORE__PARALLELISM": str(config.parallelism),
            "AIRFLOW__TRIGGERER__CAPACITY": str(config.triggerer_capacity),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": config.log_level,
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "ML_PLATFORM_DEPLOY_VALUES": stack.to_json_string(dict(deploy_values)),
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": "cloudwatch://"
            + self.task_log_group.log_group_arn.removesuffix(":*"),
        }
        if config.ui.domain_name:
            # Links and cookies name the address people use (the certificate's name).
            self._environment["AIRFLOW__API__BASE_URL"] = f"https://{config.ui.domain_name}"
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"{environment_name} scheduler and triggerers: run and watch the jobs",
        )
        self.api_role = api_role = iam.Role(
            self,
            "ApiServerRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"{environment_name} api-server: reads Airflow's task logs",
        )
        # Task processes (scheduler) and triggers write task logs; the UI reads them.
        self._grant_task_logs(self.job_role, write=True)
        self._grant_task_logs(api_role, write=False)

        self.init_task = self._task_definition(
            "init", ServiceSize(512, 1024), command=["init"], role=None
        )
        self.init_task.default_container.add_environment(  # type: ignore[union-attr]
            "ML_PLATFORM_POOLS", json.dumps([asdict(pool) for pool in pools])
        )
        self.init_task.default_container.add_environment(  # type: ignore[union-attr]
            "AIRFLOW_ADMIN_USERNAME", config.admin_username
        )
        self.init_task.default_container.add_secret(  # type: ignore[union-attr]
            "AIRFLOW_ADMIN_PASSWORD", ecs.Secret.from_secrets_manager(self.secrets["admin"])
        )
        # A REST API user with Airflow's User role (edits DAG runs; not pools or
        # connections): runs write their report as the DAG run's note through it, since
        # Airflow 3.3's Task SDK cannot set a note.
        notes_password = ecs.Secret.from_secrets_manager(self.secrets["notes-user"])
        self.init_task.default_container.add_environment(  # type: ignore[union-attr]
            "AIRFLOW_NOTES_USERNAME", NOTES_USERNAME
        )
        self.init_task.default_container.add_secret(  # type: ignore[union-attr]
            "AIRFLOW_NOTES_PASSWORD", notes_password
        )
        self.init = self._run_init(groups["init"], pools)

        self.services: dict[str, ecs.FargateService] = {}
        api = self._service(
            "api-server",
            config.api_server_size,
            count=config.api_servers,
            role=api_role,
            ports=(API_PORT,),
            command=["api-server"],
            stop_timeout=cdk.Duration.seconds(30),
            cloud_map=ecs.CloudMapOptions(
                name="api",
                cloud_map_namespace=self.namespace,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=cdk.Duration.seconds(10),
            ),
        )
        scheduler = self._service(
            "scheduler",
            config.scheduler_size,
            count=config.schedulers,
            role=self.job_role,
            ports=(SCHEDULER_LOG_PORT,),
            command=["scheduler"],
            stop_timeout=MAX_STOP_TIMEOUT,
        )
        # The scheduler runs the tasks (LocalExecutor): the summarize task writes notes.
        container = scheduler.task_definition.default_container
        assert container is not None
        container.add_environment("ML_PLATFORM_API_URL", api_url)
        container.add_environment("ML_PLATFORM_API_USERNAME", NOTES_USERNAME)
        container.add_secret("ML_PLATFORM_API_PASSWORD", notes_password)
        self._service(
            "dag-processor",
            config.dag_processor_size,
            count=1,
            role=None,
            ports=(),
            command=["dag-processor"],
            stop_timeout=cdk.Duration.seconds(30),
        )
        triggerer = self._service(
            "triggerer",
            config.triggerer_size,
            count=config.min_triggerers,
            role=self.job_role,
            ports=(TRIGGERER_LOG_PORT,),
            command=["triggerer"],
            stop_timeout=MAX_STOP_TIMEOUT,
        )
        self.api_targets = self._listener.add_targets(
            "ApiServer",
            port=API_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[api],
            deregistration_delay=cdk.Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path="/api/v2/monitor/health",
                healthy_http_codes="200",
                interval=cdk.Duration.seconds(30),
            ),
        )
        self._scale_triggerers(triggerer)
        self._connect(groups)
        self._acknowledge_findings(stack, groups)

    def health_metrics(self) -> dict[str, tuple[cw.IMetric, float, cw.ComparisonOperator, str]]:
        """What says this Airflow is unwell, for the platform alarms: fewer triggerers or
        schedulers running than configured (Container Insights' RunningTaskCount), or no
        healthy api-server behind the load balancer."""

        def running(service: str) -> cw.Metric:
            return cw.Metric(
                namespace="ECS/ContainerInsights",
                metric_name="RunningTaskCount",
                dimensions_map={"ClusterName": self.cluster.cluster_name, "ServiceName": service},
                statistic="Minimum",
                period=cdk.Duration.minutes(1),
            )

        below = cw.ComparisonOperator.LESS_THAN_THRESHOLD
        config = self.config
        return {
            "Triggerers": (running("triggerer"), config.min_triggerers, below,
                           f"Fewer than {config.min_triggerers} triggerers running for 3 "
                           "minutes: deferred chunks are not followed or launched."),
            "Schedulers": (running("scheduler"), config.schedulers, below,
                           f"Fewer than {config.schedulers} schedulers running for 3 minutes."),
            "ApiServers": (self.api_targets.metrics.healthy_host_count(
                               statistic="Minimum", period=cdk.Duration.minutes(1)), 1, below,
                           "No healthy api-server for 3 minutes: tasks cannot report their "
                           "state (Execution API) and the UI is down."),
        }  # fmt: skip

    # -- state and secrets ---------------------------------------------------------------

    def _database(self, groups: Mapping[str, ec2.SecurityGroup]) -> rds.DatabaseInstance:
        db = self.config.database
        self.database_security_group = ec2.SecurityGroup(
            self,
            "DatabaseSecurityGroup",
            vpc=self._vpc,
            allow_all_outbound=False,
            description=f"{self.environment_name} metadata database: Airflow components only",
        )
        for name, group in groups.items():
            self.database_security_group.add_ingress_rule(
                group, ec2.Port.tcp(POSTGRES_PORT), f"PostgreSQL from {name}"
            )
        # RDS writes to /aws/rds/instance/<id>/<log>: made here, with retention and a key.
        identifier = self.environment_name
        database_log_prefix = f"/aws/rds/instance/{identifier}/"
        database_log_key = LogEncryptionKey(
            self,
            "DatabaseLogKey",
            description=f"Encrypts the database logs of {self.environment_name}",
            log_group_prefix=database_log_prefix,
            removal_policy=self._removal_policy,
        ).key
        database_logs = [
            logs.LogGroup(
                self,
                f"Database{log.title()}Logs",
                log_group_name=f"{database_log_prefix}{log}",
                retention=retention(self._log_retention_days),
                encryption_key=database_log_key,
                removal_policy=self._removal_policy,
            )
            for log in DATABASE_LOGS
        ]
        major = db.postgres_version.split(".")[0]
        engine = rds.DatabaseInstanceEngine.postgres(
            version=rds.PostgresEngineVersion.of(db.postgres_version, major)
        )
        database = rds.DatabaseInstance(
            self,
            "Database",
            instance_identifier=identifier,
            engine=engine,
            instance_type=ec2.InstanceType(db.instance_class),
            vpc=self._vpc,
            vpc_subnets=self._subnets,
            security_groups=[self.database_security_group],
            database_name="airflow",
            credentials=rds.Credentials.from_generated_secret(
                "airflow",
                secret_name=f"{self.environment_name}/database",
                encryption_key=self.secrets_key,
                exclude_characters=" %+~`#$&*()|[]{}:;<>?!'/@\"\\",
            ),
            parameter_group=rds.ParameterGroup(
                self,
                "DatabaseParameters",
                engine=engine,
                description=f"{self.environment_name}: TLS only",
                parameters={"rds.force_ssl": "1"},
            ),
            storage_encrypted=True,
            storage_encryption_key=self.secrets_key,
            allocated_storage=db.allocated_storage_gib,
            storage_type=rds.StorageType.GP3,
            multi_az=db.multi_az,
            deletion_protection=db.deletion_protection,
            backup_retention=cdk.Duration.days(db.backup_retention_days),
            auto_minor_version_upgrade=True,
            cloudwatch_logs_exports=list(DATABASE_LOGS),
            monitoring_interval=cdk.Duration.seconds(60),
            enable_performance_insights=False,
            publicly_accessible=False,
            # Airflow signs in with the generated password; IAM sign-in stays available
            # for people (and for a later move to tokens).
            iam_authentication=True,
            removal_policy=(
                cdk.RemovalPolicy.SNAPSHOT
                if self._removal_policy == cdk.RemovalPolicy.RETAIN
                else cdk.RemovalPolicy.DESTROY
            ),
        )
        for log_group in database_logs:
            database.node.add_dependency(log_group)
        return database

    def _secrets(self) -> dict[str, secretsmanager.ISecret]:
        """Shared by every component: a component with another value fails quietly
        (403 on the Execution API, undecryptable connections), so each has one source."""
        generated = {
            # 43 of [A-Za-z0-9]; the entrypoint adds "=": url-safe base64 of 32 bytes.
            "fernet-key": 43,
            "jwt-secret": 64,
            "api-secret-key": 64,
            "admin": 32,
            "notes-user": 32,
        }
        secrets: dict[str, secretsmanager.ISecret] = {
            name: secretsmanager.Secret(
                self,
                f"{name.title().replace('-', '')}Secret",
                secret_name=f"{self.environment_name}/{name}",
                description=f"{self.environment_name}: {name}",
                encryption_key=self.secrets_key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=length, exclude_punctuation=True, include_space=False
                ),
                removal_policy=self._removal_policy,
            )
            for name, length in generated.items()
        }
        secrets["database"] = cast(secretsmanager.ISecret, self.database.secret)
        return secrets

    def _shared_secrets(self) -> dict[str, ecs.Secret]:
        database = self.secrets["database"]
        return {
            "AIRFLOW_DB_USER": ecs.Secret.from_secrets_manager(database, "username"),
            "AIRFLOW_DB_PASSWORD": ecs.Secret.from_secrets_manager(database, "password"),
            "AIRFLOW_FERNET_KEY_BODY": ecs.Secret.from_secrets_manager(self.secrets["fernet-key"]),
            "AIRFLOW__API_AUTH__JWT_SECRET": ecs.Secret.from_secrets_manager(
                self.secrets["jwt-secret"]
            ),
            "AIRFLOW__API__SECRET_KEY": ecs.Secret.from_secrets_manager(
                self.secrets["api-secret-key"]
            ),
        }

    # -- logs ----------------------------------------------------------------------------

    def _log_group(self, name: str) -> logs.LogGroup:
        group = logs.LogGroup(
            self,
            f"{name.title().replace('-', '')}Logs",
            log_group_name=f"{self._log_group_prefix}{name}",
            retention=retention(self._log_retention_days),
            encryption_key=self.log_key,
            removal_policy=self._removal_policy,
        )
        self._log_groups[name] = group
        return group

    def _task_log_arn(self, suffix: str = "") -> str:
        """The task-log group's ARN, by its literal name (a policy that reads as it is)."""
        return cdk.Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self._log_group_prefix}task-logs{suffix}",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    @property
    def _task_log_streams(self) -> str:
        return self._task_log_arn(":log-stream:*")

    def _grant_task_logs(self, role: iam.IRole, *, write: bool) -> None:
        actions = ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"]
        if write:
            actions += ["logs:CreateLogStream", "logs:PutLogEvents"]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions,
                resources=[self._task_log_arn(), self._task_log_streams],
            )
        )

    # -- tasks and services --------------------------------------------------------------

    def _task_definition(
        self,
        component: str,
        size: ServiceSize,
        *,
        command: list[str],
        role: iam.IRole | None,
        ports: Sequence[int] = (),
        stop_timeout: cdk.Duration | None = None,
    ) -> ecs.FargateTaskDefinition:
        name = component.title().replace("-", "")
        task = ecs.FargateTaskDefinition(
            self,
            f"{name}Task",
            # Not "<env prefix>-...": the jobs' RunTask grant covers those families.
            family=f"{component}-{self.environment_name}",
            cpu=size.cpu,
            memory_limit_mib=size.memory_mib,
            task_role=role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        health = None
        if component != "init":
            health = ecs.HealthCheck(
                command=["CMD", *ENTRYPOINT, "health", component],
                # Each check imports Airflow (seconds of CPU): not more often than this.
                interval=cdk.Duration.seconds(60),
                timeout=cdk.Duration.seconds(30),
                retries=3,
                start_period=cdk.Duration.seconds(180),
            )
        task.add_container(
            component,
            container_name=component,
            image=ecs.ContainerImage.from_docker_image_asset(self.image),
            command=command,
            environment=dict(self._environment),
            secrets=self._shared_secrets(),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=LOG_STREAM_PREFIX,
                log_group=self._log_groups.get(component) or self._log_group(component),
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
            ),
            port_mappings=[ecs.PortMapping(container_port=port) for port in ports],
            health_check=health,
            stop_timeout=stop_timeout or cdk.Duration.seconds(30),
            # tini as PID 1: SIGTERM reaches Airflow, zombies of task processes are reaped.
            linux_parameters=ecs.LinuxParameters(self, f"{name}Linux", init_process_enabled=True),
            essential=True,
        )
        return task

    def _service(
        self,
        component: str,
        size: ServiceSize,
        *,
        count: int,
        role: iam.IRole | None,
        ports: Sequence[int],
        command: list[str],
        stop_timeout: cdk.Duration,
        cloud_map: ecs.CloudMapOptions | None = None,
    ) -> ecs.FargateService:
        task = self._task_definition(
            component, size, command=command, role=role, ports=ports, stop_timeout=stop_timeout
        )
        service = ecs.FargateService(
            self,
            f"{component.title().replace('-', '')}Service",
            cluster=self.cluster,
            service_name=component,
            task_definition=task,
            desired_count=count,
            security_groups=[self.security_groups[component]],
            vpc_subnets=self._subnets,
            assign_public_ip=False,
            cloud_map_options=cloud_map,
            # Never below the running count while a new version starts; a version that
            # never gets healthy is rolled back to the one that was serving.
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            health_check_grace_period=cdk.Duration.seconds(180) if component == "api-server"
            else None,
        )  # fmt: skip
        # The schema is migrated (and the pools set) before any component rolls.
        service.node.add_dependency(self.init)
        self.services[component] = service
        return service

    def _scale_triggerers(self, triggerer: ecs.FargateService) -> None:
        scaling = triggerer.auto_scale_task_count(
            min_capacity=self.config.min_triggerers, max_capacity=self.config.max_triggerers
        )
        scaling.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=self.config.triggerer_cpu_target_percent,
            scale_out_cooldown=cdk.Duration.seconds(60),
            # A triggerer that leaves hands its triggers over: not more often than this.
            scale_in_cooldown=cdk.Duration.minutes(15),
        )
        self.triggerer_scaling: appscaling.ScalableTarget = cast(
            appscaling.ScalableTarget, scaling.node.find_child("Target")
        )

    # -- the load balancer ---------------------------------------------------------------

    def _load_balancer(
        self, api_group: ec2.SecurityGroup, public_subnets: Sequence[ec2.ISubnet]
    ) -> elbv2.ApplicationLoadBalancer:
        ui = self.config.ui
        self.load_balancer_security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self._vpc,
            allow_all_outbound=False,
            description=f"{self.environment_name} UI load balancer: HTTPS in, api-server out",
        )
        peers = [ec2.Peer.ipv4(cidr) for cidr in ui.allowed_cidrs or (self._vpc_cidr,)]
        for peer in peers:
            self.load_balancer_security_group.add_ingress_rule(
                peer, ec2.Port.tcp(443), "HTTPS to Airflow's UI and REST API"
            )
        self.load_balancer_security_group.add_egress_rule(
            api_group, ec2.Port.tcp(API_PORT), "to the api-servers"
        )
        self.access_logs = SecureBucket(
            self,
            "LoadBalancerLogs",
            removal_policy=self._removal_policy,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        )
        balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self._vpc,
            internet_facing=ui.internet_facing,
            vpc_subnets=ec2.SubnetSelection(subnets=list(public_subnets))
            if ui.internet_facing
            else self._subnets,
            security_group=self.load_balancer_security_group,
            drop_invalid_header_fields=True,
            deletion_protection=self.config.database.deletion_protection,
        )
        self._log_access(balancer, prefix="ui")
        certificate = ssm.StringParameter.value_for_string_parameter(self, ui.certificate_parameter)
        self._listener = balancer.add_listener(
            "Https",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_arn(certificate)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=False,
        )
        return balancer

    def _log_access(self, balancer: elbv2.ApplicationLoadBalancer, *, prefix: str) -> None:
        """Access logs into ``access_logs``, in a template that names no region.

        CDK's ``log_access_logs`` needs the region at synth. The ELB user guide names two
        writers: the regional ELB account in Regions opened before August 2022, the
        ``logdelivery.elasticloadbalancing`` service principal in later ones. The account
        comes from a region map (CDK's region facts); elsewhere that statement names this
        account itself, which owns the bucket anyway.
        """
        stack = cdk.Stack.of(self)
        accounts = {
            region.name: region.elbv2_account
            for region in region_info.RegionInfo.regions
            if region.elbv2_account
        }
        mapping = cdk.CfnMapping(
            self,
            "ElbAccounts",
            mapping={region: {"account": account} for region, account in accounts.items()},
        )
        regions = sorted(accounts)
        is_legacy = [
            cdk.Fn.condition_or(
                *[cdk.Fn.condition_equals(stack.region, r) for r in regions[i : i + 10]]
            )
            for i in range(0, len(regions), 10)
        ]
        while len(is_legacy) > 10:
            is_legacy = [cdk.Fn.condition_or(*is_legacy[i : i + 10]) for i in range(0, 20, 10)]
        legacy = cdk.CfnCondition(
            self, "LegacyElbRegion", expression=cdk.Fn.condition_or(*is_legacy)
        )
        writer = cdk.Token.as_string(
            cdk.Fn.condition_if(
                legacy.logical_id,
                f"arn:{stack.partition}:iam::{mapping.find_in_map(stack.region, 'account')}:root",
                f"arn:{stack.partition}:iam::{stack.account}:root",
            )
        )
        objects = self.access_logs.arn_for_objects(f"{prefix}/AWSLogs/{stack.account}/*")
        for principal in (
            iam.ArnPrincipal(writer),
            iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com"),
        ):
            self.access_logs.add_to_resource_policy(
                iam.PolicyStatement(
                    actions=["s3:PutObject"], principals=[principal], resources=[objects]
                )
            )
        balancer.set_attribute("access_logs.s3.enabled", "true")
        balancer.set_attribute("access_logs.s3.bucket", self.access_logs.bucket_name)
        balancer.set_attribute("access_logs.s3.prefix", prefix)
        policy = self.access_logs.policy
        if policy is not None:
            balancer.node.add_dependency(policy)

    # -- deploy order --------------------------------------------------------------------

    def _run_init(self, group: ec2.SecurityGroup, pools: Sequence[Pool]) -> cdk.CustomResource:
        task = self.init_task
        handler_props: dict[str, Any] = dict(
            runtime=lambda_.Runtime.PYTHON_3_14,
            code=lambda_.Code.from_asset(str(INIT_HANDLER), exclude=["__pycache__"]),
            timeout=cdk.Duration.minutes(1),
            memory_size=256,
            vpc=self._vpc,
            vpc_subnets=self._subnets,
            reserved_concurrent_executions=1,
        )
        self.init_starter = lambda_.Function(
            self,
            "InitStart",
            handler="index.on_event",
            description=f"Starts the init task of {self.environment_name}",
            **handler_props,
        )
        self.init_waiter = lambda_.Function(
            self,
            "InitWait",
            handler="index.is_complete",
            description=f"Waits for the init task of {self.environment_name}",
            **handler_props,
        )
        task.grant_run(self.init_starter)
        self.init_waiter.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks"],
                resources=[
                    cdk.Stack.of(self).format_arn(
                        service="ecs",
                        resource="task",
                        resource_name=f"{self.cluster.cluster_name}/*",
                    )
                ],
            )
        )
        self.init_provider = cr.Provider(
            self,
            "InitProvider",
            on_event_handler=self.init_starter,
            is_complete_handler=self.init_waiter,
            query_interval=cdk.Duration.seconds(30),
            # A migration of a large metadata database can take long; Fargate takes ~1 min.
            total_timeout=cdk.Duration.hours(1),
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=self._log_group("init-waiter"),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
        container = cast(ecs.ContainerDefinition, task.default_container)
        resource = cdk.CustomResource(
            self,
            "Init",
            service_token=self.init_provider.service_token,
            resource_type="Custom::AirflowInit",
            properties={
                "Cluster": self.cluster.cluster_name,
                # A new image (a new revision) or new pools: init runs again.
                "TaskDefinition": task.task_definition_arn,
                "Container": container.container_name,
                "Subnets": [subnet.subnet_id for subnet in self._subnets.subnets or []],
                "SecurityGroups": [group.security_group_id],
                "LogGroup": self._log_groups["init"].log_group_name,
                "LogStreamPrefix": LOG_STREAM_PREFIX,
            },
        )
        return resource

    # -- network -------------------------------------------------------------------------

    def _connect(self, groups: Mapping[str, ec2.SecurityGroup]) -> None:
        api, scheduler, triggerer = groups["api-server"], groups["scheduler"], groups["triggerer"]
        api.add_ingress_rule(
            self.load_balancer_security_group, ec2.Port.tcp(API_PORT), "from the load balancer"
        )
        api.add_ingress_rule(
            scheduler, ec2.Port.tcp(API_PORT), "Execution API calls of the scheduler's tasks"
        )
        scheduler.add_ingress_rule(
            api, ec2.Port.tcp(SCHEDULER_LOG_PORT), "the UI reads logs of running tasks"
        )
        triggerer.add_ingress_rule(
            api, ec2.Port.tcp(TRIGGERER_LOG_PORT), "the UI reads logs of running triggers"
        )

    # -- findings ------------------------------------------------------------------------

    def _acknowledge_findings(
        self, stack: cdk.Stack, groups: Mapping[str, ec2.SecurityGroup]
    ) -> None:
        del groups
        acknowledge(self, "IAMNoInlinePolicy", ONE_ROLE_POLICY, pack=NIST)
        for task in self.node.find_all():
            if isinstance(task, ecs.FargateTaskDefinition):
                acknowledge(
                    task,
                    "ECS2",
                    "Plain settings only (database host, Airflow options); every secret "
                    "reaches the container through 'secrets' from Secrets Manager.",
                )
                if task.execution_role is not None:
                    acknowledge(
                        task.execution_role,
                        "IAM5",
                        resource="*",
                        reason="ecr:GetAuthorizationToken has no resource-level permission; "
                        "the pulls themselves are scoped to the image's repository.",
                    )
        acknowledge(
            self.job_role,
            "IAM5",
            resource=self._task_log_streams,
            reason="Airflow writes one stream per task try, named at run time, in its own "
            "task-log group only.",
        )
        acknowledge(
            self.api_role,
            "IAM5",
            resource=self._task_log_streams,
            reason="The UI reads the stream of whichever task try is shown, in Airflow's own "
            "task-log group only.",
        )
        acknowledge(
            self.database,
            "IAM4",
            policy=f"arn:{stack.partition}:iam::aws:policy/service-role/"
            "AmazonRDSEnhancedMonitoringRole",
            reason="RDS enhanced monitoring's own role: the managed policy is what RDS "
            "documents for it, and it only writes the RDSOSMetrics log group.",
        )
        acknowledge(
            self.database,
            "RDS11",
            "The database accepts connections only from the Airflow components' security "
            "groups and only over TLS; another port would hide nothing from them.",
        )
        acknowledge(
            self.database,
            "RDSInBackupPlan",
            "RDS automated backups (point-in-time restore within the configured retention) "
            "and a final snapshot on deletion protect the metadata database; it holds run "
            "history, not the jobs' data.",
            pack=NIST,
        )
        for secret in [*self.secrets.values(), self.database]:
            why = (
                "Airflow reads its secrets when a container starts; an unattended rotation "
                "would leave running components with the old value (failed logins to the "
                "database, undecryptable connections, rejected tokens). Rotation is a "
                "procedure that rotates and then rolls every service (README: rotating "
                "secrets)."
            )
            acknowledge(secret, "SMG4", why)
            acknowledge(secret, "SecretsManagerRotationEnabled", why, pack=NIST)
        balancer = self.load_balancer
        database = self.config.database
        if not database.deletion_protection:
            why = (
                "Config turns deletion protection off for an environment whose data may be "
                "deleted with it (removal_policy DESTROY); config refuses that for an "
                "environment that retains its data."
            )
            acknowledge(self.database, "RDS10", why)
            acknowledge(self.database, "RDSInstanceDeletionProtectionEnabled", why, pack=NIST)
            acknowledge(balancer, "ELBDeletionProtectionEnabled", why, pack=NIST)
        if not database.multi_az:
            why = (
                "Config runs the database in one AZ for an environment whose data may be "
                "deleted with it; config refuses that for an environment that retains its data."
            )
            acknowledge(self.database, "RDS3", why)
            acknowledge(self.database, "RDSMultiAZSupport", why, pack=NIST)
        acknowledge(
            balancer,
            "ALBWAFEnabled",
            "Airflow's UI sits behind an internal load balancer reachable only from the "
            "configured networks, with Airflow's own login; a web ACL adds cost, not a "
            "boundary. An internet-facing UI is a config choice that should add one.",
            pack=NIST,
        )
        why_logs = "It receives the UI load balancer's access logs"
        for rule, reason, pack in (
            ("S1", f"{why_logs}; logging it elsewhere would only log the log.", "AwsSolutions"),
            ("S3BucketLoggingEnabled", f"{why_logs}; logging it would only log the log.", NIST),
            ("S3BucketReplicationEnabled", f"{why_logs}; a replica adds cost, not recovery.", NIST),
            (
                "S3DefaultEncryptionKMS",
                "Elastic Load Balancing delivers access logs only to SSE-S3 buckets.",
                NIST,
            ),
        ):  # fmt: skip
            acknowledge(self.access_logs, rule, reason, pack=pack)

        why = "It runs only while CloudFormation deploys this stack."
        for function in (self.init_starter, self.init_waiter):
            for policy in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"):
                acknowledge(
                    function,
                    "IAM4",
                    policy=f"arn:{stack.partition}:iam::aws:policy/service-role/{policy}",
                    reason=f"Writes its own logs and attaches to the VPC (ECS endpoint). {why}",
                )
            acknowledge(
                function,
                "LambdaDLQ",
                f"CloudFormation waits for its answer and reports a failure itself. {why}",
                pack=NIST,
            )
            handler = cast(cdk.CfnResource, function.node.default_child)
            for check, reason in DEPLOY_TIME_HANDLER_SKIPS.items():
                if check != "CKV_AWS_115":  # it has a concurrency limit
                    skip_checkov(
                        [handler], check, reason.replace("CDK's deploy-time", "A deploy-time")
                    )
            skip_checkov(
                [handler],
                "CKV_AWS_173",
                "Its environment holds no variables; checkov flags the unencrypted default.",
            )
        acknowledge(
            self.init_waiter,
            "IAM5",
            resource=stack.format_arn(
                service="ecs", resource="task", resource_name=f"{self.cluster.cluster_name}/*"
            ),
            reason="Reads the state of the init task it just started; task ids exist only "
            f"at run time, and the pattern covers this cluster only. {why}",
        )
        provider = self.init_provider
        for name in ("framework-onEvent", "framework-isComplete", "framework-onTimeout"):
            framework = provider.node.find_child(name)
            acknowledge(
                framework,
                "IAM4",
                policy=f"arn:{stack.partition}:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole",
                reason=f"CDK's Provider framework writes its own logs. {why}",
            )
            acknowledge(framework, "L1", reason=f"CDK pins the runtime of its framework. {why}")
            acknowledge_deploy_time_handler(framework, "CDK's Provider framework. " + why)
            acknowledge(
                framework,
                "LambdaInsideVPC",
                "CDK's Provider framework only invokes the init handlers (the Lambda API, "
                "for which this VPC has no endpoint) and answers CloudFormation. " + why,
                pack=NIST,
            )
            framework_function = cast(cdk.CfnResource, framework.node.default_child)
            lint_ignore(
                framework_function,
                "W3005",
                "CDK adds a DependsOn that its own GetAtt already implies: harmless.",
            )
            for check, reason in DEPLOY_TIME_HANDLER_SKIPS.items():
                skip_checkov([framework_function], check, reason)
            skip_checkov(
                [framework_function],
                "CKV_AWS_117",
                "CDK's Provider framework calls only the Lambda and Step Functions APIs; the "
                "VPC has no endpoint for them.",
            )
            skip_checkov(
                [framework_function],
                "CKV_AWS_173",
                "Its variables name the init handlers and the waiter, not secrets.",
            )
            for init_function in (self.init_starter, self.init_waiter):
                acknowledge(
                    framework,
                    "IAM5",
                    resource=f"{init_function.function_arn}:*",
                    reason=f"CDK's Provider framework invokes any version of its handler. {why}",
                )
        skip_checkov(
            [cast(cdk.CfnResource, self.access_logs.node.default_child)],
            "CKV_AWS_18",
            "This bucket is the load balancer's access-log destination; logging it would "
            "only log the log.",
        )
        skip_checkov(
            [
                cast(
                    cdk.CfnResource,
                    machine_role_policy.node.default_child,
                )
                for machine_role_policy in [
                    provider.node.find_child("waiter-state-machine")
                    .node.find_child("Role")
                    .node.find_child("DefaultPolicy")
                ]
            ],
            "CKV_AWS_111",
            "Step Functions' log-delivery actions (logs:CreateLogDelivery and the like) take "
            "no resource; CDK's waiter needs them to write its execution log.",
        )
        redundant = "CDK adds a DependsOn that its own GetAtt or Ref already implies: harmless."
        for resource in (self.init_starter, self.init_waiter):
            lint_ignore(cast(cdk.CfnResource, resource.node.default_child), "W3005", redundant)
        machine = provider.node.find_child("waiter-state-machine")
        lint_ignore(cast(cdk.CfnResource, machine.node.default_child), "W3005", redundant)
        lint_ignore(
            cast(cdk.CfnResource, self.services["api-server"].node.default_child),
            "W3005",
            redundant,
        )
        for handler_name in ("framework-isComplete", "framework-onTimeout"):
            arn = cast(lambda_.IFunction, provider.node.find_child(handler_name)).function_arn
            acknowledge(
                machine,
                "IAM5",
                resource=f"{arn}:*",
                reason=f"CDK's waiter invokes any version of its framework function. {why}",
            )
        acknowledge(
            machine,
            "IAM5",
            resource="*",
            reason="Step Functions' log delivery actions (logs:CreateLogDelivery and the like) "
            f"have no resource-level permissions. {why}",
        )
        acknowledge(
            machine,
            "SF2",
            f"CDK's waiter only polls the init handler every 30 s; its log group records "
            f"each step. {why}",
        )
