from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from config.model import EnvironmentConfig
from constructs_lib.airflow import MwaaEnvironment
from constructs_lib.defaults import removal
from constructs_lib.job import JobPlatform

REPO = Path(__file__).resolve().parents[1]
#: The DAG file(s): what MWAA syncs into its DAGs folder.
DAGS_DIRECTORY = str(REPO / "dags")
#: The runtime package every Airflow component imports: MWAA's plugins.zip.
PLUGINS_DIRECTORY = str(REPO / "plugins")


class AirflowStack(cdk.Stack):
    """MWAA, fed with the DAGs and the manifest, allowed to run this environment's jobs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        platform: JobPlatform,
        manifest: Mapping[str, Any],
    ) -> None:
        super().__init__(scope, id, description=f"ML platform {config.name}: Airflow (MWAA)")
        self.airflow = MwaaEnvironment(
            self,
            "Mwaa",
            environment_name=f"{config.prefix}-airflow",
            config=config.airflow,
            vpc=platform.vpc,
            subnets=platform.task_subnets,
            dags_directory=DAGS_DIRECTORY,
            plugins_directory=PLUGINS_DIRECTORY,
            manifest=manifest,
            pools=config.pools,
            removal_policy=removal(config.removal_policy),
        )
        role = self.airflow.execution_role
        # The same policy for 3 jobs and for 1,000 (platform-owned names, not per job).
        platform.grant_run_jobs(role)
        platform.grant_task_control(role)
        for job in platform.jobs:
            job.grant_read_partitions(role)  # only jobs that read their partitions from S3
