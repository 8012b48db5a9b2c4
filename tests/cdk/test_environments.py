"""Environment config: refused on creation, naming environment and field."""

from __future__ import annotations

from typing import Any

import pytest

from config import (
    ENVIRONMENTS,
    AirflowBackend,
    AirflowDatabase,
    AirflowUi,
    ConfigError,
    EcsBudget,
    EnvironmentConfig,
    MwaaConfig,
    NetworkConfig,
    Pool,
    RemovalPolicy,
    SelfHostedAirflowConfig,
    ServiceSize,
)

POOLS = (Pool("batch", 10),)


def make(**overrides: Any) -> EnvironmentConfig:
    props: dict[str, Any] = {"name": "qa", "pools": POOLS, "default_pool": "batch"}
    props.update(overrides)
    return EnvironmentConfig(**props)


def test_shipped_environments_use_each_backend() -> None:
    dev, prod = ENVIRONMENTS["dev"], ENVIRONMENTS["prod"]
    assert isinstance(dev.airflow, MwaaConfig) and dev.airflow.backend is AirflowBackend.MWAA
    assert dev.airflow.webserver_access.value == "PUBLIC_ONLY"
    assert isinstance(prod.airflow, SelfHostedAirflowConfig)
    assert prod.airflow.backend is AirflowBackend.SELF_HOSTED
    assert not prod.airflow.ui.internet_facing  # never by default
    assert prod.airflow.database.multi_az and prod.airflow.database.deletion_protection
    assert dev.removal_policy.value == "destroy" and prod.removal_policy.value == "retain"
    assert dev.log_retention_days < prod.log_retention_days


@pytest.mark.parametrize(
    ("overrides", "field", "allowed"),
    [
        ({"name": "Prod!"}, "name", "2-12 lowercase letters/digits"),
        ({"account": "123"}, "account", "set both or neither"),
        ({"account": "123", "region": "eu-west-1"}, "account", "12 digits"),
        ({"account": "123456789012", "region": "mars-1"}, "region", "not an AWS region"),
        ({"log_retention_days": 10}, "log_retention_days", "allowed: (1, 3, 5, 7, 14"),
        ({"pools": ()}, "pools", "at least one pool"),
        ({"pools": POOLS + POOLS}, "pools", "declared twice"),
        ({"pools": (Pool("b a d", 1),)}, "pools", "^[A-Za-z0-9_.-]{1,50}$"),
        ({"pools": (Pool("batch", 0),)}, "pools", "greater than or equal to 1"),
        ({"default_pool": "gpu"}, "default_pool", "declared: ['batch']"),
        ({"tags": {"aws:x": "y"}}, "tags", "not starting with 'aws:'"),
        ({"network": NetworkConfig(vpc_id="vpc-1")}, "network.vpc_id", "vpc-xxxxxxxx"),
        (
            {"network": NetworkConfig(vpc_id="vpc-0123456789abcdef0")},
            "network.vpc_id",
            "needs 'account' and 'region'",
        ),
        ({"network": NetworkConfig(cidr="10.0.0.0/8")}, "network.cidr", "/16 to /24"),
        ({"network": NetworkConfig(max_azs=1)}, "network.max_azs", "MWAA needs two AZs"),
        ({"network": NetworkConfig(nat_gateways=3)}, "network.nat_gateways", "0-2"),
        (
            {"network": NetworkConfig(interface_endpoints=False)},
            "network.interface_endpoints",
            "cannot pull images",
        ),
        (
            {"network": NetworkConfig(flow_log_retention_days=2)},
            "network.flow_log_retention_days",
            "allowed",
        ),
        ({"airflow": MwaaConfig(version="2.10.3")}, "airflow.version", "allowed: ['3.3.1']"),
        (
            {"airflow": MwaaConfig(environment_class="mw1.huge")},
            "airflow.environment_class",
            "mw1.micro",
        ),
        (
            {"airflow": MwaaConfig(min_workers=5, max_workers=2)},
            "airflow.min_workers",
            "1 <= min <= max <= 25",
        ),
        ({"airflow": MwaaConfig(schedulers=1)}, "airflow.schedulers", "2-5"),
        ({"airflow": MwaaConfig(max_map_length=0)}, "airflow.max_map_length", "1-100000"),
        ({"airflow": MwaaConfig(triggerer_capacity=0)}, "airflow.triggerer_capacity", "1-10000"),
        (
            {"airflow": MwaaConfig(weekly_maintenance_window_start="SUNDAY 3am")},
            "airflow.weekly_maintenance_window_start",
            "'SUN:03:00'",
        ),
        ({"airflow": MwaaConfig(log_level="LOUD")}, "airflow.log_level", "CRITICAL, ERROR"),
        (
            {"airflow": SelfHostedAirflowConfig(version="3.0.0")},
            "airflow.version",
            "allowed: ['3.3.1']",
        ),
        (
            {"airflow": SelfHostedAirflowConfig(min_triggerers=3, max_triggerers=2)},
            "airflow.min_triggerers",
            "1 <= min <= max <= 20",
        ),
        (
            {"airflow": SelfHostedAirflowConfig(scheduler_size=ServiceSize(256, 4096))},
            "airflow.scheduler_size",
            "not a Fargate size",
        ),
        (
            {"airflow": SelfHostedAirflowConfig(database=AirflowDatabase(instance_class="x1"))},
            "airflow.database.instance_class",
            "t4g.micro",
        ),
        (
            {"airflow": SelfHostedAirflowConfig(database=AirflowDatabase(postgres_version="16"))},
            "airflow.database.postgres_version",
            "such as '16.13'",
        ),
        (
            {"airflow": SelfHostedAirflowConfig(ui=AirflowUi(certificate_parameter="cert"))},
            "airflow.ui.certificate_parameter",
            "starting with '/'",
        ),
        (
            {"airflow": SelfHostedAirflowConfig(ui=AirflowUi(allowed_cidrs=("0.0.0.0/0",)))},
            "airflow.ui.allowed_cidrs",
            "opens the UI to every address",
        ),
        (
            {"airflow": SelfHostedAirflowConfig(ui=AirflowUi(internet_facing=True))},
            "airflow.ui.allowed_cidrs",
            "needs the CIDRs allowed to reach it",
        ),
        (
            {
                "airflow": SelfHostedAirflowConfig(
                    ui=AirflowUi(internet_facing=True, allowed_cidrs=("203.0.113.0/24",))
                )
            },
            "airflow.ui.internet_facing",
            "network.nat_gateways >= 1",
        ),
        (
            {
                "airflow": SelfHostedAirflowConfig(
                    database=AirflowDatabase(multi_az=False, deletion_protection=False)
                ),
                "removal_policy": RemovalPolicy.RETAIN,
            },
            "airflow.database",
            "needs multi_az=True and deletion_protection=True",
        ),
        (
            {
                "airflow": SelfHostedAirflowConfig(max_triggerers=2, triggerer_capacity=100),
                "pools": (Pool("batch", 500),),
            },
            "airflow.max_triggerers",
            "the pools hold up to 500 deferred tasks but 2 triggerers x capacity 100",
        ),
        (
            {"ecs_budget": EcsBudget(launch_rate=40)},
            "ecs_budget.launch_rate",
            "less than or equal to 20",
        ),
        ({"ecs_budget": EcsBudget(read_rate=0)}, "ecs_budget.read_rate", "greater than 0"),
        ({"ecs_budget": EcsBudget(log_rate=6)}, "ecs_budget.log_rate", "less than or equal"),
        ({"ecs_budget": EcsBudget(launch_burst=500)}, "ecs_budget.launch_burst", "less than"),
        ({"ecs_budget": EcsBudget(poll_interval=0.5)}, "ecs_budget.poll_interval", "greater"),
    ],
)
def test_bad_environment_is_refused(overrides: dict[str, Any], field: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make(**overrides)
    message = str(caught.value)
    assert "environment '" in message and "is invalid" in message, message
    assert f"field '{field}" in message, message
    assert allowed in message, message


def test_config_is_immutable() -> None:
    env = make()
    with pytest.raises(AttributeError):
        env.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        env.tags["x"] = "y"  # type: ignore[index]
