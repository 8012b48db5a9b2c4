"""Typed configuration, in one place."""

from config.environments import ENVIRONMENTS
from config.model import (
    AirflowConfig,
    Capacity,
    ComputeConfig,
    ConfigError,
    EcsBudget,
    EnvironmentConfig,
    NetworkConfig,
    Pool,
    RemovalPolicy,
    WebserverAccess,
)

__all__ = [
    "ENVIRONMENTS",
    "AirflowConfig",
    "Capacity",
    "ComputeConfig",
    "ConfigError",
    "EcsBudget",
    "EnvironmentConfig",
    "NetworkConfig",
    "Pool",
    "RemovalPolicy",
    "WebserverAccess",
]
