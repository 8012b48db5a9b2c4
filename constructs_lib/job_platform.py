"""What every job of an environment shares, and the grants that do not depend on one job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from config.model import EnvironmentConfig
from constructs_lib.acknowledgements import acknowledge
from constructs_lib.job_checks import JobConfigError

if TYPE_CHECKING:
    from constructs_lib.job import MlJob


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
