"""Constant-elasticity demand fitted by least squares, and the price that maximises margin.

The demand model is ``ln(units) = intercept + elasticity * ln(price)``. Expected margin
``(price - unit_cost) * units`` is unimodal in price for any such fit, so a golden-section
search over the allowed bounds finds the best price without assuming the interior
closed form applies (it does not when the optimum falls outside the bounds, or when the
fitted demand is inelastic and margin rises without limit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_INVERSE_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class ElasticityFit:
    intercept: float
    elasticity: float
    stderr: float  # standard error of the elasticity
    r2: float
    n: int

    def units(self, price: float) -> float:
        """Expected units sold at ``price`` (the median under log-normal noise)."""
        return math.exp(self.intercept + self.elasticity * math.log(price))


def fit_elasticity(prices: Sequence[float], units: Sequence[float]) -> ElasticityFit:
    """Ordinary least squares of log units on log price."""
    if len(prices) != len(units):
        raise ValueError("prices and units differ in length")
    if len(prices) < 3:
        raise ValueError(f"need at least 3 observations, got {len(prices)}")
    if min(prices) <= 0 or min(units) <= 0:
        raise ValueError("prices and units must be positive for a log-log fit")
    xs = [math.log(p) for p in prices]
    ys = [math.log(q) for q in units]
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all prices are equal; elasticity is not identifiable")
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    sse = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    syy = sum((y - mean_y) ** 2 for y in ys)
    r2 = 1 - sse / syy if syy > 0 else 1.0
    stderr = math.sqrt(sse / (n - 2) / sxx) if n > 2 else math.inf
    return ElasticityFit(intercept, slope, stderr, r2, n)


def margin(fit: ElasticityFit, price: float, unit_cost: float) -> float:
    return (price - unit_cost) * fit.units(price)


def optimal_price(
    fit: ElasticityFit,
    *,
    unit_cost: float,
    min_price: float,
    max_price: float,
    tolerance: float = 1e-6,
) -> float:
    """The price in ``[min_price, max_price]`` with the highest expected margin.

    With ``unit_cost=0`` this is the revenue-maximising price.
    """
    if not 0 < min_price <= max_price:
        raise ValueError(f"need 0 < min_price <= max_price, got [{min_price}, {max_price}]")
    if unit_cost < 0:
        raise ValueError("unit_cost must not be negative")
    low, high = min_price, max_price
    a = high - _INVERSE_GOLDEN * (high - low)
    b = low + _INVERSE_GOLDEN * (high - low)
    margin_a, margin_b = margin(fit, a, unit_cost), margin(fit, b, unit_cost)
    while high - low > tolerance * max(1.0, high):
        if margin_a < margin_b:
            low, a, margin_a = a, b, margin_b
            b = low + _INVERSE_GOLDEN * (high - low)
            margin_b = margin(fit, b, unit_cost)
        else:
            high, b, margin_b = b, a, margin_a
            a = high - _INVERSE_GOLDEN * (high - low)
            margin_a = margin(fit, a, unit_cost)
    best = (low + high) / 2
    # The search only converges towards a bound; return the bound itself when it wins.
    return max(
        (min_price, best, max_price),
        key=lambda price: margin(fit, price, unit_cost),
    )
