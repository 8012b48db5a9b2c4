"""The fleet's tests share one thing: a Fargate simulator on 127.0.0.1 with a job
family registered, and the Airflow connection pointing at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ml_platform.fargate import client_token, started_by
from simulator.bootstrap import airflow_connection, bootstrap_family
from simulator.fargate import FargateSimulator, Scripted
from simulator.server import LocalAws

REGION = "us-east-1"
CLUSTER = "fleet-test"
FAMILY = "fleet-job"
GROUP = "/fleet/jobs/fleet-job"
CONN = "aws_sim"


@dataclass
class Bench:
    aws: LocalAws
    simulator: FargateSimulator
    network: dict[str, Any]
    behaviour: Scripted

    def request(self, name: str, *, spot: bool = False, try_number: int = 1) -> dict[str, Any]:
        return {
            "cluster": CLUSTER,
            "taskDefinition": FAMILY,
            "count": 1,
            "capacityProviderStrategy": [
                {"capacityProvider": "FARGATE_SPOT" if spot else "FARGATE", "weight": 1}
            ],
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": self.network["subnets"],
                    "securityGroups": self.network["security_groups"],
                }
            },
            "overrides": {
                "containerOverrides": [
                    {
                        "name": "model",
                        "environment": [{"name": "ML_PARTITIONS", "value": json.dumps([name])}],
                    }
                ]
            },
            "tags": [{"key": "try", "value": str(try_number)}],
            "startedBy": started_by(name),
            "clientToken": client_token(name, try_number),
        }


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    behaviour = Scripted(seconds=1.0)
    simulator = FargateSimulator(behaviour=lambda family: behaviour, start_latency=0.2)
    with LocalAws(simulator) as aws:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN.upper()}", airflow_connection(aws.endpoint_url, REGION)
        )
        network = bootstrap_family(
            aws.endpoint_url, REGION, cluster=CLUSTER, family=FAMILY, log_group=GROUP
        )
        simulator.metrics.calls.clear()
        yield Bench(aws, simulator, network, behaviour)
