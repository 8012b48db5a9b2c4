"""MlJob: the one construct a data scientist adds per model.

It owns the job's task definition, log group, task and execution roles, cost tags and
manifest entry, and grants the orchestrator exactly what running this job needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct
from croniter import croniter

from config.model import Capacity, EnvironmentConfig, tag_problems
from constructs_lib import defaults
from constructs_lib.acknowledgements import NIST, ONE_ROLE_POLICY, acknowledge
from ml_platform.manifest import NAME_MAX_LENGTH, NAME_PATTERN

__all__ = ["JobConfigError", "JobImage", "JobPlatform", "MlJob", "Partitions"]

_NAME = re.compile(NAME_PATTERN)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Plaintext environment variables are visible to anyone who can read the task definition.
_SECRET_LIKE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY", re.I)
_RESERVED_ENV = ("ML_JOB_NAME", "ML_ENVIRONMENT", "ML_PARTITIONS")


class JobConfigError(ValueError):
    """A job declaration that cannot be deployed; lists every problem at once."""


def _unresolved(value: Any) -> bool:
    return isinstance(value, str | int | float) and cdk.Token.is_unresolved(value)


class JobImage:
    """Where a job's container image comes from.

    Use :meth:`from_directory` to build a local folder with a Dockerfile as an asset at
    deploy time, or :meth:`from_ecr` for an image already in ECR (tag or digest).
    """

    def __init__(
        self,
        *,
        description: str,
        directory: Path | None = None,
        repository: ecr.IRepository | None = None,
        tag: str | None = None,
        digest: str | None = None,
    ) -> None:
        self.description = description
        self.directory = directory
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @classmethod
    def from_directory(cls, directory: str | Path) -> JobImage:
        """A folder holding a Dockerfile; relative paths resolve from the working directory."""
        path = Path(directory)
        return cls(description=f"asset:{path.as_posix()}", directory=path)

    @classmethod
    def from_ecr(
        cls, repository: ecr.IRepository, *, tag: str | None = None, digest: str | None = None
    ) -> JobImage:
        """An image in ECR, pinned by ``tag`` or (better, immutable) ``digest``."""
        ref = digest or tag or ""
        sep = "@" if digest else ":"
        return cls(
            description=f"{repository.repository_uri}{sep}{ref}",
            repository=repository,
            tag=tag,
            digest=digest,
        )

    def problems(self) -> list[str]:
        if self.directory is not None:
            if not (self.directory / "Dockerfile").is_file():
                return [f"field 'image': no Dockerfile in {self.directory.as_posix()!r}"]
            return []
        out = []
        if (self.tag is None) == (self.digest is None):
            out.append("field 'image': give exactly one of tag or digest for an ECR image")
        if (
            self.digest is not None
            and not _unresolved(self.digest)
            and not _DIGEST.match(self.digest)
        ):
            out.append(f"field 'image': digest {self.digest!r} must be 'sha256:' + 64 hex")
        if self.tag is not None and not _unresolved(self.tag) and not _TAG.match(self.tag):
            out.append(f"field 'image': tag {self.tag!r} is not a valid image tag")
        return out

    def bind(self, architecture: ecs.CpuArchitecture) -> ecs.ContainerImage:
        if self.directory is not None:
            platform = (
                ecr_assets.Platform.LINUX_ARM64
                if architecture == ecs.CpuArchitecture.ARM64
                else ecr_assets.Platform.LINUX_AMD64
            )
            # Absolute: the jsii runtime resolves relative paths from its own directory.
            return ecs.ContainerImage.from_asset(str(self.directory.resolve()), platform=platform)
        assert self.repository is not None
        return ecs.ContainerImage.from_ecr_repository(self.repository, self.digest or self.tag)


@dataclass(frozen=True)
class Partitions:
    """What a job fans out over: a static list, or a JSON list in S3 read at run time."""

    values: tuple[str, ...] = ()
    bucket: s3.IBucket | None = None
    key: str | None = None

    @classmethod
    def static(cls, values: Sequence[str]) -> Partitions:
        return cls(values=tuple(values))

    @classmethod
    def from_s3(cls, bucket: s3.IBucket, key: str) -> Partitions:
        """The object must hold a JSON list of strings; the orchestrator may read only it."""
        return cls(bucket=bucket, key=key)

    def problems(self) -> list[str]:
        if self.bucket is not None:
            if not self.key or (not _unresolved(self.key) and self.key.startswith("/")):
                return [
                    f"field 'partitions': S3 key {self.key!r} must be a non-empty key "
                    "without a leading '/'"
                ]
            return []
        out = []
        if not self.values:
            out.append("field 'partitions': the static list is empty; give at least one")
        bad = [v for v in self.values if not isinstance(v, str) or not v or len(v) > 256]
        if bad:
            out.append(f"field 'partitions': values must be 1-256 character strings: {bad[:3]}")
        dupes = sorted({v for v in self.values if self.values.count(v) > 1})
        if dupes:
            out.append(f"field 'partitions': duplicate values {dupes[:5]}")
        return out

    def manifest(self) -> dict[str, Any]:
        if self.bucket is not None:
            return {"kind": "s3", "bucket": self.bucket.bucket_name, "key": self.key}
        return {"kind": "static", "values": list(self.values)}


@dataclass
class JobPlatform:
    """What every job in an environment shares; the stage builds one and passes it on."""

    environment: EnvironmentConfig
    cluster: ecs.ICluster
    vpc: ec2.IVpc
    task_subnets: Sequence[ec2.ISubnet]
    task_security_group: ec2.ISecurityGroup
    log_key: kms.IKey
    jobs: list[MlJob] = field(default_factory=list)

    @property
    def log_group_prefix(self) -> str:
        return f"/{self.environment.prefix}/jobs/"

    @property
    def role_path(self) -> str:
        return f"/{self.environment.prefix}/jobs/"

    def grant_task_control(self, grantee: iam.IGrantable) -> iam.Grant:
        """Describe, list, stop and tag this cluster's tasks: what follows a RunTask."""
        stack = cdk.Stack.of(self.cluster)
        tasks = stack.format_arn(
            service="ecs", resource="task", resource_name=f"{self.environment.prefix}/*"
        )
        in_cluster = {"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}}
        if isinstance(grantee, Construct):
            acknowledge(
                grantee,
                "IAM5",
                resource=tasks,
                reason="Task ids are assigned at run time; only tasks of this cluster.",
            )
            acknowledge(
                grantee,
                "IAM5",
                resource="*",
                reason="ecs:ListTasks has no resource-level permissions; an ecs:cluster "
                "condition limits it to this cluster.",
            )
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ecs:DescribeTasks", "ecs:StopTask"],
            resource_arns=[tasks],
            conditions=in_cluster,
        )
        # RunTask with tags needs TagResource, but only as part of that RunTask.
        grant = grant.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["ecs:TagResource"],
                resource_arns=[tasks],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            )
        )
        # ListTasks has no task-level resource; the condition keeps it to this cluster.
        return grant.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["ecs:ListTasks"],
                resource_arns=["*"],
                conditions=in_cluster,
            )
        )

    def register(self, job: MlJob) -> None:
        if any(existing.name == job.name for existing in self.jobs):
            raise JobConfigError(
                f"job {job.name!r}: field 'name': duplicate job name in environment "
                f"{self.environment.name!r}; job names must be unique"
            )
        self.jobs.append(job)


def _fargate_size_problems(cpu: int, memory_mib: int, storage: int | None) -> list[str]:
    out = []
    if cpu not in defaults.FARGATE_SIZES:
        out.append(
            f"field 'cpu': {cpu} is not a Fargate CPU size; allowed: "
            f"{sorted(defaults.FARGATE_SIZES)}"
        )
    elif memory_mib not in defaults.FARGATE_SIZES[cpu]:
        sizes = defaults.FARGATE_SIZES[cpu]
        step = sizes[1] - sizes[0]
        out.append(
            f"field 'memory_mib': {memory_mib} does not fit cpu={cpu}; allowed: "
            f"{sizes[0]}-{sizes[-1]} in steps of {step}"
            + (f" ({list(sizes)})" if len(sizes) <= 4 else "")
        )
    low, high = defaults.EPHEMERAL_STORAGE_GIB
    if storage is not None and not low <= storage <= high:
        out.append(
            f"field 'ephemeral_storage_gib': {storage} must be {low}-{high} "
            "(or unset for the 20 GiB default)"
        )
    return out


def _schedule_problems(schedule: str | None) -> list[str]:
    if schedule is None or schedule in defaults.SCHEDULE_PRESETS:
        return []
    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        return [
            f"field 'schedule': {schedule!r} is not a 5-field cron expression nor a "
            f"preset; allowed presets: {list(defaults.SCHEDULE_PRESETS)}, or None"
        ]
    return []


@jsii.implements(iam.IGrantable)
class MlJob(Construct):
    """A scheduled ML job: one Fargate task definition fanned out over partitions.

    :param platform: the environment's shared platform (cluster, network, log key).
    :param name: job name, 3-40 of ``a-z 0-9 -``; names the DAG, family and log group.
    :param image: :class:`JobImage`.
    :param team: owning team; tags every resource and becomes the DAG owner.
    :param description: one line for the on-call person. Default: empty.
    :param command: container command (overrides the image's CMD). Default: the image's.
    :param cpu: Fargate CPU units. Default: 256.
    :param memory_mib: Fargate memory; must fit ``cpu`` (AWS table). Default: 512.
    :param ephemeral_storage_gib: 21-200. Default: Fargate's 20 GiB.
    :param cpu_architecture: ``ecs.CpuArchitecture``. Default: X86_64.
    :param environment: plaintext environment variables (no secrets). Default: none.
    :param secrets: ``ecs.Secret`` from Secrets Manager or SSM. Default: none.
    :param schedule: 5-field cron or a preset (``@hourly`` ...). Default: None (manual).
    :param partitions: :class:`Partitions`. Default: a single partition named ``all``.
    :param chunk_size: partitions per Fargate task. Default: 1.
    :param pool: Airflow pool; must be declared in the environment. Default: its default pool.
    :param pool_slots: slots each chunk takes. Default: 1.
    :param retries: 0-10. Default: 2.
    :param retry_delay: Default: 2 minutes.
    :param retry_exponential_backoff: Default: True.
    :param max_retry_delay: Default: 30 minutes.
    :param execution_timeout: per chunk. Default: 1 hour.
    :param max_active_runs: concurrent DAG runs. Default: 1.
    :param capacity: :class:`Capacity`. Default: the environment's ``default_capacity``.
    :param cost_center: cost-allocation tag. Default: none.
    :param tags: more tags on every resource of the job. Default: none.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        platform: JobPlatform,
        name: str,
        image: JobImage,
        team: str,
        description: str = "",
        command: Sequence[str] | None = None,
        cpu: int = defaults.DEFAULT_CPU,
        memory_mib: int = defaults.DEFAULT_MEMORY_MIB,
        ephemeral_storage_gib: int | None = None,
        cpu_architecture: ecs.CpuArchitecture = ecs.CpuArchitecture.X86_64,
        environment: Mapping[str, str] | None = None,
        secrets: Mapping[str, ecs.Secret] | None = None,
        schedule: str | None = None,
        partitions: Partitions | None = None,
        chunk_size: int = defaults.DEFAULT_CHUNK_SIZE,
        pool: str | None = None,
        pool_slots: int = 1,
        retries: int = defaults.DEFAULT_RETRIES,
        retry_delay: cdk.Duration = defaults.DEFAULT_RETRY_DELAY,
        retry_exponential_backoff: bool = True,
        max_retry_delay: cdk.Duration = defaults.DEFAULT_MAX_RETRY_DELAY,
        execution_timeout: cdk.Duration = defaults.DEFAULT_EXECUTION_TIMEOUT,
        max_active_runs: int = 1,
        capacity: Capacity | None = None,
        cost_center: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        env = platform.environment
        self.name = name
        self.platform = platform
        self.image = image
        self.team = team
        self.description = description
        self.cpu = cpu
        self.memory_mib = memory_mib
        self.schedule = schedule
        self.partitions = partitions or Partitions.static(["all"])
        self.chunk_size = chunk_size
        self.pool = pool or env.default_pool
        self.pool_slots = pool_slots
        self.retries = retries
        self.retry_delay = retry_delay
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = max_retry_delay
        self.execution_timeout = execution_timeout
        self.max_active_runs = max_active_runs
        self.capacity = capacity or env.compute.default_capacity
        self.family = f"{env.prefix}-{name}"
        self.cost_center = cost_center
        self.cpu_architecture = cpu_architecture
        self.job_tags = {
            "team": team,
            "job": name,
            **({"cost-center": cost_center} if cost_center else {}),
            **(tags or {}),
        }
        environment = dict(environment or {})
        secrets = dict(secrets or {})

        self._validate(environment, secrets, command, ephemeral_storage_gib, tags or {})
        platform.register(self)

        removal = defaults.removal(env.removal_policy)
        self.log_group_name = f"{platform.log_group_prefix}{name}"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=self.log_group_name,
            retention=defaults.retention(env.log_retention_days),
            encryption_key=platform.log_key,
            removal_policy=removal,
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            path=platform.role_path,
            description=f"{name}: the model container's permissions (only what was granted)",
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            path=platform.role_path,
            description=f"{name}: lets ECS pull the image, write logs and read the secrets",
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=self.family,
            cpu=cpu,
            memory_limit_mib=memory_mib,
            ephemeral_storage_gib=ephemeral_storage_gib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=cpu_architecture,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            task_role=self.task_role,
            execution_role=self.execution_role,
        )
        self.container = self.task_definition.add_container(
            "Model",
            container_name=defaults.CONTAINER_NAME,
            image=image.bind(cpu_architecture),
            command=list(command) if command else None,
            # Container-level memory as well, so the container cannot outgrow the task.
            memory_limit_mib=memory_mib,
            environment={"ML_JOB_NAME": name, "ML_ENVIRONMENT": env.name, **environment},
            secrets=secrets or None,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=defaults.LOG_STREAM_PREFIX, log_group=self.log_group
            ),
        )
        for key, value in self.job_tags.items():
            cdk.Tags.of(self).add(key, value)

        # Both roles: the execution role's pulls and log writes, the task role's grants.
        acknowledge(self, "IAMNoInlinePolicy", ONE_ROLE_POLICY, pack=NIST)
        acknowledge(
            self.task_definition,
            "ECS2",
            "Plain variables are non-secret settings; MlJob refuses secret-looking "
            "names and passes secrets through 'secrets' (Secrets Manager / SSM).",
        )
        acknowledge(
            self.execution_role,
            "IAM5",
            resource="*",
            reason="ecr:GetAuthorizationToken has no resource-level permissions; "
            "image pulls themselves are scoped to the job's repository.",
        )

    # -- validation ---------------------------------------------------------------------

    def _validate(
        self,
        environment: dict[str, str],
        secrets: dict[str, ecs.Secret],
        command: Sequence[str] | None,
        ephemeral_storage_gib: int | None,
        tags: Mapping[str, str],
    ) -> None:
        env = self.platform.environment
        problems = self._type_problems()
        if problems:  # the checks below assume the right types
            raise JobConfigError(
                f"job {self.name!r} in environment {env.name!r} is invalid:\n  - "
                + "\n  - ".join(problems)
            )
        if (
            not isinstance(self.name, str)
            or not _NAME.match(self.name)
            or not (3 <= len(self.name) <= NAME_MAX_LENGTH)
        ):
            problems.append(
                f"field 'name': {self.name!r} must be 3-{NAME_MAX_LENGTH} lowercase letters, "
                "digits and single hyphens, starting with a letter"
            )
        if not self.team or not isinstance(self.team, str):
            problems.append("field 'team': name the owning team")
        else:
            problems += tag_problems({"team": self.team}, "team")
        problems += self.image.problems()
        if command is not None and (
            isinstance(command, str) or not all(isinstance(part, str) for part in command)
        ):
            problems.append("field 'command': must be a list of strings, e.g. ['--horizon', '24']")
        if not _unresolved(self.cpu) and not _unresolved(self.memory_mib):
            problems += _fargate_size_problems(self.cpu, self.memory_mib, ephemeral_storage_gib)
        for key, value in environment.items():
            if not _ENV_KEY.match(key):
                problems.append(f"field 'environment': {key!r} is not a valid variable name")
            elif key in _RESERVED_ENV:
                problems.append(f"field 'environment': {key!r} is set by the platform")
            elif _SECRET_LIKE.search(key):
                problems.append(
                    f"field 'environment': {key!r} looks like a secret; pass it in "
                    "'secrets' (Secrets Manager or SSM), never as plaintext"
                )
            if not isinstance(value, str):
                problems.append(f"field 'environment': {key!r} value must be a string")
        for key, secret in secrets.items():
            if not _ENV_KEY.match(key):
                problems.append(f"field 'secrets': {key!r} is not a valid variable name")
            if not isinstance(secret, ecs.Secret):
                problems.append(
                    f"field 'secrets': {key!r} must be an ecs.Secret "
                    "(from_secrets_manager or from_ssm_parameter)"
                )
        overlap = sorted(set(environment) & set(secrets))
        if overlap:
            problems.append(f"field 'secrets': {overlap} also set in 'environment'")
        problems += _schedule_problems(self.schedule)
        problems += self.partitions.problems()
        if not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            problems.append(f"field 'chunk_size': {self.chunk_size!r} must be an integer >= 1")
        elif not self.partitions.bucket and self.partitions.values:
            chunks = -(-len(self.partitions.values) // self.chunk_size)
            if chunks > env.airflow.max_map_length:
                problems.append(
                    f"field 'chunk_size': {len(self.partitions.values)} partitions in chunks of "
                    f"{self.chunk_size} make {chunks} tasks, above the environment's "
                    f"max_map_length {env.airflow.max_map_length}; raise chunk_size"
                )
        declared = env.pool(self.pool)
        if declared is None:
            problems.append(
                f"field 'pool': {self.pool!r} is not declared in environment "
                f"{env.name!r}; declared: {[p.name for p in env.pools]}"
            )
        elif not 1 <= self.pool_slots <= declared.slots:
            problems.append(
                f"field 'pool_slots': {self.pool_slots} must be 1-{declared.slots} "
                f"(the size of pool {self.pool!r})"
            )
        if not isinstance(self.retries, int) or not 0 <= self.retries <= defaults.MAX_RETRIES:
            problems.append(f"field 'retries': {self.retries!r} must be 0-{defaults.MAX_RETRIES}")
        if self.retry_delay.to_seconds() > self.max_retry_delay.to_seconds():
            problems.append("field 'max_retry_delay': must be at least retry_delay")
        if self.execution_timeout.to_seconds() < 60:
            problems.append(
                "field 'execution_timeout': must be at least 1 minute "
                "(Fargate tasks take about a minute to start)"
            )
        if not isinstance(self.max_active_runs, int) or not 1 <= self.max_active_runs <= 16:
            problems.append(f"field 'max_active_runs': {self.max_active_runs!r} must be 1-16")
        if not isinstance(self.capacity, Capacity):
            problems.append(
                f"field 'capacity': {self.capacity!r}; allowed: {[c.value for c in Capacity]}"
            )
        problems += tag_problems(tags, "tags")
        if self.cost_center is not None:
            problems += tag_problems({"cost-center": self.cost_center}, "cost_center")
        if (
            not isinstance(self.description, str)
            or "\n" in self.description
            or (len(self.description) > 256)
        ):
            problems.append("field 'description': must be one line of at most 256 characters")
        if not isinstance(self.retry_exponential_backoff, bool):
            problems.append("field 'retry_exponential_backoff': must be True or False")
        if problems:
            raise JobConfigError(
                f"job {self.name!r} in environment {env.name!r} is invalid:\n  - "
                + "\n  - ".join(problems)
            )

    def _type_problems(self) -> list[str]:
        """Arguments of the wrong kind, named before anything else looks at them."""
        kinds: list[tuple[str, object, type, str]] = [
            ("image", self.image, JobImage, "JobImage.from_directory(...) or .from_ecr(...)"),
            ("partitions", self.partitions, Partitions, "Partitions.static([...]) or .s3(...)"),
            ("retry_delay", self.retry_delay, cdk.Duration, "a cdk.Duration"),
            ("max_retry_delay", self.max_retry_delay, cdk.Duration, "a cdk.Duration"),
            ("execution_timeout", self.execution_timeout, cdk.Duration, "a cdk.Duration"),
            ("cpu_architecture", self.cpu_architecture, ecs.CpuArchitecture,
             "ecs.CpuArchitecture.X86_64 or .ARM64"),
        ]  # fmt: skip
        return [
            f"field {field!r}: {value!r} must be {allowed}"
            for field, value, kind, allowed in kinds
            if not isinstance(value, kind)
        ]

    # -- grants -------------------------------------------------------------------------

    @property
    def grant_principal(self) -> iam.IPrincipal:
        """The task role: ``bucket.grant_read(job)`` grants the model container."""
        return self.task_role.grant_principal

    def grant_read_objects(
        self, bucket: s3.IBucket, key_pattern: str = "*", *, reason: str
    ) -> iam.Grant:
        """Let the model read objects under ``key_pattern`` (``s3:GetObject`` and a listing
        limited to that prefix): narrower than ``bucket.grant_read(job)``.

        :param reason: why the job needs these objects; recorded as the cdk-nag
            acknowledgement of the key wildcard.
        """
        return self._grant_objects(
            bucket, key_pattern, ["s3:GetObject"], reason=reason, decrypt=True
        )

    def grant_write_objects(
        self, bucket: s3.IBucket, key_pattern: str = "*", *, reason: str
    ) -> iam.Grant:
        """Let the model write its results under ``key_pattern`` (``s3:PutObject``)."""
        return self._grant_objects(
            bucket,
            key_pattern,
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            reason=reason,
            decrypt=False,
        )

    def _grant_objects(
        self,
        bucket: s3.IBucket,
        key_pattern: str,
        actions: list[str],
        *,
        reason: str,
        decrypt: bool,
    ) -> iam.Grant:
        if len(reason) < 20:
            raise JobConfigError(
                f"job {self.name!r}: field 'reason': say in a sentence why the job needs "
                f"{actions} on {key_pattern!r}"
            )
        objects = bucket.arn_for_objects(key_pattern)
        grant = iam.Grant.add_to_principal(
            grantee=self.task_role, actions=actions, resource_arns=[objects]
        )
        if decrypt and bucket.encryption_key is not None:
            grant = grant.combine(bucket.encryption_key.grant_decrypt(self.task_role))
        elif bucket.encryption_key is not None:
            grant = grant.combine(bucket.encryption_key.grant_encrypt(self.task_role))
        if decrypt:
            grant = grant.combine(
                iam.Grant.add_to_principal(
                    grantee=self.task_role,
                    actions=["s3:ListBucket"],
                    resource_arns=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [key_pattern]}},
                )
            )
        if "*" in key_pattern:
            acknowledge(self.task_role, "IAM5", resource=objects, reason=reason)
        return grant

    def grant_run(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` run exactly this task definition on the platform's cluster,
        pass exactly this job's two roles to ECS, and read its partitions object."""
        stack = cdk.Stack.of(self)
        revisions = stack.format_arn(
            service="ecs", resource="task-definition", resource_name=f"{self.family}:*"
        )
        if isinstance(grantee, Construct):
            acknowledge(
                grantee,
                "IAM5",
                resource=revisions,
                reason=f"Any revision of exactly the {self.family!r} family, so a "
                "deploy of a new revision does not need a new policy.",
            )
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ecs:RunTask"],
            resource_arns=[revisions],
            conditions={"ArnEquals": {"ecs:cluster": self.platform.cluster.cluster_arn}},
        )
        grant = grant.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["iam:PassRole"],
                resource_arns=[self.task_role.role_arn, self.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        if self.partitions.bucket is not None and self.partitions.key:
            grant = grant.combine(self.partitions.bucket.grant_read(grantee, self.partitions.key))
        return grant

    def grant_read_logs(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read this job's container logs (and nothing else)."""
        group_arn = cdk.Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.log_group_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        if isinstance(grantee, Construct):
            acknowledge(
                grantee,
                "IAM5",
                resource=f"{group_arn}:log-stream:*",
                reason=f"Streams are named per task at run time; only streams of "
                f"the {self.log_group_name!r} group.",
            )
        # CloudWatch Logs decrypts for the reader: no KMS permission is needed here.
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"],
            resource_arns=[group_arn, f"{group_arn}:log-stream:*"],
        )

    # -- manifest -----------------------------------------------------------------------

    def manifest_entry(self) -> dict[str, Any]:
        """This job's entry in the job manifest (values may be deploy-time tokens)."""
        return {
            "name": self.name,
            "description": self.description,
            "team": self.team,
            "image": self.image.description,
            "task_definition_family": self.family,
            "container_name": defaults.CONTAINER_NAME,
            "cpu": self.cpu,
            "memory_mib": self.memory_mib,
            "logs": {"group": self.log_group_name, "stream_prefix": defaults.LOG_STREAM_PREFIX},
            "capacity": self.capacity.value,
            "schedule": self.schedule,
            "partitions": self.partitions.manifest(),
            "chunk_size": self.chunk_size,
            "pool": self.pool,
            "pool_slots": self.pool_slots,
            "retry": {
                "retries": self.retries,
                "delay_seconds": int(self.retry_delay.to_seconds()),
                "exponential_backoff": self.retry_exponential_backoff,
                "max_delay_seconds": int(self.max_retry_delay.to_seconds()),
            },
            "execution_timeout_seconds": int(self.execution_timeout.to_seconds()),
            "max_active_runs": self.max_active_runs,
            "tags": {**self.platform.environment.tags, **self.job_tags},
        }
