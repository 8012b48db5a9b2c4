"""The launch plan at synth: schedules on a clock, each busy minute's last launches from
the environment's launch budget and the jobs' weights, start windows met or refused with
the arithmetic, and chunk_size="auto"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration

from config import ENVIRONMENTS
from constructs_lib.job import JobConfigError, JobImage, MlJob, Partitions
from constructs_lib.launch_plan import last_launches, minutes_of_day, token_time
from stacks.jobs_stack import JobsStack
from stacks.platform_app import build_app

DEV = ENVIRONMENTS["dev"]  # 20 launches/s after a burst of 100
LOCATIONS = [f"loc-{n:04d}" for n in range(2000)]
MARKETS = [f"market-{n:03d}" for n in range(120)]


def test_the_mixed_burst_at_the_top_of_the_hour() -> None:
    latest = last_launches(
        {"location-forecast": (2000, 1.0), "dynamic-pricing": (120, 1.0)}, rate=20, burst=100
    )
    # 2,120 launches: the burst of 100, then 20/s; alternating, pricing's 120th chunk is the
    # ~240th launch ((240 - 100) / 20 = 7 s), the forecast's last the 2,120th.
    assert latest == {"location-forecast": pytest.approx(101.0), "dynamic-pricing": 7.0}
    # First come, first served, pricing would have waited (2120 - 100) / 20 = 101 s.
    assert token_time(2119, rate=20, burst=100) == pytest.approx(101.0)


def test_weights_shift_the_launches() -> None:
    even = last_launches({"a": (400, 1.0), "b": (400, 1.0)}, rate=10, burst=10)
    favoured = last_launches({"a": (400, 3.0), "b": (400, 1.0)}, rate=10, burst=10)
    assert favoured["a"] < even["a"] and favoured["b"] == even["b"]  # b still goes last


@pytest.mark.parametrize(
    ("schedule", "minutes"),
    [
        ("@hourly", {h * 60 for h in range(24)}),
        ("0 */3 * * *", {h * 60 for h in range(0, 24, 3)}),
        ("15 6 * * 1-5", {6 * 60 + 15}),  # weekdays only: still on the clock
        (None, set()),
    ],
)
def test_schedules_on_the_clock(schedule: str | None, minutes: set[int]) -> None:
    assert minutes_of_day(schedule) == minutes


def build(**forecast: Any) -> Any:
    """dev with two jobs that fire together at :00 every 3 hours."""

    def declare(stack: JobsStack) -> None:
        common: dict[str, Any] = {"platform": stack.platform, "team": "tests"}
        MlJob(stack, "Forecast", name="location-forecast",
              image=JobImage.from_model("location_forecast"), schedule="0 */3 * * *",
              partitions=Partitions.static(LOCATIONS), pool="forecast", **common,
              **forecast)  # fmt: skip
        MlJob(stack, "Pricing", name="dynamic-pricing",
              image=JobImage.from_model("dynamic_pricing"), schedule="@hourly",
              partitions=Partitions.static(MARKETS), pool="pricing",
              start_window=Duration.seconds(15), **common)  # fmt: skip

    app, stages = build_app({"dev": DEV}, {"plan": declare})
    app.discard()
    return stages["dev"]


def test_a_window_that_is_met_synthesizes_and_the_plan_shows_it() -> None:
    stage = build(start_window=Duration.minutes(2))
    (top,) = [m for m in stage.launch_plan if m.clock == "00:00"]
    assert top.launches == 2120
    assert dict(top.latest) == {"location-forecast": 101.0, "dynamic-pricing": 7.0}
    assert [m.clock for m in stage.launch_plan if m.launches == 2120] == [
        f"{h:02d}:00" for h in range(0, 24, 3)
    ]


def test_a_window_that_cannot_be_met_is_refused_with_the_arithmetic() -> None:
    with pytest.raises(JobConfigError) as caught:
        build(start_window=Duration.seconds(60))
    message = str(caught.value)
    assert "job 'location-forecast' in environment 'dev' is invalid" in message
    assert "field 'start_window': at 00:00 UTC, 2,120 launches" in message
    assert "its last chunk starts at ~101 s, its start_window is 60 s" in message
    assert "set chunk_size >= 2" in message


def test_auto_picks_the_smallest_chunk_size_that_meets_the_window() -> None:
    stage = build(start_window=Duration.seconds(60), chunk_size="auto")
    (forecast,) = [j for j in stage.manifest["jobs"] if j["name"] == "location-forecast"]
    # Chunks of 2: 1,000 + 120 launches, the last at (1,120 - 100) / 20 = 51 s <= 60 s;
    # chunks of 1 would end at 101 s.
    assert forecast["chunk_size"] == 2
    (top,) = [m for m in stage.launch_plan if m.clock == "00:00"]
    assert top.latest["location-forecast"] == pytest.approx(51.0)


def test_the_synth_summary_shows_the_busy_minutes(tmp_path: Path) -> None:
    from tools.synth_summary import _launch_plan

    plan = tmp_path / "dev.json"
    stage = build(start_window=Duration.minutes(2))
    plan.write_text(json.dumps([m.to_dict() for m in stage.launch_plan]))
    shown = _launch_plan(plan)
    assert "00:00, 03:00, 06:00 +5" in shown
    assert "2,120" in shown and "location-forecast ~101 s, dynamic-pricing ~7 s" in shown
