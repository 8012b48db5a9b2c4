"""Environment config: refused on creation, naming environment and field."""

from __future__ import annotations

from typing import Any

import pytest

from config import (
    ENVIRONMENTS,
    AirflowConfig,
    ConfigError,
    EcsBudget,
    EnvironmentConfig,
    NetworkConfig,
    Pool,
)

POOLS = (Pool("batch", 10),)


def make(**overrides: Any) -> EnvironmentConfig:
    props: dict[str, Any] = {"name": "qa", "pools": POOLS, "default_pool": "batch"}
    props.update(overrides)
    return EnvironmentConfig(**props)


def test_shipped_environments_differ_only_in_values() -> None:
    dev, prod = ENVIRONMENTS["dev"], ENVIRONMENTS["prod"]
    assert dev.airflow.webserver_access.value == "PUBLIC_ONLY"
    assert prod.airflow.webserver_access.value == "PRIVATE_ONLY"
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
        ({"airflow": AirflowConfig(version="2.10.3")}, "airflow.version", "allowed: ['3.3.1']"),
        (
            {"airflow": AirflowConfig(environment_class="mw1.huge")},
            "airflow.environment_class",
            "mw1.micro",
        ),
        (
            {"airflow": AirflowConfig(min_workers=5, max_workers=2)},
            "airflow.min_workers",
            "1 <= min <= max <= 25",
        ),
        ({"airflow": AirflowConfig(schedulers=1)}, "airflow.schedulers", "2-5"),
        ({"airflow": AirflowConfig(max_map_length=0)}, "airflow.max_map_length", "1-100000"),
        ({"airflow": AirflowConfig(triggerer_capacity=0)}, "airflow.triggerer_capacity", "1-10000"),
        (
            {"airflow": AirflowConfig(weekly_maintenance_window_start="SUNDAY 3am")},
            "airflow.weekly_maintenance_window_start",
            "'SUN:03:00'",
        ),
        ({"airflow": AirflowConfig(log_level="LOUD")}, "airflow.log_level", "CRITICAL, ERROR"),
        (
            {"ecs_budget": EcsBudget(launch_rate=40)},
            "ecs_budget.launch_rate",
            "less than or equal to 20",
        ),
        ({"ecs_budget": EcsBudget(read_rate=0)}, "ecs_budget.read_rate", "greater than 0"),
        ({"ecs_budget": EcsBudget(log_rate=11)}, "ecs_budget.log_rate", "less than or equal"),
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
