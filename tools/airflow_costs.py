"""What an environment's Airflow costs per month, from the prices in ``config/prices.py``.

Only Airflow's own bill: the jobs' Fargate tasks cost the same on either backend. The
figures assume an always-on month (730 h), one load-balancer capacity unit for a UI used
by people, and 10 GB of MWAA metadata; data transfer and CloudWatch ingestion are left
out (the same order on both backends). ``python -m tools.airflow_costs`` prints the
comparison the README quotes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

# The MWAA endpoint list lives beside the VPC construct, which loads CDK (and jsii's banner).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from config import ENVIRONMENTS, EnvironmentConfig, MwaaConfig, SelfHostedAirflowConfig
from config.model import ServiceSize
from config.prices import HOURS_PER_MONTH, PRICES, Prices
from constructs_lib.network import AIRFLOW_ENDPOINTS

MWAA_METADATA_GB = 10
ALB_CAPACITY_UNITS = 1
#: Secrets and customer keys the self-hosted construct creates.
SELF_HOSTED_SECRETS = 6  # database, fernet key, JWT secret, API secret key, admin, notes user
SELF_HOSTED_KEYS = 3  # logs, secrets, database logs


@dataclass(frozen=True)
class Line:
    item: str
    monthly_usd: float


def _fargate(size: ServiceSize, count: int, prices: Prices) -> float:
    hourly = size.cpu / 1024 * prices.fargate_vcpu_hour
    hourly += size.memory_mib / 1024 * prices.fargate_gb_hour
    return hourly * count * HOURS_PER_MONTH


def monthly_lines(env: EnvironmentConfig, prices: Prices = PRICES) -> list[Line]:
    airflow = env.airflow
    azs = env.network.max_azs
    month = HOURS_PER_MONTH
    if isinstance(airflow, MwaaConfig):
        kind = airflow.environment_class
        extra_schedulers = max(airflow.schedulers - prices.mwaa_included_schedulers, 0)
        lines = [
            Line(f"MWAA {kind} environment", prices.mwaa_environment_hour[kind] * month),
            Line(
                f"{airflow.min_workers - 1} always-on extra worker(s)",
                (airflow.min_workers - 1) * prices.mwaa_extra_worker_hour[kind] * month,
            ),
            Line(
                f"{extra_schedulers} extra scheduler(s)",
                extra_schedulers * prices.mwaa_extra_scheduler_hour[kind] * month,
            ),
            Line(
                f"metadata database ({MWAA_METADATA_GB} GB)",
                MWAA_METADATA_GB * prices.mwaa_metadata_gb_month,
            ),
        ]
        if env.network.nat_gateways == 0:
            endpoints = len(AIRFLOW_ENDPOINTS)
            lines.append(
                Line(
                    f"{endpoints} interface endpoints MWAA needs without NAT, {azs} AZs",
                    endpoints * azs * prices.interface_endpoint_az_hour * month,
                )
            )
        return lines
    assert isinstance(airflow, SelfHostedAirflowConfig)
    db = airflow.database
    copies = 2 if db.multi_az else 1
    return [
        Line(
            f"{airflow.api_servers} api-server(s)",
            _fargate(airflow.api_server_size, airflow.api_servers, prices),
        ),
        Line(
            f"{airflow.schedulers} scheduler(s)",
            _fargate(airflow.scheduler_size, airflow.schedulers, prices),
        ),
        Line("1 dag-processor", _fargate(airflow.dag_processor_size, 1, prices)),
        Line(
            f"{airflow.min_triggerers} triggerer(s) (up to {airflow.max_triggerers})",
            _fargate(airflow.triggerer_size, airflow.min_triggerers, prices),
        ),
        Line(
            f"RDS PostgreSQL db.{db.instance_class}{' Multi-AZ' if db.multi_az else ''}, "
            f"{db.allocated_storage_gib} GB",
            copies
            * (
                prices.rds_instance_hour[db.instance_class] * month
                + db.allocated_storage_gib * prices.rds_gp3_gb_month
            ),
        ),
        Line(
            "load balancer (1 LCU)",
            (prices.alb_hour + ALB_CAPACITY_UNITS * prices.alb_lcu_hour) * month,
        ),
        Line(
            f"{SELF_HOSTED_SECRETS} secrets, {SELF_HOSTED_KEYS} KMS keys, Cloud Map zone",
            SELF_HOSTED_SECRETS * prices.secret_month
            + SELF_HOSTED_KEYS * prices.kms_key_month
            + prices.private_hosted_zone_month,
        ),
    ]


def monthly_total(env: EnvironmentConfig, prices: Prices = PRICES) -> float:
    return sum(line.monthly_usd for line in monthly_lines(env, prices))


def comparison() -> list[tuple[str, EnvironmentConfig]]:
    """Each shipped environment as configured, and on the other backend."""
    dev, prod = ENVIRONMENTS["dev"], ENVIRONMENTS["prod"]
    dev_self_hosted = dataclasses.replace(
        dev,
        airflow=SelfHostedAirflowConfig(
            schedulers=1, api_servers=1, min_triggerers=1, max_triggerers=2,
            scheduler_size=ServiceSize(1024, 2048), api_server_size=ServiceSize(512, 1024),
            dag_processor_size=ServiceSize(512, 1024), triggerer_size=ServiceSize(512, 1024),
            database=dataclasses.replace(
                SelfHostedAirflowConfig().database, instance_class="t4g.micro",
                multi_az=False, deletion_protection=False,
            ),
        ),
    )  # fmt: skip
    prod_mwaa = dataclasses.replace(
        prod, airflow=MwaaConfig(environment_class="mw1.medium", min_workers=2, max_workers=10)
    )
    return [
        ("dev as shipped (MWAA)", dev),
        ("dev self-hosted, smallest sizes", dev_self_hosted),
        ("prod as shipped (self-hosted)", prod),
        ("prod on MWAA (mw1.medium, 2 workers)", prod_mwaa),
    ]


def markdown() -> str:
    rows = ["| environment | Airflow per month | what it is |", "|---|---:|---|"]
    for name, env in comparison():
        parts = "; ".join(
            f"{line.item} ${line.monthly_usd:,.0f}"
            for line in monthly_lines(env)
            if line.monthly_usd
        )
        rows.append(f"| {name} | ${monthly_total(env):,.0f} | {parts} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(f"Airflow's own monthly cost, {PRICES.region} list prices as of {PRICES.as_of}")
    print(markdown())
