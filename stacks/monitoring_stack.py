from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from config.model import EnvironmentConfig
from constructs_lib.airflow import MwaaEnvironment
from constructs_lib.airflow_self_hosted import SelfHostedAirflow
from constructs_lib.monitoring import PlatformAlarms, PlatformDashboard


class MonitoringStack(cdk.Stack):
    """The environment's platform alarms and its dashboard (each job's own alarms live
    with the job; all of them notify the alarm topic in the compute stack)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        airflow: MwaaEnvironment | SelfHostedAirflow,
        groups: Mapping[str, Sequence[tuple[str, str]]],
        action: cw.IAlarmAction,
    ) -> None:
        super().__init__(
            scope, id, description=f"ML platform {config.name}: platform alarms and dashboard"
        )
        alarms = PlatformAlarms(
            self,
            "PlatformAlarms",
            prefix=config.prefix,
            namespace=config.metrics_namespace,
            throttled_calls_per_minute=config.monitoring.throttled_calls_per_minute,
            airflow_health=airflow.health_metrics(),
            action=action,
        )
        PlatformDashboard(
            self,
            "Dashboard",
            dashboard_name=config.prefix,
            namespace=config.metrics_namespace,
            groups=groups,
            throttled=alarms.throttled,
            platform_alarms=alarms.alarms,
        )
