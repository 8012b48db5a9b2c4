"""Deterministic demand history per location; the stand-in for a real data source.

Each value is a pure function of the location id and the absolute UTC hour, so runs
with overlapping windows see the same history, and every machine sees the same numbers.
Randomness comes from SHA-256, never ``hash()``, which is salted per process.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOURS_PER_YEAR = 24 * 365.25


def unit_floats(*parts: str, count: int) -> list[float]:
    """``count`` (at most 8) stable uniform floats in [0, 1) derived from ``parts``."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "big") / 2**32 for i in range(count)]


@dataclass(frozen=True)
class Profile:
    base: float  # mean hourly demand
    drift: float  # amplitude of the slow yearly swing, as a share of base
    drift_phase: float
    daily: float  # amplitude of the 24 h cycle
    daily_phase: float
    half_daily: float  # amplitude of the 12 h cycle (a second daily peak)
    half_daily_phase: float
    noise: float  # standard deviation of the hourly noise


@functools.lru_cache(maxsize=1024)
def profile(location_id: str) -> Profile:
    u = unit_floats("profile", location_id, count=8)
    base = 50 + 450 * u[0]
    return Profile(
        base=base,
        drift=0.1 + 0.15 * u[1],
        drift_phase=2 * math.pi * u[2],
        daily=base * (0.2 + 0.3 * u[3]),
        daily_phase=2 * math.pi * u[4],
        half_daily=base * 0.15 * u[5],
        half_daily_phase=2 * math.pi * u[6],
        noise=base * (0.02 + 0.05 * u[7]),
    )


def hour_index(moment: datetime) -> int:
    """Whole hours since the Unix epoch; index % 24 is the UTC hour of day."""
    return int((moment - _EPOCH) // HOUR)


def expected_demand(location_id: str, index: int) -> float:
    """Demand without noise at absolute hour ``index``."""
    p = profile(location_id)
    hour = index % 24
    # A slow yearly swing gives each few-week window its own local trend.
    level = p.base * (1 + p.drift * math.sin(2 * math.pi * index / _HOURS_PER_YEAR + p.drift_phase))
    daily = p.daily * math.sin(2 * math.pi * hour / 24 + p.daily_phase)
    half_daily = p.half_daily * math.sin(4 * math.pi * hour / 24 + p.half_daily_phase)
    return level + daily + half_daily


def demand(location_id: str, index: int) -> float:
    """Observed demand at absolute hour ``index``: expected value plus Gaussian noise."""
    u1, u2 = unit_floats("noise", location_id, str(index), count=2)
    # Box-Muller; 1 - u1 keeps the logarithm's argument in (0, 1].
    gaussian = math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
    value = expected_demand(location_id, index) + profile(location_id).noise * gaussian
    return max(0.0, value)


def history(location_id: str, origin: datetime, hours: int) -> tuple[list[int], list[float]]:
    """The ``hours`` hourly observations strictly before ``origin`` (an exact hour)."""
    end = hour_index(origin)
    indices = list(range(end - hours, end))
    return indices, [demand(location_id, i) for i in indices]
