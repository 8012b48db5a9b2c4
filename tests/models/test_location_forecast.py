"""Holt-Winters forecasting per location, and the location_forecast entry point."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from location_forecast import main, synthetic
from location_forecast.cli import forecast_location
from location_forecast.forecast import backtest, fit, fit_best, mape

ORIGIN = datetime(2024, 3, 10, 5, tzinfo=UTC)


def known_series(days: int, first_hour: int) -> tuple[list[int], list[float], list[float]]:
    """Hours of day, noisy values and noise-free truth for ``days`` + 1 days; peak at 15:00."""
    source = random.Random(7)
    hours, values, truth = [], [], []
    for t in range((days + 1) * 24):
        hour = (first_hour + t) % 24
        clean = 200 + 0.1 * t + 60 * math.cos(2 * math.pi * (hour - 15) / 24)
        hours.append(hour)
        truth.append(clean)
        values.append(clean + source.uniform(-8, 8))
    return hours, values, truth


def test_forecast_of_a_seasonal_series_beats_the_mean() -> None:
    # Starting mid-day checks the season is keyed by hour of day, not by position.
    hours, values, truth = known_series(days=14, first_hour=13)
    train, future_hours, future_truth = values[:-24], hours[-24:], truth[-24:]

    model = fit_best(train, hours[:-24])
    predicted = model.forecast(future_hours)
    mean = sum(train) / len(train)

    model_error = sum(abs(p - t) for p, t in zip(predicted, future_truth, strict=True)) / 24
    mean_error = sum(abs(mean - t) for t in future_truth) / 24
    assert model_error < 0.2 * mean_error
    assert model_error < 8
    assert future_hours[predicted.index(max(predicted))] in {14, 15, 16}
    assert future_hours[predicted.index(min(predicted))] in {2, 3, 4}


def test_trend_is_carried_into_the_forecast() -> None:
    hours = [t % 24 for t in range(24 * 10)]
    values = [100 + 2.0 * t for t in range(24 * 10)]  # pure trend, flat season
    model = fit(values, hours, alpha=0.2, beta=0.05, gamma=0.1)
    ahead = model.forecast([h % 24 for h in range(24 * 10, 24 * 10 + 5)])
    expected = [100 + 2.0 * t for t in range(24 * 10, 24 * 10 + 5)]
    assert ahead == pytest.approx(expected, abs=0.5)


def test_fit_needs_two_days() -> None:
    with pytest.raises(ValueError, match="at least 48"):
        fit([1.0] * 47, [h % 24 for h in range(47)], alpha=0.1, beta=0.1, gamma=0.1)


def test_mape_skips_zero_actuals_and_rejects_all_zero() -> None:
    assert mape([0.0, 100.0, 50.0], [5.0, 110.0, 45.0]) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        mape([0.0, 0.0], [1.0, 2.0])


def test_backtest_reports_the_model_beating_both_baselines() -> None:
    hours, values, _ = known_series(days=14, first_hour=0)
    result = backtest(values, hours, horizon=24)
    assert result.mape < result.seasonal_naive_mape < result.mean_mape


@pytest.mark.parametrize("location_id", ["loc-0001", "loc-0002", "depot/north", "all"])
def test_forecast_tracks_the_demand_that_then_happens(location_id: str) -> None:
    record, detail = forecast_location(location_id, ORIGIN, horizon=24)
    start = synthetic.hour_index(ORIGIN)
    realised = [synthetic.demand(location_id, i) for i in range(start, start + 24)]
    predicted = [point["demand"] for point in record["forecast"]]
    history_mean = sum(synthetic.history(location_id, ORIGIN, 21 * 24)[1]) / (21 * 24)

    assert mape(realised, predicted) < 15
    assert mape(realised, predicted) < 0.5 * mape(realised, [history_mean] * 24)
    assert record["backtest"]["mape"] < record["backtest"]["mean_mape"]
    assert f"mape={record['backtest']['mape']:.2f}" in detail


def test_history_is_a_pure_function_of_location_and_hour() -> None:
    _, now = synthetic.history("loc-7", ORIGIN, 48)
    _, later = synthetic.history("loc-7", ORIGIN + timedelta(hours=1), 48)
    assert later[:-1] == now[1:]
    assert synthetic.history("loc-8", ORIGIN, 48)[1] != now


def test_forecast_starts_at_the_scheduled_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.jsonl"
    monkeypatch.setenv("ML_LOGICAL_DATE", "2024-03-10T05:37:12+00:00")
    monkeypatch.setenv("FORECAST_HORIZON_HOURS", "30")
    assert main(["--partitions", "loc-0001", "--output", str(target)]) == 0

    [row] = [json.loads(line) for line in target.read_text().splitlines()]
    assert row["origin"] == "2024-03-10T05:00:00Z"
    assert row["horizon_hours"] == 30 and len(row["forecast"]) == 30
    assert row["forecast"][0]["timestamp"] == "2024-03-10T05:00:00Z"
    assert row["forecast"][-1]["timestamp"] == "2024-03-11T10:00:00Z"
    assert [p["hour_of_day"] for p in row["forecast"][:21]] == [*range(5, 24), 0, 1]
    assert all(p["demand"] >= 0 for p in row["forecast"])


def test_horizon_flag_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.jsonl"
    monkeypatch.setenv("FORECAST_HORIZON_HOURS", "30")
    assert main(["--partitions", "a", "--horizon", "6", "--output", str(target)]) == 0
    assert len(json.loads(target.read_text())["forecast"]) == 6


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--horizon", "0"], {}),
        (["--horizon", "169"], {}),
        ([], {"FORECAST_HORIZON_HOURS": "soon"}),
        ([], {"ML_LOGICAL_DATE": "not-a-date"}),
    ],
)
def test_bad_parameters_exit_2(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["--partitions", "a", *args]) == 2
