"""What every job of an environment shares, and the grants that do not depend on one job."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from config.model import EnvironmentConfig
from constructs_lib.acknowledgements import acknowledge
from constructs_lib.job_checks import JobConfigError
from constructs_lib.launch_plan import (
    BusyMinute,
    PlannedJob,
    minutes_of_day,
    plan,
    smallest_chunk_size,
    window_problems,
)


def _window(job: MlJob) -> int | None:
    window = job.declaration.start_window
    return None if window is None else int(window.to_seconds())


def _planned(job: MlJob, chunk_size: int | None) -> PlannedJob:
    count = len(job.partitions.values) if job.partitions.bucket is None else 0
    return PlannedJob(
        name=job.name,
        schedule=job.declaration.schedule,
        chunks=math.ceil(count / chunk_size) if count and chunk_size else None,
        weight=float(job.declaration.launch_weight),
        start_window_seconds=_window(job),
    )


if TYPE_CHECKING:
    from constructs_lib.job import MlJob


#: Why the job role has actions on "*" (one acknowledgement covers both grants).
UNSCOPED_ACTIONS = (
    "Actions without resource-level permissions, each limited by a condition: ecs:ListTasks "
    "by ecs:cluster (this cluster), cloudwatch:PutMetricData by cloudwatch:namespace (this "
    "environment's namespace)."
)


@dataclass
class JobPlatform:
    """What every job in an environment shares; the stage builds one and passes it on."""

    environment: EnvironmentConfig
    cluster: ecs.ICluster
    vpc: ec2.IVpc
    task_subnets: Sequence[ec2.ISubnet]
    task_security_group: ec2.ISecurityGroup
    log_key: kms.IKey
    #: Where every job's alarms go (the environment's alarm topic).
    alarm_action: cw.IAlarmAction
    jobs: list[MlJob] = field(default_factory=list)
    _names: set[str] = field(default_factory=set, repr=False)

    @property
    def log_group_prefix(self) -> str:
        return f"/{self.environment.prefix}/jobs/"

    @property
    def role_path(self) -> str:
        return f"/{self.environment.prefix}/jobs/"

    @property
    def family_prefix(self) -> str:
        """Every job's task-definition family starts with this (``MlJob.family``)."""
        return f"{self.environment.prefix}-"

    def grant_run_jobs(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` run any job of this environment and read its logs.

        Scoped by the names the platform owns, not by job, so the policy has the same
        size for 3 jobs and for 1,000: RunTask on this environment's task-definition
        families, on its cluster only; PassRole on roles under the jobs' role path, to
        ECS tasks only; log reads under the jobs' log-group prefix. Environment names
        have no hyphen, so one environment's prefix never matches another's names.
        """
        stack = cdk.Stack.of(self.cluster)
        families = stack.format_arn(
            service="ecs", resource="task-definition", resource_name=f"{self.family_prefix}*:*"
        )
        roles = stack.format_arn(
            service="iam", region="", resource="role", resource_name=f"{self.role_path[1:]}*"
        )
        groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.log_group_prefix}*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        if isinstance(grantee, Construct):
            for resource, why in (
                (families, "any revision of this environment's job families; a new job or "
                 "revision needs no new policy"),
                (roles, "the roles under this environment's job role path, passed to ECS "
                 "tasks only"),
                (groups, "the log groups under this environment's job log-group prefix"),
                (f"{groups}:log-stream:*", "streams are named per task at run time"),
            ):  # fmt: skip
                acknowledge(
                    grantee, "IAM5", resource=resource, reason=f"Platform-owned names: {why}."
                )
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ecs:RunTask"],
            resource_arns=[families],
            conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
        )
        grant = grant.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["iam:PassRole"],
                resource_arns=[roles],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        # CloudWatch Logs decrypts for the reader: no KMS permission is needed here.
        return grant.combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"],
                resource_arns=[groups, f"{groups}:log-stream:*"],
            )
        )

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
            acknowledge(grantee, "IAM5", resource="*", reason=UNSCOPED_ACTIONS)
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

    def grant_put_metrics(self, grantee: iam.IGrantable) -> iam.Grant:
        """PutMetricData into this environment's namespace only (runs' and fleets')."""
        if isinstance(grantee, Construct):
            acknowledge(grantee, "IAM5", resource="*", reason=UNSCOPED_ACTIONS)
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["cloudwatch:PutMetricData"],
            resource_arns=["*"],
            conditions={
                "StringEquals": {"cloudwatch:namespace": self.environment.metrics_namespace}
            },
        )

    def plan_launches(self) -> list[BusyMinute]:
        """Lay every job's schedule on the clock; choose ``chunk_size="auto"``; refuse a
        start window the environment's launch budget cannot meet, with the arithmetic."""
        budget = self.environment.ecs_budget
        rate, burst = budget.launch_rate, budget.launch_burst
        autos = [job for job in self.jobs if job.chunk_size is None]
        sizes = {job.name: 1 for job in autos}
        for _ in range(2):  # auto jobs firing together depend on each other's choice
            for job in autos:
                partitions = len(job.partitions.values)
                size = smallest_chunk_size(
                    partitions,
                    _window(job) or 0,
                    self._others_at_minutes(job, sizes),
                    name=job.name,
                    weight=float(job.declaration.launch_weight),
                    rate=rate,
                    burst=burst,
                    largest=partitions,
                )
                sizes[job.name] = size or partitions
        for job in autos:
            job.resolve_chunk_size(sizes[job.name])
        planned = [_planned(job, job.chunk_size) for job in self.jobs]
        busy = plan(planned, rate=rate, burst=burst)
        missed = window_problems(planned, busy, rate=rate, burst=burst)
        problems = []
        for job in self.jobs:
            if job.name not in missed:
                continue
            partitions = len(job.partitions.values)
            size = smallest_chunk_size(
                partitions,
                _window(job) or 0,
                self._others_at_minutes(job, {}),
                name=job.name,
                weight=float(job.declaration.launch_weight),
                rate=rate,
                burst=burst,
                largest=partitions,
            )
            fix = (
                f"set chunk_size >= {size} (or chunk_size='auto')"
                if size is not None
                else "no chunk size meets it: widen start_window or raise launch_weight"
            )
            problems.append((job.name, f"field 'start_window': {missed[job.name]}; {fix}"))
        if problems:
            raise JobConfigError(
                "\n".join(
                    f"job {name!r} in environment {self.environment.name!r} is invalid:\n  - {why}"
                    for name, why in problems
                )
            )
        return busy

    def _others_at_minutes(
        self, job: MlJob, sizes: dict[str, int]
    ) -> dict[int, dict[str, tuple[int, float]]]:
        """For each minute ``job`` fires: the other jobs launching then."""
        minutes: dict[int, dict[str, tuple[int, float]]] = {
            minute: {} for minute in minutes_of_day(job.declaration.schedule)
        }
        for other in self.jobs:
            if other is job:
                continue
            planned = _planned(other, other.chunk_size or sizes.get(other.name))
            if not planned.chunks:
                continue
            for minute in minutes_of_day(planned.schedule) & minutes.keys():
                minutes[minute][other.name] = (planned.chunks, planned.weight)
        return minutes

    def register(self, job: MlJob) -> None:
        if job.name in self._names:
            raise JobConfigError(
                f"job {job.name!r}: field 'name': duplicate job name in environment "
                f"{self.environment.name!r}; job names must be unique"
            )
        self.jobs.append(job)
        self._names.add(job.name)
