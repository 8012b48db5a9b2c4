"""What a chunk and a run cost, against figures worked out by hand from the price table.

Prices (``config/prices.py``, us-east-1): x86 $0.04048 per vCPU-hour and $0.004445 per
GB-hour, ARM $0.03238 and $0.00356, ephemeral storage above 20 GiB $0.000111 per GB-hour,
Spot at the configured 60% off.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from config.prices import fargate_prices
from ml_platform.contract import FargatePrices
from ml_platform.cost import billed_seconds, chunk_cost
from ml_platform.report import build_report, metric_data, note

PRICES = FargatePrices(**fargate_prices("us-east-1"))
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def stopped(seconds: float, **extra: object) -> dict[str, object]:
    return {
        "pull_started_at": T0.isoformat(),
        "stopped_at": (T0 + timedelta(seconds=seconds)).isoformat(),
        "capacity_provider": "FARGATE",
        **extra,
    }


def cost(event: dict[str, object], cpu: int = 256, memory: int = 512, **kw: object) -> float:
    return chunk_cost(
        PRICES,
        event,
        cpu_units=cpu,
        memory_mib=memory,
        architecture=str(kw.get("architecture", "X86_64")),
        ephemeral_gib=int(kw.get("ephemeral", 20)),  # type: ignore[call-overload]
    ).usd


def test_a_short_task_is_billed_fargates_one_minute_minimum() -> None:
    assert billed_seconds(T0, T0 + timedelta(seconds=30)) == 60
    # 0.25 vCPU x 0.04048 + 0.5 GB x 0.004445 = 0.0123425 per hour; 60 s of it.
    assert cost(stopped(30)) == pytest.approx(0.0123425 / 60, abs=1e-6)


def test_billed_time_runs_from_image_pull_to_stop_rounded_up_to_the_second() -> None:
    assert billed_seconds(T0, T0 + timedelta(seconds=600.2)) == 601


def test_arm_tasks_are_priced_at_gravitons_rates() -> None:
    event = stopped(600.4, cpu_architecture="arm64")
    # 1 vCPU x 0.03238 + 2 GB x 0.00356 = 0.0395 per hour, for 601 s.
    assert cost(event, 1024, 2048) == pytest.approx(0.0395 * 601 / 3600, abs=1e-6)
    # The same task on x86: 0.04048 + 2 x 0.004445 = 0.04937 per hour.
    assert cost(stopped(600.4), 1024, 2048) == pytest.approx(0.04937 * 601 / 3600, abs=1e-6)


def test_spot_tasks_get_the_configured_discount() -> None:
    event = stopped(3600, capacity_provider="FARGATE_SPOT")
    # 0.5 x 0.04048 + 1 x 0.004445 = 0.024685 per hour, 60% off.
    assert cost(event, 512, 1024) == pytest.approx(0.024685 * 0.4, abs=1e-6)


def test_a_task_that_never_pulled_its_image_costs_nothing() -> None:
    event = {"pull_started_at": None, "stopped_at": T0.isoformat(), "capacity_provider": ""}
    assert billed_seconds(None, T0) == 0
    assert cost(event) == 0.0


def test_ephemeral_storage_above_20_gib_is_billed() -> None:
    event = stopped(3600, ephemeral_storage_gib=50)
    # 30 GiB extra x 0.000111 on top of 0.0123425.
    assert cost(event) == pytest.approx(0.0123425 + 30 * 0.000111, abs=1e-6)


def test_ecs_reported_size_wins_over_the_jobs_declared_size() -> None:
    """A task definition revision may differ from the manifest: ECS says what ran."""
    event = stopped(3600, cpu="1024", memory="2048")
    assert cost(event, 256, 512) == pytest.approx(0.04937, abs=1e-6)


def result(chunk: int, seconds: float, usd: float, start_after: float = 5.0) -> dict:
    started = T0 + timedelta(seconds=start_after)
    return {
        "chunk": chunk,
        "started_at": started.isoformat(),
        "stopped_at": (started + timedelta(seconds=seconds)).isoformat(),
        "billed_seconds": int(seconds) + 5,
        "cost_usd": usd,
    }


def test_a_runs_report_counts_failed_chunks_cost_and_the_start_delay(manifest_model) -> None:
    job = manifest_model.job("dynamic-pricing")
    chunks = [["a", "b"], ["c", "d"], ["e"]]
    facts = [result(0, 100, 0.001, 4.0), result(1, 200, 0.002, 6.0), None]
    report = build_report(job, chunks, facts, succeeded=[True, False, False], scheduled_at=T0)
    assert report["succeeded"] == 1 and report["failed"] == 2
    assert report["cost_usd"] == pytest.approx(0.003)  # the failed chunk's cost counts
    assert report["cost_per_partition_usd"] == pytest.approx(0.003 / 5)
    assert report["cost_unknown_chunks"] == 1
    assert report["start_delay_s"] == 4.0
    assert report["run_s"] == 206.0
    assert report["seconds_max"] == 200.0
    text = note(report, manifest_model)
    assert "$0.0030" in text and "1 chunk(s) never reported a stop" in text
    data = {d["MetricName"]: d for d in metric_data(report, manifest_model)}
    assert data["ChunksFailed"]["Value"] == 2.0
    assert data["RunCostUSD"]["Value"] == pytest.approx(0.003)
    assert data["StartDelaySeconds"]["Dimensions"] == [
        {"Name": "Job", "Value": "dynamic-pricing"},
        {"Name": "Team", "Value": job.team},
    ]
