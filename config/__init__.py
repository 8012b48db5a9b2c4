"""Typed configuration, in one place."""

from config.environments import ENVIRONMENTS
from config.model import (
    AirflowBackend,
    AirflowConfig,
    AirflowDatabase,
    AirflowUi,
    Capacity,
    ComputeConfig,
    ConfigError,
    EcsBudget,
    EnvironmentConfig,
    MonitoringConfig,
    MwaaConfig,
    NetworkConfig,
    Pool,
    RemovalPolicy,
    SelfHostedAirflowConfig,
    ServiceSize,
    WebserverAccess,
)

__all__ = [
    "ENVIRONMENTS",
    "AirflowBackend",
    "AirflowConfig",
    "AirflowDatabase",
    "AirflowUi",
    "Capacity",
    "ComputeConfig",
    "ConfigError",
    "EcsBudget",
    "EnvironmentConfig",
    "MonitoringConfig",
    "MwaaConfig",
    "NetworkConfig",
    "Pool",
    "RemovalPolicy",
    "SelfHostedAirflowConfig",
    "ServiceSize",
    "WebserverAccess",
]
