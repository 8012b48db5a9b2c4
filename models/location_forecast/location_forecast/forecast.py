"""Additive Holt-Winters with an hour-of-day season, in plain Python.

The seasonal component is indexed by each observation's hour of day rather than by its
position, so the hour of day is an explicit feature and gaps in the history cannot shift
the season.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

SEASON = 24
# Small grid: the fit is cheap, and a grid is deterministic where a numeric optimiser
# could land on different local minima from different starting points.
ALPHAS = (0.05, 0.1, 0.2, 0.4)
BETAS = (0.0, 0.01, 0.05)
GAMMAS = (0.05, 0.15, 0.3)


@dataclass(frozen=True)
class HoltWinters:
    """A fitted model: the state after the last observation, plus how well it tracked."""

    alpha: float
    beta: float
    gamma: float
    level: float
    trend: float
    seasonals: tuple[float, ...]  # one per hour of day, 0-23
    sse: float  # one-step-ahead squared error after the first season

    def forecast(self, hours: Sequence[int]) -> list[float]:
        """Values for the hours of day that follow the last observation, one per step."""
        return [
            self.level + step * self.trend + self.seasonals[hour % SEASON]
            for step, hour in enumerate(hours, start=1)
        ]


def fit(
    values: Sequence[float],
    hours: Sequence[int],
    *,
    alpha: float,
    beta: float,
    gamma: float,
) -> HoltWinters:
    """Run the additive Holt-Winters recursions over an hourly series.

    ``hours`` holds each value's hour of day. Needs at least two full days: the first
    sets the seasonal profile, the first two set the starting trend.
    """
    if len(values) != len(hours):
        raise ValueError("values and hours differ in length")
    if len(values) < 2 * SEASON:
        raise ValueError(f"need at least {2 * SEASON} hourly values, got {len(values)}")
    first = sum(values[:SEASON]) / SEASON
    second = sum(values[SEASON : 2 * SEASON]) / SEASON
    trend = (second - first) / SEASON
    # The first day's mean sits mid-day; step the level back to just before value 0.
    level = first - trend * (SEASON + 1) / 2
    seasonals = [0.0] * SEASON
    for index, (value, hour) in enumerate(zip(values[:SEASON], hours[:SEASON], strict=True)):
        # Detrended, or the first day's slope would be mistaken for a daily pattern.
        seasonals[hour % SEASON] = value - (first + trend * (index - (SEASON - 1) / 2))
    sse = 0.0
    for index, (value, hour) in enumerate(zip(values, hours, strict=True)):
        slot = hour % SEASON
        predicted = level + trend + seasonals[slot]
        if index >= SEASON:
            sse += (value - predicted) ** 2
        previous = level
        level = alpha * (value - seasonals[slot]) + (1 - alpha) * (level + trend)
        trend = beta * (level - previous) + (1 - beta) * trend
        seasonals[slot] = gamma * (value - level) + (1 - gamma) * seasonals[slot]
    return HoltWinters(alpha, beta, gamma, level, trend, tuple(seasonals), sse)


def fit_best(values: Sequence[float], hours: Sequence[int]) -> HoltWinters:
    """The grid point with the lowest one-step-ahead error (first wins on ties)."""
    best: HoltWinters | None = None
    for alpha, beta, gamma in itertools.product(ALPHAS, BETAS, GAMMAS):
        model = fit(values, hours, alpha=alpha, beta=beta, gamma=gamma)
        if best is None or model.sse < best.sse:
            best = model
    assert best is not None  # the grid is never empty
    return best


def mape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    """Mean absolute percentage error, skipping zero actuals (undefined there)."""
    pairs = [(a, p) for a, p in zip(actual, predicted, strict=True) if a != 0]
    if not pairs:
        raise ValueError("MAPE is undefined when every actual value is zero")
    return 100.0 * sum(abs(a - p) / abs(a) for a, p in pairs) / len(pairs)


@dataclass(frozen=True)
class Backtest:
    """Error on the last ``horizon`` hours when the model never saw them."""

    mape: float
    mean_mape: float  # forecasting the training mean
    seasonal_naive_mape: float  # repeating the last day
    alpha: float
    beta: float
    gamma: float


def backtest(values: Sequence[float], hours: Sequence[int], horizon: int) -> Backtest:
    if horizon < 1:
        raise ValueError("backtest horizon must be at least 1")
    train, test = values[:-horizon], values[-horizon:]
    train_hours, test_hours = hours[:-horizon], hours[-horizon:]
    model = fit_best(train, train_hours)
    mean = sum(train) / len(train)
    last_day = {h % SEASON: v for h, v in zip(train_hours[-SEASON:], train[-SEASON:], strict=True)}
    return Backtest(
        mape=mape(test, [max(0.0, v) for v in model.forecast(test_hours)]),
        mean_mape=mape(test, [mean] * horizon),
        seasonal_naive_mape=mape(test, [last_day[h % SEASON] for h in test_hours]),
        alpha=model.alpha,
        beta=model.beta,
        gamma=model.gamma,
    )
