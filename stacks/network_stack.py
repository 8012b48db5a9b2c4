from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from config.model import EnvironmentConfig
from constructs_lib.defaults import removal
from constructs_lib.network import PlatformNetwork


class NetworkStack(cdk.Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, id, description=f"ML platform {config.name}: network", **kwargs)
        self.network = PlatformNetwork(
            self,
            "Network",
            config=config.network,
            log_group_prefix=f"/{config.prefix}",
            removal_policy=removal(config.removal_policy),
        )
