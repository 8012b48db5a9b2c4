"""The ECS cluster that runs every job's Fargate tasks."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from constructs_lib.encryption import LogEncryptionKey


class PlatformCluster(Construct):
    """Fargate + Fargate Spot cluster with Container Insights, and the jobs' log key.

    :param cluster_name: physical name; the manifest and IAM conditions refer to it.
    :param enhanced_insights: container-level Container Insights (default: task-level).
    :param job_log_group_prefix: jobs' log groups live under it; the key serves only them.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        cluster_name: str,
        job_log_group_prefix: str,
        removal_policy: cdk.RemovalPolicy,
        enhanced_insights: bool = False,
    ) -> None:
        super().__init__(scope, id)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=cluster_name,
            enable_fargate_capacity_providers=True,
            container_insights_v2=ecs.ContainerInsights.ENHANCED
            if enhanced_insights
            else ecs.ContainerInsights.ENABLED,
        )
        self.job_log_key = LogEncryptionKey(
            self,
            "JobLogKey",
            description=f"Encrypts the log groups of {cluster_name}'s ML jobs",
            log_group_prefix=job_log_group_prefix,
            removal_policy=removal_policy,
        ).key
