from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from config.model import EnvironmentConfig
from constructs_lib.cluster import PlatformCluster
from constructs_lib.defaults import removal
from constructs_lib.monitoring import AlarmTopic


class ComputeStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        vpc: ec2.IVpc,
    ) -> None:
        super().__init__(
            scope, id, description=f"ML platform {config.name}: ECS cluster and alarm topic"
        )
        self.cluster = PlatformCluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=config.prefix,
            job_log_group_prefix=f"/{config.prefix}/jobs/",
            removal_policy=removal(config.removal_policy),
            enhanced_insights=config.compute.enhanced_container_insights,
        )
        self.alarms = AlarmTopic(
            self,
            "Alarms",
            topic_name=f"{config.prefix}-alarms",
            emails=config.monitoring.alarm_emails,
            removal_policy=removal(config.removal_policy),
        )
