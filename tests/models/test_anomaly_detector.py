"""Rolling-median / MAD anomaly detection, and the anomaly_detector entry point."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from anomaly_detector import main, synthetic
from anomaly_detector.detection import detect, robust_scale, rolling_median


def seasonal_series(n: int = 300, seed: int = 3) -> list[float]:
    source = random.Random(seed)
    return [50 + 5 * math.sin(2 * math.pi * i / 24) + source.uniform(-1, 1) for i in range(n)]


def test_injected_spikes_are_found_with_their_direction() -> None:
    values = seasonal_series()
    values[50] += 15
    values[120] -= 12
    values[201] += 20
    found = detect(values)
    assert [a.index for a in found] == [50, 120, 201]
    assert [a.score > 0 for a in found] == [True, False, True]
    assert found[0].expected == pytest.approx(values[50] - 15, abs=2.5)


def test_a_clean_series_has_no_anomalies() -> None:
    assert detect(seasonal_series()) == []


def test_follows_a_steep_season_that_a_global_z_score_cannot() -> None:
    # A daily swing 15x the noise: a spike at the trough is still near the global mean.
    source = random.Random(11)
    values = [100 + 15 * math.sin(2 * math.pi * i / 24) + source.gauss(0, 1) for i in range(240)]
    assert detect(values) == []
    values[114] += 12  # hour 18, the trough
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    assert abs(values[114] - mean) / sd < 0.5
    assert [a.index for a in detect(values)] == [114]


def test_a_huge_outlier_does_not_mask_a_smaller_one() -> None:
    # A standard deviation would be inflated by the huge spike; the MAD is not.
    values = seasonal_series()
    values[60] += 1000
    values[150] += 8
    assert [a.index for a in detect(values)] == [60, 150]


@pytest.mark.parametrize("sensor_id", [f"sensor-{i}" for i in range(10)])
def test_synthetic_anomalies_are_all_found_and_nothing_else(sensor_id: str) -> None:
    data = synthetic.series(sensor_id)
    assert 3 <= len(data.injected) <= 5
    assert [a.index for a in detect(data.values)] == data.injected


@pytest.mark.parametrize("sensor_id", [f"sensor-{i}" for i in range(10)])
def test_synthetic_clean_series_yield_nothing(sensor_id: str) -> None:
    data = synthetic.series(sensor_id, anomalies=0)
    assert data.injected == []
    assert detect(data.values) == []


def test_rolling_median_leaves_the_point_out_and_skips_the_ends() -> None:
    values = [1.0, 2.0, 3.0, 100.0, 5.0, 6.0, 7.0]
    # Neighbours of index 3 are 1, 2, 3, 5, 6, 7: median 4. No other point has a full window.
    assert rolling_median(values, 7) == [4.0]
    assert rolling_median(values, 3) == [2.0, 51.0, 4.0, 53.0, 6.0]
    with pytest.raises(ValueError, match="odd"):
        rolling_median(values, 4)
    with pytest.raises(ValueError, match="odd"):
        rolling_median(values, 1)


def test_end_points_are_not_scored() -> None:
    values = seasonal_series()
    values[0] += 30
    values[-2] -= 30
    values[3] += 30  # the first point with a full window of 7
    assert [a.index for a in detect(values, window=7)] == [3]


def test_flat_series_uses_the_fallback_scale() -> None:
    values = [10.0] * 100
    values[40] = 10.5
    assert robust_scale([0.0] * 99 + [0.5]) > 0  # MAD is 0, the mean deviation is not
    assert [a.index for a in detect(values)] == [40]
    assert detect([10.0] * 100) == []


def test_threshold_must_be_positive_and_series_long_enough() -> None:
    with pytest.raises(ValueError, match="threshold"):
        detect(seasonal_series(), threshold=0)
    with pytest.raises(ValueError, match="window"):
        detect([1.0, 2.0, 3.0], window=7)


def test_record_timestamps_end_at_the_scheduled_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.jsonl"
    monkeypatch.setenv("ML_LOGICAL_DATE", "2024-05-01T06:45:00Z")
    monkeypatch.setenv("ML_PARTITIONS", '["sensor-1"]')
    assert main(["--output", str(target)]) == 0

    [row] = [json.loads(line) for line in target.read_text().splitlines()]
    end = datetime(2024, 5, 1, 6, tzinfo=UTC)
    start = end - timedelta(hours=synthetic.POINTS)
    assert (row["start"], row["end"]) == (
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    assert row["points"] == synthetic.POINTS
    assert row["scored_indices"] == [3, synthetic.POINTS - 4]
    assert [a["index"] for a in row["anomalies"]] == row["injected_indices"]
    assert (row["precision"], row["recall"]) == (1.0, 1.0)
    for anomaly in row["anomalies"]:
        expected = start + timedelta(hours=anomaly["index"])
        assert anomaly["timestamp"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert abs(anomaly["score"]) > row["threshold"]


def test_threshold_flag_changes_what_is_flagged(tmp_path: Path) -> None:
    strict, loose = tmp_path / "strict.jsonl", tmp_path / "loose.jsonl"
    assert main(["--partitions", "sensor-1", "--output", str(strict)]) == 0
    assert main(["--partitions", "sensor-1", "--threshold", "2", "--output", str(loose)]) == 0
    strict_row, loose_row = json.loads(strict.read_text()), json.loads(loose.read_text())
    assert len(loose_row["anomalies"]) > len(strict_row["anomalies"])
    assert loose_row["recall"] == 1.0 and loose_row["precision"] < 1.0


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--window", "4"], {}),
        (["--window", "1"], {}),
        ([], {"ANOMALY_WINDOW": "101"}),
        (["--threshold", "-1"], {}),
        ([], {"ANOMALY_THRESHOLD": "high"}),
    ],
)
def test_bad_parameters_exit_2(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["--partitions", "sensor-1", *args]) == 2
