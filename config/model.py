"""Typed environment configuration: every difference between environments is a value here.

Constructs never branch on the environment name; they take these values as props.
Each dataclass checks itself on creation and raises ``ConfigError`` listing every
problem, naming the environment and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from config.airflow_versions import MWAA_RUNTIMES
from ml_platform.contract import (
    DEFAULT_RUN_TIME_ALARM_FACTOR,
    FARGATE_SIZES,
    MAX_MAP_LENGTH_MAX,
    Capacity,
    DeclarationError,
    EcsBudget,
    Pool,
    tag_problems,
)

__all__ = [
    "AirflowBackend",
    "AirflowConfig",
    "AirflowDatabase",
    "AirflowUi",
    "Capacity",
    "ComputeConfig",
    "ConfigError",
    "EcsBudget",
    "EnvironmentConfig",
    "LogRetention",
    "MonitoringConfig",
    "MwaaConfig",
    "NetworkConfig",
    "Pool",
    "RemovalPolicy",
    "SelfHostedAirflowConfig",
    "ServiceSize",
    "WebserverAccess",
]


class ConfigError(DeclarationError):
    """Invalid environment configuration."""


class RemovalPolicy(StrEnum):
    DESTROY = "destroy"
    RETAIN = "retain"


class AirflowBackend(StrEnum):
    MWAA = "mwaa"
    SELF_HOSTED = "self-hosted"


class WebserverAccess(StrEnum):
    PRIVATE = "PRIVATE_ONLY"
    PUBLIC = "PUBLIC_ONLY"


# CloudWatch Logs accepts only these retention periods (days).
LogRetention = int
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

MWAA_ENVIRONMENT_CLASSES = (
    "mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge",
)  # fmt: skip

ENV_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,11}$")
ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
VPC_ID_PATTERN = re.compile(r"^vpc-[0-9a-f]{8,17}$")
CIDR_PATTERN = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-4])$")


@dataclass(frozen=True)
class NetworkConfig:
    """The VPC. Set ``vpc_id`` to import an existing VPC instead of creating one."""

    #: Import this VPC (look-up answered from cdk.context.json) instead of creating one.
    vpc_id: str | None = None
    cidr: str = "10.40.0.0/16"
    max_azs: int = 2
    #: 0 keeps tasks off the internet: images, logs and secrets go through endpoints.
    nat_gateways: int = 0
    #: Interface endpoints for ECR, ECS, Logs, Secrets Manager, STS (and MWAA's needs).
    interface_endpoints: bool = True
    flow_log_retention_days: LogRetention = 30

    def problems(self) -> list[str]:
        out = []
        if self.vpc_id is not None and not VPC_ID_PATTERN.match(self.vpc_id):
            out.append(f"field 'network.vpc_id': {self.vpc_id!r} is not a VPC id (vpc-xxxxxxxx)")
        if not CIDR_PATTERN.match(self.cidr):
            out.append(f"field 'network.cidr': {self.cidr!r} must be an IPv4 CIDR /16 to /24")
        if not 2 <= self.max_azs <= 6:
            out.append(f"field 'network.max_azs': {self.max_azs} must be 2-6 (MWAA needs two AZs)")
        if not 0 <= self.nat_gateways <= self.max_azs:
            out.append(
                f"field 'network.nat_gateways': {self.nat_gateways} must be 0-{self.max_azs}"
            )
        if self.nat_gateways == 0 and not self.interface_endpoints:
            out.append(
                "field 'network.interface_endpoints': must be true when nat_gateways is 0, "
                "or tasks cannot pull images nor write logs"
            )
        if self.flow_log_retention_days not in LOG_RETENTION_DAYS:
            out.append(
                f"field 'network.flow_log_retention_days': {self.flow_log_retention_days} "
                f"is not a CloudWatch retention; allowed: {LOG_RETENTION_DAYS}"
            )
        return out


@dataclass(frozen=True)
class ComputeConfig:
    """The ECS cluster and what jobs get unless they say otherwise."""

    default_capacity: Capacity = Capacity.SPOT_WITH_FALLBACK
    #: Per-task metrics; "enhanced" adds container-level detail at extra cost.
    enhanced_container_insights: bool = False

    def problems(self) -> list[str]:
        out: list[str] = []
        if not isinstance(self.default_capacity, Capacity):
            out.append(
                f"field 'compute.default_capacity': {self.default_capacity!r}; "
                f"allowed: {[c.value for c in Capacity]} (as config.Capacity)"
            )
        if not isinstance(self.enhanced_container_insights, bool):
            out.append("field 'compute.enhanced_container_insights': must be True or False")
        return out


EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class MonitoringConfig:
    """Who hears about failures and what counts as one (``constructs_lib/monitoring.py``)."""

    #: Email addresses subscribed to the environment's alarm topic (each confirms once).
    alarm_emails: tuple[str, ...] = ()
    #: A run's slowest chunk longer than this many times the job's expected chunk time.
    run_time_alarm_factor: float = DEFAULT_RUN_TIME_ALARM_FACTOR
    #: Throttled ECS/Logs calls per minute that, for 5 minutes running, raise an alarm.
    throttled_calls_per_minute: int = 30

    def problems(self) -> list[str]:
        out = []
        for email in self.alarm_emails:
            if not isinstance(email, str) or not EMAIL_PATTERN.match(email):
                out.append(f"field 'monitoring.alarm_emails': {email!r} is not an email address")
        if not isinstance(self.run_time_alarm_factor, int | float) or not (
            1 < self.run_time_alarm_factor <= 100
        ):
            out.append(
                f"field 'monitoring.run_time_alarm_factor': {self.run_time_alarm_factor!r} "
                "must be a number above 1 and at most 100"
            )
        per_minute = self.throttled_calls_per_minute
        if not isinstance(per_minute, int) or isinstance(per_minute, bool) or per_minute < 1:
            out.append(
                f"field 'monitoring.throttled_calls_per_minute': "
                f"{self.throttled_calls_per_minute!r} must be a whole number >= 1"
            )
        return out


def _fan_out_and_triggerer_problems(max_map_length: int, triggerer_capacity: int) -> list[str]:
    """Limits both Airflow backends share."""
    out = []
    if not 1 <= max_map_length <= MAX_MAP_LENGTH_MAX:
        out.append(
            f"field 'airflow.max_map_length': {max_map_length} must be 1-{MAX_MAP_LENGTH_MAX}"
        )
    if not 1 <= triggerer_capacity <= 10_000:
        out.append(f"field 'airflow.triggerer_capacity': {triggerer_capacity} must be 1-10000")
    return out


def _log_level_problems(log_level: str) -> list[str]:
    if log_level in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        return []
    return [
        f"field 'airflow.log_level': {log_level!r}; allowed: CRITICAL, ERROR, WARNING, INFO, DEBUG"
    ]


@dataclass(frozen=True)
class MwaaConfig:
    """The Amazon MWAA environment."""

    #: The newest Airflow on MWAA (Airflow 3 is required: DAGs use airflow.sdk).
    version: str = "3.3.1"
    environment_class: str = "mw1.small"
    min_workers: int = 1
    max_workers: int = 5
    schedulers: int = 2
    webserver_access: WebserverAccess = WebserverAccess.PRIVATE
    #: Upper bound of any job's fan-out (chunks per run); MWAA's default is 1024.
    max_map_length: int = 4096
    #: Deferred tasks one triggerer watches (Airflow's default is 1000).
    triggerer_capacity: int = 1000
    weekly_maintenance_window_start: str = "SUN:03:00"
    log_level: str = "INFO"

    backend = AirflowBackend.MWAA

    @property
    def triggerers(self) -> int:
        """Triggerer processes sharing the ECS budget: MWAA runs one in each scheduler
        container."""
        return self.schedulers

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.webserver_access, WebserverAccess):
            out.append(
                f"field 'airflow.webserver_access': {self.webserver_access!r}; allowed: "
                "WebserverAccess.PRIVATE or WebserverAccess.PUBLIC"
            )
        if self.version not in MWAA_RUNTIMES:
            out.append(
                f"field 'airflow.version': {self.version!r} is not in the MWAA version table "
                f"(config/airflow_versions.py); allowed: {sorted(MWAA_RUNTIMES)}"
            )
        if self.environment_class not in MWAA_ENVIRONMENT_CLASSES:
            out.append(
                f"field 'airflow.environment_class': {self.environment_class!r}; "
                f"allowed: {MWAA_ENVIRONMENT_CLASSES}"
            )
        if not 1 <= self.min_workers <= self.max_workers <= 25:
            out.append(
                f"field 'airflow.min_workers'/'max_workers': {self.min_workers}/"
                f"{self.max_workers} must satisfy 1 <= min <= max <= 25"
            )
        if self.environment_class == "mw1.micro" and self.schedulers != 1:
            out.append(f"field 'airflow.schedulers': {self.schedulers}; mw1.micro runs exactly 1")
        elif self.environment_class != "mw1.micro" and not 2 <= self.schedulers <= 5:
            out.append(f"field 'airflow.schedulers': {self.schedulers} must be 2-5")
        out += _fan_out_and_triggerer_problems(self.max_map_length, self.triggerer_capacity)
        if not re.match(
            r"^(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30)$",
            self.weekly_maintenance_window_start,
        ):
            out.append(
                "field 'airflow.weekly_maintenance_window_start': "
                f"{self.weekly_maintenance_window_start!r} must look like 'SUN:03:00' "
                "(half-hour steps)"
            )
        out += _log_level_problems(self.log_level)
        return out


#: PostgreSQL majors Airflow 3 supports (its set-up-database page lists 14-18); the
#: config names a minor that RDS offers (RDS then applies newer minors itself).
POSTGRES_VERSION = re.compile(r"^(14|15|16|17|18)\.\d{1,2}$")
#: RDS burstable and general-purpose classes sized for an Airflow metadata database.
DATABASE_CLASSES = (
    "t4g.micro", "t4g.small", "t4g.medium", "t4g.large",
    "m7g.large", "m7g.xlarge", "r7g.large", "r7g.xlarge",
)  # fmt: skip


@dataclass(frozen=True)
class ServiceSize:
    """One Airflow component's Fargate task size (a valid Fargate CPU/memory pair)."""

    cpu: int
    memory_mib: int

    def problems(self, field_name: str) -> list[str]:
        if self.memory_mib not in FARGATE_SIZES.get(self.cpu, ()):
            return [
                f"field '{field_name}': {self.cpu} CPU units with {self.memory_mib} MiB is not "
                f"a Fargate size; allowed CPU units: {sorted(FARGATE_SIZES)}, each with the "
                "memory sizes of the Fargate task-size table"
            ]
        return []


@dataclass(frozen=True)
class AirflowDatabase:
    """Airflow's metadata database: RDS for PostgreSQL, encrypted, password generated into
    Secrets Manager."""

    instance_class: str = "t4g.small"
    postgres_version: str = "16.13"
    allocated_storage_gib: int = 20
    multi_az: bool = True
    deletion_protection: bool = True
    backup_retention_days: int = 7

    def problems(self) -> list[str]:
        out = []
        if self.instance_class not in DATABASE_CLASSES:
            out.append(
                f"field 'airflow.database.instance_class': {self.instance_class!r}; "
                f"allowed: {DATABASE_CLASSES}"
            )
        if not POSTGRES_VERSION.match(self.postgres_version):
            out.append(
                f"field 'airflow.database.postgres_version': {self.postgres_version!r} must "
                "be a PostgreSQL 14-18 minor version such as '16.13'"
            )
        if not 20 <= self.allocated_storage_gib <= 1000:
            out.append(
                f"field 'airflow.database.allocated_storage_gib': "
                f"{self.allocated_storage_gib} must be 20-1000"
            )
        if not 1 <= self.backup_retention_days <= 35:
            out.append(
                f"field 'airflow.database.backup_retention_days': "
                f"{self.backup_retention_days} must be 1-35"
            )
        return out


@dataclass(frozen=True)
class AirflowUi:
    """How people reach Airflow's UI and REST API: an HTTPS load balancer.

    The certificate's ARN is read at deploy time from an SSM parameter (the
    ``certificate_parameter``), so the templates stay account-agnostic; create the
    certificate in ACM for a name you own and put its ARN there (README).
    """

    certificate_parameter: str = "/ml-platform/airflow/certificate-arn"
    #: The name people use (the certificate's): Airflow's links and cookies name it.
    #: Unset, Airflow answers with relative links under the load balancer's own name.
    domain_name: str | None = None
    #: Internal by default; internet-facing needs public subnets and ``allowed_cidrs``.
    internet_facing: bool = False
    #: Who may reach port 443; empty means the VPC's own CIDR.
    allowed_cidrs: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        out = []
        if not re.match(r"^/[A-Za-z0-9_.\-/]{1,1010}$", self.certificate_parameter):
            out.append(
                f"field 'airflow.ui.certificate_parameter': {self.certificate_parameter!r} "
                "must be an SSM parameter name starting with '/'"
            )
        if self.domain_name is not None and not re.match(
            r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", self.domain_name
        ):
            out.append(f"field 'airflow.ui.domain_name': {self.domain_name!r} is not a DNS name")
        for cidr in self.allowed_cidrs:
            if not re.match(r"^(\d{1,3}\.){3}\d{1,3}/([0-9]|[12]\d|3[0-2])$", cidr):
                out.append(f"field 'airflow.ui.allowed_cidrs': {cidr!r} is not an IPv4 CIDR")
            elif cidr.endswith("/0"):
                out.append(
                    f"field 'airflow.ui.allowed_cidrs': {cidr!r} opens the UI to every "
                    "address; name the networks that need it"
                )
        if self.internet_facing and not self.allowed_cidrs:
            out.append(
                "field 'airflow.ui.allowed_cidrs': an internet-facing UI needs the CIDRs "
                "allowed to reach it"
            )
        return out


@dataclass(frozen=True)
class SelfHostedAirflowConfig:
    """Airflow 3 on ECS Fargate: api-server behind an HTTPS load balancer, scheduler with
    the LocalExecutor, dag-processor, triggerers scaled on CPU, RDS for PostgreSQL.

    The LocalExecutor is enough here: every chunk of a job defers at once, so a task
    process lives for seconds; the waiting happens in the triggerers.
    """

    #: A version of the MWAA version table: the image installs its parity lock.
    version: str = "3.3.1"
    #: Upper bound of any job's fan-out (chunks per run).
    max_map_length: int = 4096
    #: Deferred tasks one triggerer watches (Airflow's default is 1000).
    triggerer_capacity: int = 1000
    min_triggerers: int = 2
    max_triggerers: int = 4
    #: Target average CPU of the triggerers; ECS adds or removes triggerers to hold it.
    triggerer_cpu_target_percent: int = 60
    schedulers: int = 1
    api_servers: int = 2
    #: Task processes one scheduler's LocalExecutor runs at once (``core.parallelism``).
    parallelism: int = 32
    api_server_size: ServiceSize = field(default_factory=lambda: ServiceSize(1024, 2048))
    scheduler_size: ServiceSize = field(default_factory=lambda: ServiceSize(2048, 4096))
    dag_processor_size: ServiceSize = field(default_factory=lambda: ServiceSize(1024, 2048))
    triggerer_size: ServiceSize = field(default_factory=lambda: ServiceSize(1024, 2048))
    database: AirflowDatabase = field(default_factory=AirflowDatabase)
    ui: AirflowUi = field(default_factory=AirflowUi)
    #: The first admin of the FAB auth manager; the password is generated into Secrets
    #: Manager.
    admin_username: str = "admin"
    log_level: str = "INFO"

    backend = AirflowBackend.SELF_HOSTED

    @property
    def triggerers(self) -> int:
        """Triggerers sharing the ECS budget: each gets its share at the largest count,
        so the sum never exceeds the budget however many run."""
        return self.max_triggerers

    def problems(self) -> list[str]:
        out = []
        if self.version not in MWAA_RUNTIMES:
            out.append(
                f"field 'airflow.version': {self.version!r} has no pinned runtime "
                f"(config/airflow_versions.py); allowed: {sorted(MWAA_RUNTIMES)}"
            )
        out += _fan_out_and_triggerer_problems(self.max_map_length, self.triggerer_capacity)
        if not 1 <= self.min_triggerers <= self.max_triggerers <= 20:
            out.append(
                f"field 'airflow.min_triggerers'/'max_triggerers': {self.min_triggerers}/"
                f"{self.max_triggerers} must satisfy 1 <= min <= max <= 20"
            )
        if not 20 <= self.triggerer_cpu_target_percent <= 90:
            out.append(
                f"field 'airflow.triggerer_cpu_target_percent': "
                f"{self.triggerer_cpu_target_percent} must be 20-90"
            )
        if not 1 <= self.schedulers <= 4:
            out.append(f"field 'airflow.schedulers': {self.schedulers} must be 1-4")
        if not 1 <= self.api_servers <= 10:
            out.append(f"field 'airflow.api_servers': {self.api_servers} must be 1-10")
        if not 1 <= self.parallelism <= 256:
            out.append(f"field 'airflow.parallelism': {self.parallelism} must be 1-256")
        for name in ("api_server", "scheduler", "dag_processor", "triggerer"):
            out += getattr(self, f"{name}_size").problems(f"airflow.{name}_size")
        out += self.database.problems() + self.ui.problems()
        if not re.match(r"^[a-z][a-z0-9_.-]{1,63}$", self.admin_username):
            out.append(
                f"field 'airflow.admin_username': {self.admin_username!r} must be 2-64 "
                "lowercase letters, digits, '_', '.', '-', starting with a letter"
            )
        out += _log_level_problems(self.log_level)
        return out


#: Either backend; ``airflow.backend`` says which.
AirflowConfig = MwaaConfig | SelfHostedAirflowConfig


@dataclass(frozen=True)
class EnvironmentConfig:
    """One deployable environment (a CDK stage)."""

    name: str
    #: Leave both unset for an environment-agnostic synth (no credentials needed).
    account: str | None = None
    region: str | None = None
    network: NetworkConfig = field(default_factory=NetworkConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    airflow: AirflowConfig = field(default_factory=MwaaConfig)
    ecs_budget: EcsBudget = field(default_factory=EcsBudget)
    log_retention_days: LogRetention = 30
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    pools: tuple[Pool, ...] = ()
    #: The pool a job gets when it names none.
    default_pool: str = ""
    #: Cost-allocation tags on every resource of the environment.
    tags: Mapping[str, str] = field(default_factory=dict)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)

    @property
    def airflow_name(self) -> str:
        """The Airflow environment's name (MWAA's environment, or the self-hosted one's)."""
        return f"{self.prefix}-airflow"

    @property
    def metrics_namespace(self) -> str:
        """CloudWatch namespace of the environment's run and fleet metrics."""
        return f"MLPlatform/{self.name}"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))
        problems = self._problems()
        if problems:
            raise ConfigError(
                f"environment {self.name!r} is invalid:\n  - " + "\n  - ".join(problems)
            )

    def _problems(self) -> list[str]:
        out = []
        if not ENV_NAME_PATTERN.match(self.name):
            out.append(
                f"field 'name': {self.name!r} must be 2-12 lowercase letters/digits, "
                "starting with a letter"
            )
        if (self.account is None) != (self.region is None):
            out.append("field 'account'/'region': set both or neither")
        if self.account is not None and not ACCOUNT_PATTERN.match(self.account):
            out.append(f"field 'account': {self.account!r} must be 12 digits")
        if self.region is not None and not REGION_PATTERN.match(self.region):
            out.append(f"field 'region': {self.region!r} is not an AWS region name")
        if self.network.vpc_id is not None and self.account is None:
            out.append(
                "field 'network.vpc_id': importing a VPC needs 'account' and 'region' "
                "(the look-up is per account and region)"
            )
        out += self.network.problems() + self.compute.problems()
        if isinstance(self.monitoring, MonitoringConfig):
            out += self.monitoring.problems()
        else:
            out.append(
                f"field 'monitoring': {type(self.monitoring).__name__}; allowed: MonitoringConfig"
            )
        if not isinstance(self.airflow, MwaaConfig | SelfHostedAirflowConfig):
            out.append(
                f"field 'airflow': {type(self.airflow).__name__}; allowed: MwaaConfig or "
                "SelfHostedAirflowConfig"
            )
        else:
            out += self.airflow.problems() + self._self_hosted_problems()
        out += self.ecs_budget.problems()
        if not isinstance(self.removal_policy, RemovalPolicy):
            out.append(
                f"field 'removal_policy': {self.removal_policy!r}; allowed: "
                "RemovalPolicy.DESTROY or RemovalPolicy.RETAIN"
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            out.append(
                f"field 'log_retention_days': {self.log_retention_days} is not a CloudWatch "
                f"retention; allowed: {LOG_RETENTION_DAYS}"
            )
        if not self.pools:
            out.append("field 'pools': declare at least one pool")
        names = [pool.name for pool in self.pools]
        for name in sorted({n for n in names if names.count(n) > 1}):
            out.append(f"field 'pools': pool {name!r} is declared twice")
        for pool in self.pools:
            out += [f"field 'pools': {problem}" for problem in pool.problems()]
        if self.pools and self.default_pool not in names:
            out.append(
                f"field 'default_pool': {self.default_pool!r} is not a declared pool; "
                f"declared: {names}"
            )
        out += tag_problems(self.tags, "tags")
        return out

    def _self_hosted_problems(self) -> list[str]:
        """What a self-hosted Airflow needs from the rest of the environment."""
        airflow = self.airflow
        if not isinstance(airflow, SelfHostedAirflowConfig):
            return []
        out = []
        if self.removal_policy is RemovalPolicy.RETAIN and not (
            airflow.database.multi_az and airflow.database.deletion_protection
        ):
            out.append(
                "field 'airflow.database': an environment that retains its data "
                "(removal_policy RETAIN) needs multi_az=True and deletion_protection=True"
            )
        if airflow.ui.internet_facing and self.network.nat_gateways == 0:
            out.append(
                "field 'airflow.ui.internet_facing': needs public subnets, which this VPC "
                "has only with network.nat_gateways >= 1"
            )
        deferred = sum(pool.slots for pool in self.pools)
        ceiling = airflow.max_triggerers * airflow.triggerer_capacity
        if deferred > ceiling:
            out.append(
                f"field 'airflow.max_triggerers': the pools hold up to {deferred} deferred "
                f"tasks but {airflow.max_triggerers} triggerers x capacity "
                f"{airflow.triggerer_capacity} watch only {ceiling}; raise max_triggerers "
                "or triggerer_capacity"
            )
        return out

    @property
    def prefix(self) -> str:
        """Prefix of every physical name in the environment."""
        return f"mlp-{self.name}"

    def pool(self, name: str) -> Pool | None:
        return next((pool for pool in self.pools if pool.name == name), None)
