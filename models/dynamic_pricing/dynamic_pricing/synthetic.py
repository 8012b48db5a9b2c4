"""Deterministic price-experiment history per market; the stand-in for a real data source.

Randomness is seeded from SHA-256 of the market id, never ``hash()``, which is salted
per process. Only ``Random.random()`` is used: it is the one generator method whose
sequence Python promises to keep across versions.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

OBSERVATIONS = 180


def rng(*parts: str) -> random.Random:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def gaussian(source: random.Random) -> float:
    """A standard normal draw by Box-Muller from two ``random()`` calls."""
    u1, u2 = source.random(), source.random()
    return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)


@dataclass(frozen=True)
class Market:
    list_price: float  # the current price, around which experiments were run
    unit_cost: float
    elasticity: float  # the true one, which the fit has to recover
    base_units: float  # expected units per day at the list price
    noise: float  # standard deviation of log units


def market(market_id: str) -> Market:
    source = rng("market", market_id)
    list_price = round(5 + 45 * source.random(), 2)
    return Market(
        list_price=list_price,
        unit_cost=round(list_price * (0.35 + 0.25 * source.random()), 2),
        elasticity=-(1.3 + 1.7 * source.random()),
        base_units=100 + 1900 * source.random(),
        noise=0.05 + 0.1 * source.random(),
    )


def observations(market_id: str, n: int = OBSERVATIONS) -> tuple[Market, list[float], list[float]]:
    """``n`` days of (price, units): prices tested within 70-130 % of the list price."""
    truth = market(market_id)
    source = rng("observations", market_id)
    prices: list[float] = []
    units: list[float] = []
    for _ in range(n):
        price = round(truth.list_price * (0.7 + 0.6 * source.random()), 2)
        log_units = (
            math.log(truth.base_units)
            + truth.elasticity * math.log(price / truth.list_price)
            + truth.noise * gaussian(source)
        )
        prices.append(price)
        units.append(math.exp(log_units))
    return truth, prices, units
