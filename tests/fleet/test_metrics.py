"""Metrics at a fixed API cost, counted against the simulator: a fleet writes at most once
per interval whatever the number of tasks, nothing while idle, and a run writes once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from ml_platform import metrics
from ml_platform.contract import EcsBudget, MetricName, parse_manifest
from ml_platform.fargate import FargateJobTrigger
from ml_platform.fleet import Fleet
from ml_platform.metrics import publish_run_metrics
from tests.fleet.conftest import CONN, GROUP, REGION, Bench
from tests.fleet.test_fleet import FAST_POLL

NAMESPACE = "MLPlatform/test"


def job_trigger(bench: Bench, name: str, job: str) -> FargateJobTrigger:
    return FargateJobTrigger(
        request=bench.request(name),
        region=REGION,
        aws_conn_id=CONN,
        fleet=FAST_POLL.to_dict(),
        try_number=1,
        log_group=GROUP,
        log_stream_prefix="job",
        spot_fallback=False,
        job=job,
        team=f"team-{job}",
        metrics_namespace=NAMESPACE,
    )


def datapoints(bench: Bench, name: str, dimensions: dict[str, str]) -> float:
    cloudwatch = boto3.client(
        "cloudwatch", endpoint_url=bench.aws.endpoint_url, region_name=REGION,
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    now = datetime.now(UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
        Period=3600,
        Statistics=["Sum"],
    )
    return sum(point["Sum"] for point in answer["Datapoints"])


def test_a_fleet_writes_one_call_per_interval_for_all_its_tasks(bench: Bench) -> None:
    """30 chunks of two jobs: one PutMetricData carries every job's figures."""
    bench.behaviour.seconds = 0.5

    async def scenario() -> tuple[int, int]:
        triggers = [job_trigger(bench, f"a{i}", "job-a") for i in range(20)]
        triggers += [job_trigger(bench, f"b{i}", "job-b") for i in range(10)]

        async def first(t: FargateJobTrigger) -> dict[str, Any]:
            async for event in t.run():
                return dict(event.payload)
            raise AssertionError("no event")

        events = await asyncio.gather(*(first(t) for t in triggers))
        assert all(e["status"] == "stopped" for e in events)
        fleet = Fleet.get(EcsBudget(**FAST_POLL.to_dict()))
        calls = await fleet.write_metrics()  # what the minute's write sends
        idle = await fleet.write_metrics()  # nothing happened since: nothing is sent
        await fleet.close()
        return calls, idle

    calls, idle = asyncio.run(scenario())
    assert (calls, idle) == (1, 0)
    assert bench.simulator.metrics.calls["PutMetricData"] == 1
    assert datapoints(bench, MetricName.LAUNCHES, {"Job": "job-a", "Team": "team-job-a"}) == 20
    assert datapoints(bench, MetricName.LAUNCHES, {"Job": "job-b", "Team": "team-job-b"}) == 10
    copied = datapoints(bench, MetricName.LOGS_COPIED, {"Job": "job-a", "Team": "team-job-a"})
    missed = datapoints(bench, MetricName.LOGS_MISSED, {"Job": "job-a", "Team": "team-job-a"})
    assert copied + missed == 20


def test_throttled_calls_are_counted_per_api() -> None:
    counts = metrics.FleetCounters()
    counts.throttled["DescribeTasks"] += 3
    counts.launches["job-a"] += 2
    data = metrics.fleet_metric_data(counts.take(), running=Counter(), teams={"job-a": "t"})
    throttled = [d for d in data if d["MetricName"] == MetricName.THROTTLED_CALLS]
    assert throttled == [
        {"MetricName": "ThrottledCalls", "Dimensions": [{"Name": "Api", "Value": "DescribeTasks"}],
         "Value": 3.0, "Unit": "Count"}
    ]  # fmt: skip
    assert counts.throttled == Counter()  # taken: the next write starts from zero
    # 1,000 datums a call: 250 busy jobs (4 metrics each) still fit in one.
    busy = Counter({f"job-{i}": 1 for i in range(250)})
    big = metrics.fleet_metric_data(metrics.FleetCounters(), running=busy, teams={})
    assert len(metrics.batches(big)) == 1 and len(big) == 1000


def test_a_run_writes_its_metrics_in_one_call(bench: Bench) -> None:
    from bench.burst import platform_manifest

    base = platform_manifest(bench.network, EcsBudget())
    manifest = parse_manifest({**base, "observability": {"namespace": NAMESPACE}}, source="test")
    report = {
        "job": "dynamic-pricing", "team": "pricing", "succeeded": 119, "failed": 1,
        "run_s": 312.0, "seconds_max": 240.5, "start_delay_s": 12.3, "cost_usd": 0.41,
    }  # fmt: skip
    assert publish_run_metrics(report, manifest, CONN) == 1
    assert bench.simulator.metrics.calls["PutMetricData"] == 1
    dims = {"Job": "dynamic-pricing", "Team": "pricing"}
    assert datapoints(bench, "ChunksFailed", dims) == 1
    assert datapoints(bench, "RunCostUSD", dims) == 0.41
