"""One environment = one stage: network -> compute -> job groups -> Airflow -> monitoring."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from config.model import EnvironmentConfig
from constructs_lib.job import JobPlatform
from constructs_lib.job_placement import StackPlacement
from constructs_lib.manifest import build_manifest, local_manifest
from stacks.airflow_stack import AirflowStack
from stacks.compute_stack import ComputeStack
from stacks.jobs_stack import JobsStack
from stacks.monitoring_stack import MonitoringStack
from stacks.network_stack import NetworkStack

#: A job group declares its jobs into its first stack; they spread over as many stacks as
#: the group needs (``JobsStack.home_of``), each under CloudFormation's 500 resources.
JobGroup = Callable[[JobsStack], None]


def job_platform(
    config: EnvironmentConfig, network: NetworkStack, compute: ComputeStack
) -> JobPlatform:
    """What every MlJob of the environment is given."""
    return JobPlatform(
        environment=config,
        cluster=compute.cluster.cluster,
        vpc=network.network.vpc,
        task_subnets=network.network.private_subnets,
        task_security_group=network.network.task_security_group,
        log_key=compute.cluster.job_log_key,
        alarm_action=compute.alarms.action,
    )


class PlatformStage(cdk.Stage):
    def __init__(
        self,
        scope: Construct,
        *,
        config: EnvironmentConfig,
        job_groups: Mapping[str, JobGroup],
        placement: StackPlacement,
    ) -> None:
        env = (
            cdk.Environment(account=config.account, region=config.region)
            if config.account
            else None
        )
        super().__init__(scope, config.name, env=env)
        self.config = config
        for key, value in config.tags.items():
            cdk.Tags.of(self).add(key, value)

        network = NetworkStack(self, "Network", config=config)
        compute = ComputeStack(self, "Compute", config=config, vpc=network.network.vpc)
        self.platform = job_platform(config, network, compute)
        #: Each group's first stack (``group_stacks`` on it: all of them, by number).
        self.job_stacks: dict[str, JobsStack] = {}
        for group, declare in job_groups.items():
            stack = JobsStack.for_group(
                self, platform=self.platform, group=group, placement=placement
            )
            declare(stack)
            self.job_stacks[group] = stack
        #: The minutes where jobs launch together, and when each one's last chunk starts
        #: (it also chooses chunk_size="auto" and refuses a start window it cannot meet).
        self.launch_plan = self.platform.plan_launches()
        self.manifest: dict[str, Any] = local_manifest(self.platform)
        self.airflow = AirflowStack(
            self,
            "Airflow",
            config=config,
            platform=self.platform,
            manifest=build_manifest(self.platform),
            local_manifest=self.manifest,
        )
        self.monitoring = MonitoringStack(
            self,
            "Monitoring",
            config=config,
            airflow=self.airflow.airflow,
            groups={
                group: [(job.name, job.declaration.team) for job in self.platform.jobs
                        if cdk.Stack.of(job) in stack.group_stacks.values()]
                for group, stack in self.job_stacks.items()
            },
            action=compute.alarms.action,
        )  # fmt: skip
        self.network, self.compute = network, compute
