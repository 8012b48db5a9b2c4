"""List prices the platform's cost figures use: one table, with its region, date and source.

Not fetched live (this repository builds offline): update the numbers and ``as_of`` when
AWS changes them. Spot is a discount from config, not a price, because Spot prices move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Prices:
    region: str
    as_of: str
    sources: tuple[str, ...]
    # Fargate, Linux, on-demand: x86_64 and ARM64 (Graviton); ephemeral storage above
    # the 20 GiB included.
    fargate_vcpu_hour: float
    fargate_gb_hour: float
    fargate_arm_vcpu_hour: float
    fargate_arm_gb_hour: float
    fargate_ephemeral_gb_hour: float
    #: Fargate Spot's discount from on-demand: an assumption, since Spot prices move
    #: (AWS quotes "up to 70%"). Lower it if the bills show less.
    fargate_spot_discount: float
    # Amazon MWAA: the environment (its default schedulers and one worker), then extras.
    mwaa_environment_hour: Mapping[str, float]
    mwaa_extra_worker_hour: Mapping[str, float]
    mwaa_extra_scheduler_hour: Mapping[str, float]
    mwaa_metadata_gb_month: float
    #: Schedulers included in MWAA's environment price (mw1.micro: 1).
    mwaa_included_schedulers: int
    # RDS for PostgreSQL, single-AZ on-demand; Multi-AZ doubles instance and storage.
    rds_instance_hour: Mapping[str, float]
    rds_gp3_gb_month: float
    # Everything else either backend adds.
    alb_hour: float
    alb_lcu_hour: float
    secret_month: float
    kms_key_month: float
    interface_endpoint_az_hour: float
    private_hosted_zone_month: float
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("mwaa_environment_hour", "mwaa_extra_worker_hour",
                     "mwaa_extra_scheduler_hour", "rds_instance_hour"):  # fmt: skip
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


PRICES = Prices(
    region="us-east-1",
    as_of="2026-11-26",
    sources=(
        "https://aws.amazon.com/fargate/pricing/",
        "https://aws.amazon.com/managed-workflows-for-apache-airflow/pricing/ (environment "
        "$0.49/0.74/0.99 per hour, extra worker and scheduler $0.055/0.11/0.22, as also "
        "tabled by dev.classmethod.jp on 2025-11-30)",
        "https://aws.amazon.com/rds/postgresql/pricing/",
        "https://aws.amazon.com/elasticloadbalancing/pricing/",
        "https://aws.amazon.com/secrets-manager/pricing/",
        "https://aws.amazon.com/kms/pricing/",
        "https://aws.amazon.com/privatelink/pricing/",
        "https://aws.amazon.com/route53/pricing/",
    ),
    fargate_vcpu_hour=0.04048,
    fargate_gb_hour=0.004445,
    fargate_arm_vcpu_hour=0.03238,
    fargate_arm_gb_hour=0.00356,
    fargate_ephemeral_gb_hour=0.000111,
    fargate_spot_discount=0.6,
    mwaa_environment_hour={
        "mw1.micro": 0.24,
        "mw1.small": 0.49,
        "mw1.medium": 0.74,
        "mw1.large": 0.99,
    },
    mwaa_extra_worker_hour={
        "mw1.micro": 0.0,
        "mw1.small": 0.055,
        "mw1.medium": 0.11,
        "mw1.large": 0.22,
    },
    mwaa_extra_scheduler_hour={
        "mw1.micro": 0.0,
        "mw1.small": 0.055,
        "mw1.medium": 0.11,
        "mw1.large": 0.22,
    },
    mwaa_metadata_gb_month=0.10,
    mwaa_included_schedulers=2,
    rds_instance_hour={
        "t4g.micro": 0.016,
        "t4g.small": 0.032,
        "t4g.medium": 0.065,
        "t4g.large": 0.129,
        "m7g.large": 0.168,
        "m7g.xlarge": 0.336,
        "r7g.large": 0.218,
        "r7g.xlarge": 0.435,
    },
    rds_gp3_gb_month=0.115,
    alb_hour=0.0225,
    alb_lcu_hour=0.008,
    secret_month=0.40,
    kms_key_month=1.00,
    interface_endpoint_az_hour=0.01,
    private_hosted_zone_month=0.50,
)


#: Price tables by region. A region without one is priced with us-east-1's, and every
#: figure names the table's region, so nobody mistakes it for the local price.
PRICES_BY_REGION: Mapping[str, Prices] = MappingProxyType({PRICES.region: PRICES})


def prices_for(region: str | None) -> Prices:
    """The price table of an environment's region, else us-east-1's."""
    return PRICES_BY_REGION.get(region or PRICES.region, PRICES)


def fargate_prices(region: str | None) -> dict[str, object]:
    """The manifest's ``prices`` (``ml_platform.contract.FargatePrices``)."""
    table = prices_for(region)
    return {
        "region": table.region,
        "as_of": table.as_of,
        "source": table.sources[0],
        "x86_vcpu_hour": table.fargate_vcpu_hour,
        "x86_gb_hour": table.fargate_gb_hour,
        "arm_vcpu_hour": table.fargate_arm_vcpu_hour,
        "arm_gb_hour": table.fargate_arm_gb_hour,
        "ephemeral_gb_hour": table.fargate_ephemeral_gb_hour,
        "spot_discount": table.fargate_spot_discount,
    }
