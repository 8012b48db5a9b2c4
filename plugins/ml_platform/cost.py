"""What a chunk's Fargate task cost, from what ECS reports about it.

Fargate bills the task's vCPU, memory and ephemeral storage above 20 GiB per second,
from the start of the image pull (``pullStartedAt``) to the task's stop (``stoppedAt``),
with a one-minute minimum; a task that never began pulling is not billed. Fargate Spot
is billed at a discount the manifest states (Spot prices move). Sources and the date of
the prices: ``config/prices.py``.

No Airflow or botocore imports: the CDK side uses :func:`hourly_price` for estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ml_platform.contract import (
    FARGATE_INCLUDED_EPHEMERAL_GIB,
    FARGATE_MINIMUM_BILLED_SECONDS,
    FargatePrices,
)

SPOT_PROVIDER = "FARGATE_SPOT"


def hourly_price(
    prices: FargatePrices,
    *,
    cpu_units: int,
    memory_mib: int,
    architecture: str = "X86_64",
    ephemeral_gib: int = FARGATE_INCLUDED_EPHEMERAL_GIB,
    spot: bool = False,
) -> float:
    """USD per hour of one task of this size."""
    arm = architecture.upper() in ("ARM64", "ARM")
    vcpu_hour = prices.arm_vcpu_hour if arm else prices.x86_vcpu_hour
    gb_hour = prices.arm_gb_hour if arm else prices.x86_gb_hour
    extra_storage = max(ephemeral_gib - FARGATE_INCLUDED_EPHEMERAL_GIB, 0)
    price = (
        cpu_units / 1024 * vcpu_hour
        + memory_mib / 1024 * gb_hour
        + extra_storage * prices.ephemeral_gb_hour
    )
    return price * (1 - prices.spot_discount) if spot else price


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def billed_seconds(pull_started_at: Any, stopped_at: Any) -> int:
    """Seconds Fargate bills: pull start to stop, rounded up, at least a minute; 0 for a
    task that never began pulling its image."""
    pulled, stopped = _instant(pull_started_at), _instant(stopped_at)
    if pulled is None or stopped is None:
        return 0
    seconds = math.ceil((stopped - pulled).total_seconds())
    return max(seconds, FARGATE_MINIMUM_BILLED_SECONDS)


@dataclass(frozen=True)
class ChunkCost:
    billed_seconds: int
    usd: float
    spot: bool
    architecture: str


def chunk_cost(
    prices: FargatePrices,
    stopped: dict[str, Any],
    *,
    cpu_units: int,
    memory_mib: int,
    architecture: str,
    ephemeral_gib: int,
) -> ChunkCost:
    """The cost of one stopped task (``fargate.stopped_event``'s dict). Size and
    architecture come from ECS's report where it gives them, else from the job."""
    architecture = str(stopped.get("cpu_architecture") or architecture).upper()
    architecture = "ARM64" if architecture in ("ARM64", "ARM") else "X86_64"
    spot = stopped.get("capacity_provider") == SPOT_PROVIDER
    seconds = billed_seconds(stopped.get("pull_started_at"), stopped.get("stopped_at"))
    hourly = hourly_price(
        prices,
        cpu_units=int(stopped.get("cpu") or cpu_units),
        memory_mib=int(stopped.get("memory") or memory_mib),
        architecture=architecture,
        ephemeral_gib=int(stopped.get("ephemeral_storage_gib") or ephemeral_gib),
        spot=spot,
    )
    return ChunkCost(
        billed_seconds=seconds,
        usd=round(hourly * seconds / 3600, 6),
        spot=spot,
        architecture=architecture,
    )
