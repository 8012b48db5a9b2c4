"""Price elasticity by OLS, margin-maximising price search, and the dynamic_pricing entry point."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dynamic_pricing import main, synthetic
from dynamic_pricing.cli import price_market
from dynamic_pricing.pricing import ElasticityFit, fit_elasticity, margin, optimal_price

AS_OF = datetime(2024, 5, 1, tzinfo=UTC)


def constant_elasticity(elasticity: float, scale: float = 1000.0) -> ElasticityFit:
    return ElasticityFit(math.log(scale), elasticity, stderr=0.0, r2=1.0, n=0)


def lerner_price(elasticity: float, unit_cost: float) -> float:
    """The analytic margin optimum for constant elasticity below -1."""
    return unit_cost * elasticity / (1 + elasticity)


def test_ols_recovers_an_exact_elasticity() -> None:
    prices = [5.0 + 0.5 * i for i in range(21)]
    units = [1000 * p**-2.0 for p in prices]
    fit = fit_elasticity(prices, units)
    assert fit.elasticity == pytest.approx(-2.0)
    assert fit.intercept == pytest.approx(math.log(1000))
    assert fit.r2 == pytest.approx(1.0)
    assert fit.stderr == pytest.approx(0.0, abs=1e-9)
    assert fit.units(10.0) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("prices", "units", "message"),
    [
        ([1.0, 2.0], [1.0, 2.0], "at least 3"),
        ([3.0, 3.0, 3.0], [1.0, 2.0, 3.0], "not identifiable"),
        ([1.0, 0.0, 2.0], [1.0, 2.0, 3.0], "positive"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "differ in length"),
    ],
)
def test_fit_rejects_unusable_data(prices: list[float], units: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_elasticity(prices, units)


@pytest.mark.parametrize(
    ("elasticity", "unit_cost"), [(-2.5, 4.0), (-1.5, 2.0), (-3.0, 10.0), (-1.2, 1.0)]
)
def test_interior_optimum_matches_the_analytic_price(elasticity: float, unit_cost: float) -> None:
    fit = constant_elasticity(elasticity)
    expected = lerner_price(elasticity, unit_cost)
    price = optimal_price(fit, unit_cost=unit_cost, min_price=0.5, max_price=100.0)
    assert 0.5 <= price <= 100.0
    assert price == pytest.approx(expected, rel=1e-4)
    # And no nearby price earns more.
    for other in (price * 0.99, price * 1.01):
        assert margin(fit, other, unit_cost) < margin(fit, price, unit_cost)


@pytest.mark.parametrize(
    ("elasticity", "unit_cost", "bounds", "expected"),
    [
        (-2.5, 4.0, (8.0, 12.0), 8.0),  # optimum 6.67 is below the range
        (-2.5, 4.0, (2.0, 5.0), 5.0),  # optimum 6.67 is above the range
        (-0.5, 4.0, (2.0, 9.0), 9.0),  # inelastic: margin keeps rising with price
        (-2.0, 0.0, (2.0, 9.0), 2.0),  # revenue only, elastic: revenue falls with price
        (-2.5, 4.0, (7.0, 7.0), 7.0),  # a fixed price
    ],
)
def test_optimum_stays_within_bounds(
    elasticity: float, unit_cost: float, bounds: tuple[float, float], expected: float
) -> None:
    fit = constant_elasticity(elasticity)
    price = optimal_price(fit, unit_cost=unit_cost, min_price=bounds[0], max_price=bounds[1])
    assert price == expected


@pytest.mark.parametrize(("low", "high", "cost"), [(0.0, 5.0, 1.0), (6.0, 5.0, 1.0), (1, 5, -1)])
def test_optimum_rejects_bad_bounds(low: float, high: float, cost: float) -> None:
    with pytest.raises(ValueError):
        optimal_price(constant_elasticity(-2), unit_cost=cost, min_price=low, max_price=high)


@pytest.mark.parametrize("market_id", ["mkt-1", "mkt-2", "mkt-3", "eu/fr", "all"])
def test_noisy_market_recovers_its_true_elasticity_and_optimum(market_id: str) -> None:
    truth, prices, units = synthetic.observations(market_id)
    fit = fit_elasticity(prices, units)
    assert abs(fit.elasticity - truth.elasticity) < 4 * fit.stderr
    assert fit.stderr < 0.1

    record, _ = price_market(market_id, AS_OF, min_ratio=0.5, max_ratio=3.0)
    low, high = record["price_bounds"]
    target = min(max(lerner_price(truth.elasticity, truth.unit_cost), low), high)
    assert low <= record["optimal_price"] <= high
    assert record["optimal_price"] == pytest.approx(target, rel=0.05)
    assert record["expected_margin"] >= record["list_price_margin"]


def test_records_flag_a_binding_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "prices.jsonl"
    monkeypatch.setenv("ML_PARTITIONS", json.dumps([f"mkt-{i}" for i in range(12)]))
    monkeypatch.setenv("ML_OUTPUT_URI", str(target))
    monkeypatch.setenv("PRICING_MAX_RATIO", "1.1")
    assert main(["--min-ratio", "0.9"]) == 0

    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 12
    for row in rows:
        low, high = row["price_bounds"]
        assert (low, high) == pytest.approx((0.9 * row["list_price"], 1.1 * row["list_price"]))
        assert low <= row["optimal_price"] <= high
        if row["binding_bound"] == "min":
            assert row["optimal_price"] == pytest.approx(low, abs=0.005)
        elif row["binding_bound"] == "max":
            assert row["optimal_price"] == pytest.approx(high, abs=0.005)
        else:
            assert low < row["optimal_price"] < high
    # Tight bounds around the list price must bind for some markets.
    assert {row["binding_bound"] for row in rows} >= {"min", None}


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--min-ratio", "1.5", "--max-ratio", "1.2"], {}),
        (["--min-ratio", "0"], {}),
        ([], {"PRICING_MAX_RATIO": "high"}),
        (["--max-ratio", "inf"], {}),
    ],
)
def test_bad_ratios_exit_2(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["--partitions", "mkt-1", *args]) == 2
