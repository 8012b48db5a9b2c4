"""The environments this repository deploys. Edit values here, never in constructs.

``dev`` runs Airflow on Amazon MWAA, ``prod`` runs its own Airflow on ECS Fargate
(README: choosing a backend); jobs, manifest, DAGs and runtime package are the same.
"""

from __future__ import annotations

from config.model import (
    AirflowDatabase,
    AirflowUi,
    Capacity,
    ComputeConfig,
    EnvironmentConfig,
    MonitoringConfig,
    MwaaConfig,
    NetworkConfig,
    Pool,
    RemovalPolicy,
    SelfHostedAirflowConfig,
    WebserverAccess,
)

_COST_TAGS = {"project": "ml-platform"}

DEV = EnvironmentConfig(
    name="dev",
    network=NetworkConfig(cidr="10.40.0.0/16", nat_gateways=0, interface_endpoints=True),
    compute=ComputeConfig(default_capacity=Capacity.SPOT),
    airflow=MwaaConfig(
        environment_class="mw1.small",
        min_workers=1,
        max_workers=2,
        webserver_access=WebserverAccess.PUBLIC,
    ),
    log_retention_days=14,
    removal_policy=RemovalPolicy.DESTROY,
    pools=(
        Pool("forecast", slots=50, description="Location forecast Fargate tasks"),
        Pool("pricing", slots=20, description="Dynamic pricing Fargate tasks"),
        Pool("batch", slots=10, description="Everything else"),
    ),
    default_pool="batch",
    tags={**_COST_TAGS, "environment": "dev"},
)

PROD = EnvironmentConfig(
    name="prod",
    network=NetworkConfig(cidr="10.41.0.0/16", max_azs=3, nat_gateways=0),
    compute=ComputeConfig(
        default_capacity=Capacity.SPOT_WITH_FALLBACK, enhanced_container_insights=True
    ),
    airflow=SelfHostedAirflowConfig(
        # Two triggerers watch the pools' 2,200 deferred tasks (1,500 each at most), and
        # each spends half the ECS budget. A range (min < max) scales them on CPU, but
        # each then gets 1/max of the budget (README: choosing a backend).
        min_triggerers=2,
        max_triggerers=2,
        triggerer_capacity=1500,
        schedulers=2,
        api_servers=2,
        database=AirflowDatabase(instance_class="t4g.medium", multi_az=True),
        ui=AirflowUi(certificate_parameter="/mlp-prod/airflow/certificate-arn"),
    ),
    log_retention_days=90,
    removal_policy=RemovalPolicy.RETAIN,
    pools=(
        # A deferred Fargate task holds its slot: slots = concurrent tasks.
        Pool("forecast", slots=2000, description="Location forecast Fargate tasks"),
        Pool("pricing", slots=150, description="Dynamic pricing Fargate tasks"),
        Pool("batch", slots=50, description="Everything else"),
    ),
    default_pool="batch",
    tags={**_COST_TAGS, "environment": "prod"},
    monitoring=MonitoringConfig(alarm_emails=("ml-platform-oncall@example.com",)),
)

ENVIRONMENTS: dict[str, EnvironmentConfig] = {env.name: env for env in (DEV, PROD)}
