from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from config.model import AirflowBackend, EnvironmentConfig
from constructs_lib.defaults import removal
from constructs_lib.network import PlatformNetwork


class NetworkStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig) -> None:
        self._max_azs = config.network.max_azs
        super().__init__(scope, id, description=f"ML platform {config.name}: network")
        self.network = PlatformNetwork(
            self,
            "Network",
            config=config.network,
            log_group_prefix=f"/{config.prefix}",
            removal_policy=removal(config.removal_policy),
            mwaa_endpoints=config.airflow.backend is AirflowBackend.MWAA,
        )

    @property
    def availability_zones(self) -> list[str]:
        # Without a region CDK assumes two AZs; ask CloudFormation for as many as configured.
        if cdk.Token.is_unresolved(self.region):
            return [cdk.Fn.select(index, cdk.Fn.get_azs()) for index in range(self._max_azs)]
        return list(super().availability_zones)
