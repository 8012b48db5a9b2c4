"""MlJob: the one construct a data scientist adds per model.

It owns the job's task definition, log group, task and execution roles, cost tags and
manifest entry, and grants the orchestrator exactly what running this job needs. Its
inputs (``JobImage``, ``Partitions``) and checks live beside it, in ``job_inputs`` and
``job_checks``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib import defaults
from constructs_lib.acknowledgements import NIST, ONE_ROLE_POLICY, acknowledge
from constructs_lib.job_checks import (
    Declaration,
    JobConfigError,
    declaration_problems,
    fan_out_problems,
    job_tags,
    raise_if_any,
    task_definition_size_problems,
)
from constructs_lib.job_inputs import JobImage, Partitions, architecture_name, whole_seconds
from constructs_lib.job_placement import PlacesJobs
from constructs_lib.job_platform import JobPlatform
from constructs_lib.monitoring import JobAlarms
from ml_platform import contract
from ml_platform.contract import Capacity

__all__ = ["JobConfigError", "JobImage", "JobPlatform", "MlJob", "Partitions"]


@jsii.implements(iam.IGrantable)
class MlJob(Construct):
    """A scheduled ML job: one Fargate task definition fanned out over partitions.

    :param scope: a job group's stack (``declare(stack)``): the job lives in the group's
        stack recorded for it in ``jobs/stacks.json``. Any other construct: there.
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
    :param chunk_size: partitions per Fargate task, or ``"auto"``: the smallest that lets
        every chunk start within ``start_window`` (planned at synth). Default: 1.
    :param pool: Airflow pool; must be declared in the environment. Default: its default pool.
    :param pool_slots: slots each chunk takes. Default: 1.
    :param retries: 0-10. Default: 2.
    :param retry_delay: Default: 2 minutes.
    :param retry_exponential_backoff: Default: True.
    :param max_retry_delay: Default: 30 minutes.
    :param execution_timeout: per chunk. Default: 1 hour.
    :param max_active_runs: concurrent DAG runs. Default: 1.
    :param start_window: how soon after the scheduled time every chunk must have started;
        synth refuses a plan that misses it, with the arithmetic. Default: none.
    :param launch_weight: share of the launch queue while other jobs' chunks wait too
        (weight 2: twice the launches of a weight-1 job). Default: 1, every job alike.
    :param expected_chunk_time: how long one chunk usually runs (launch to stop): the
        monthly cost estimate and the run-time alarm use it. Default: unknown; the
        estimate then uses ``execution_timeout`` and says it is a ceiling.
    :param max_start_delay: the first chunk RUNNING later than this after the scheduled
        time raises an alarm. Default: ``start_window`` if set, else 5 minutes.
    :param capacity: :class:`Capacity`. Default: the environment's ``default_capacity``;
        on-demand for ARM64 when that default is a spot one (Fargate Spot is x86_64 only).
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
        cpu: int = contract.DEFAULT_CPU,
        memory_mib: int = contract.DEFAULT_MEMORY_MIB,
        ephemeral_storage_gib: int | None = None,
        cpu_architecture: ecs.CpuArchitecture = ecs.CpuArchitecture.X86_64,
        environment: Mapping[str, str] | None = None,
        secrets: Mapping[str, ecs.Secret] | None = None,
        schedule: str | None = None,
        partitions: Partitions | None = None,
        chunk_size: int | Literal["auto"] = contract.DEFAULT_CHUNK_SIZE,
        pool: str | None = None,
        pool_slots: int = contract.DEFAULT_POOL_SLOTS,
        retries: int = contract.DEFAULT_RETRIES,
        retry_delay: cdk.Duration = defaults.DEFAULT_RETRY_DELAY,
        retry_exponential_backoff: bool = True,
        max_retry_delay: cdk.Duration = defaults.DEFAULT_MAX_RETRY_DELAY,
        execution_timeout: cdk.Duration = defaults.DEFAULT_EXECUTION_TIMEOUT,
        max_active_runs: int = contract.DEFAULT_MAX_ACTIVE_RUNS,
        launch_weight: float = contract.DEFAULT_LAUNCH_WEIGHT,
        start_window: cdk.Duration | None = None,
        expected_chunk_time: cdk.Duration | None = None,
        max_start_delay: cdk.Duration | None = None,
        capacity: Capacity | None = None,
        cost_center: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        # In a job group's stack, the job lives in the group's stack recorded for it.
        super().__init__(scope.home_of(name) if isinstance(scope, PlacesJobs) else scope, id)
        env = platform.environment
        declared = Declaration(
            name=name,
            team=team,
            description=description,
            image=image,
            command=command,
            cpu=cpu,
            memory_mib=memory_mib,
            ephemeral_storage_gib=ephemeral_storage_gib,
            cpu_architecture=cpu_architecture,
            environment=dict(environment or {}),
            secrets=dict(secrets or {}),
            schedule=schedule,
            partitions=partitions or Partitions.static(["all"]),
            chunk_size=chunk_size,
            pool=pool or env.default_pool,
            pool_slots=pool_slots,
            retries=retries,
            retry_delay=retry_delay,
            retry_exponential_backoff=retry_exponential_backoff,
            max_retry_delay=max_retry_delay,
            execution_timeout=execution_timeout,
            max_active_runs=max_active_runs,
            launch_weight=launch_weight,
            start_window=start_window,
            expected_chunk_time=expected_chunk_time,
            max_start_delay=max_start_delay,
            capacity=capacity or self._default_capacity(env.compute.default_capacity,
                                                        cpu_architecture),
            capacity_chosen=capacity is not None,
            cost_center=cost_center,
            tags=dict(tags or {}),
        )  # fmt: skip
        raise_if_any(name, env, declaration_problems(declared, env))
        #: Every argument, defaults filled in (``capacity``, ``pool``, ``partitions``).
        self.declaration = declared
        self.name = name
        self.platform = platform
        self.image = image
        self.partitions = declared.partitions
        #: Partitions per task; for ``"auto"``, set by the launch plan (``resolve_chunk_size``).
        self.chunk_size: int | None = (
            declared.chunk_size if isinstance(declared.chunk_size, int) else None
        )
        self.capacity = declared.capacity
        self.family = f"{env.prefix}-{name}"
        self.job_tags = job_tags(declared)
        self._manifest_entry: dict[str, Any] | None = None
        environment, secrets = declared.environment, declared.secrets
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
            environment={
                **dict(zip(contract.JOB_ENVIRONMENT, (name, env.name), strict=True)),
                **environment,
            },
            secrets=secrets or None,
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=defaults.LOG_STREAM_PREFIX, log_group=self.log_group
            ),
        )
        self.alarms = JobAlarms(
            self,
            "Alarms",
            prefix=env.prefix,
            namespace=env.metrics_namespace,
            job=name,
            team=team,
            max_start_delay_seconds=self.max_start_delay_seconds,
            expected_chunk_seconds=whole_seconds(expected_chunk_time)
            if expected_chunk_time
            else None,
            run_time_factor=env.monitoring.run_time_alarm_factor,
            action=platform.alarm_action,
        )
        for key, value in self.job_tags.items():
            cdk.Tags.of(self).add(key, value)
        # RegisterTaskDefinition's size limit, known as soon as the container is defined.
        definitions = cast(ecs.CfnTaskDefinition, self.task_definition.node.default_child)
        raise_if_any(
            name,
            env,
            task_definition_size_problems(
                cdk.Stack.of(self).resolve(definitions.container_definitions)
            ),
        )

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
        return grant.combine(self.grant_read_partitions(grantee))

    def grant_read_partitions(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read the job's partitions object (S3 partitions only; a static
        list needs nothing, and this grants nothing)."""
        if self.partitions.bucket is None or not self.partitions.key:
            return iam.Grant.drop(grantee, "static partitions")
        return self.partitions.bucket.grant_read(grantee, self.partitions.key)

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

    def resolve_chunk_size(self, size: int) -> None:
        """The launch plan's choice for ``chunk_size="auto"``, checked like a declared one."""
        chosen = dataclasses.replace(self.declaration, chunk_size=size)
        env = self.platform.environment
        raise_if_any(self.name, env, fan_out_problems(chosen, env))
        self.chunk_size = size
        self._manifest_entry = None

    def manifest_entry(self) -> dict[str, Any]:
        """This job's entry in the job manifest (values may be deploy-time tokens)."""
        if self._manifest_entry is None:  # asked for twice per synth; each jsii call costs
            self._manifest_entry = self._build_manifest_entry()
        return copy.deepcopy(self._manifest_entry)

    def _build_manifest_entry(self) -> dict[str, Any]:
        job = self.declaration
        return {
            "name": self.name,
            "description": job.description,
            "team": job.team,
            "image": self.image.reference,
            "task_definition_family": self.family,
            "container_name": defaults.CONTAINER_NAME,
            "cpu": job.cpu,
            "memory_mib": job.memory_mib,
            "logs": {"group": self.log_group_name, "stream_prefix": defaults.LOG_STREAM_PREFIX},
            "capacity": self.capacity.value,
            "schedule": job.schedule,
            "partitions": self.partitions.manifest(),
            "chunk_size": self.chunk_size,
            "pool": job.pool,
            "pool_slots": job.pool_slots,
            "retry": {
                "retries": job.retries,
                "delay_seconds": whole_seconds(job.retry_delay),
                "exponential_backoff": job.retry_exponential_backoff,
                "max_delay_seconds": whole_seconds(job.max_retry_delay),
            },
            "execution_timeout_seconds": whole_seconds(job.execution_timeout),
            "max_active_runs": job.max_active_runs,
            "launch_weight": float(job.launch_weight),
            "tags": {**self.platform.environment.tags, **self.job_tags},
            "cpu_architecture": architecture_name(job.cpu_architecture),
            "ephemeral_storage_gib": job.ephemeral_storage_gib
            or contract.FARGATE_INCLUDED_EPHEMERAL_GIB,
            "expected_chunk_seconds": (
                whole_seconds(job.expected_chunk_time) if job.expected_chunk_time else None
            ),
            "max_start_delay_seconds": self.max_start_delay_seconds,
        }

    @property
    def max_start_delay_seconds(self) -> int:
        """The start-delay alarm's threshold: declared, else the start window, else 5 min."""
        job = self.declaration
        chosen = job.max_start_delay or job.start_window
        return whole_seconds(chosen) if chosen else contract.DEFAULT_MAX_START_DELAY_SECONDS

    @staticmethod
    def _default_capacity(default: Capacity, architecture: ecs.CpuArchitecture) -> Capacity:
        if architecture_name(architecture) == "ARM64" and default is not Capacity.ON_DEMAND:
            return Capacity.ON_DEMAND  # Fargate Spot runs x86_64 tasks only
        return default
