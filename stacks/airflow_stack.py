from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from config.model import EnvironmentConfig, MwaaConfig
from constructs_lib.airflow import MwaaEnvironment
from constructs_lib.airflow_self_hosted import SelfHostedAirflow
from constructs_lib.defaults import removal
from constructs_lib.job import JobPlatform
from constructs_lib.manifest import deploy_time_values

REPO = Path(__file__).resolve().parents[1]
#: The DAG file(s): what MWAA syncs into its DAGs folder.
DAGS_DIRECTORY = str(REPO / "dags")
#: The runtime package every Airflow component imports: MWAA's plugins.zip.
PLUGINS_DIRECTORY = str(REPO / "plugins")


class AirflowStack(cdk.Stack):
    """The environment's Airflow (MWAA, or self-hosted on ECS Fargate), fed with the DAGs
    and the manifest, allowed to run this environment's jobs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        platform: JobPlatform,
        manifest: Mapping[str, Any],
        local_manifest: Mapping[str, Any],
    ) -> None:
        """:param manifest: with deploy-time values as tokens (MWAA's bucket gets it
        resolved); :param local_manifest: the same with ``${LogicalId}`` placeholders
        (the self-hosted image bakes it, and fills them in at start)."""
        backend = "MWAA" if isinstance(config.airflow, MwaaConfig) else "self-hosted on ECS Fargate"
        super().__init__(scope, id, description=f"ML platform {config.name}: Airflow ({backend})")
        self.airflow: MwaaEnvironment | SelfHostedAirflow
        if isinstance(config.airflow, MwaaConfig):
            self.airflow = MwaaEnvironment(
                self,
                "Mwaa",
                environment_name=config.airflow_name,
                config=config.airflow,
                vpc=platform.vpc,
                subnets=platform.task_subnets,
                dags_directory=DAGS_DIRECTORY,
                plugins_directory=PLUGINS_DIRECTORY,
                manifest=manifest,
                pools=config.pools,
                removal_policy=removal(config.removal_policy),
            )
        else:
            self.airflow = SelfHostedAirflow(
                self,
                "SelfHosted",
                environment_name=config.airflow_name,
                config=config.airflow,
                vpc=platform.vpc,
                subnets=platform.task_subnets,
                public_subnets=platform.vpc.public_subnets,
                manifest=local_manifest,
                deploy_values=deploy_time_values(manifest, local_manifest),
                vpc_cidr=config.network.cidr
                if config.network.vpc_id is None
                else platform.vpc.vpc_cidr_block,
                pools=config.pools,
                log_group_prefix=f"/{config.prefix}/airflow/",
                log_retention_days=config.log_retention_days,
                removal_policy=removal(config.removal_policy),
            )
        role: iam.IRole = self.airflow.job_role
        # The same grants on either backend, and the same policy for 3 jobs and for 1,000
        # (platform-owned names, not per job).
        platform.grant_run_jobs(role)
        platform.grant_task_control(role)
        platform.grant_put_metrics(role)
        for job in platform.jobs:
            job.grant_read_partitions(role)  # only jobs that read their partitions from S3
