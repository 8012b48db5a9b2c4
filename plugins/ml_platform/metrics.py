"""CloudWatch metrics at a fixed, small API cost.

- A run: one PutMetricData call from its ``summarize`` task (``report.metric_data``).
- A triggerer's fleet: at most one call per ``FLEET_METRICS_INTERVAL_SECONDS`` (more
  only past 1,000 datums, about 250 active jobs), with running tasks, launches and log
  coverage per job, and throttled calls per API. Nothing is written while idle.

All under the manifest's namespace (``observability.namespace``), which is the only one
the roles may write (``cloudwatch:namespace`` condition). A failed write is logged and
never fails a run: the work is done; the metric is lost.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from ml_platform.contract import PUT_METRIC_DATA_MAX_DATUMS, Manifest, MetricName
from ml_platform.report import metric_data

log = logging.getLogger(__name__)


def publish_run_metrics(report: dict[str, Any], manifest: Manifest, aws_conn_id: str | None) -> int:
    """One PutMetricData call with the run's datums; returns the calls made (0 or 1)."""
    data = metric_data(report, manifest)
    if not data:
        return 0
    try:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        client: Any = AwsBaseHook(
            aws_conn_id=aws_conn_id, region_name=manifest.region, client_type="cloudwatch"
        ).get_conn()
        client.put_metric_data(Namespace=manifest.observability.namespace, MetricData=data)
    except Exception as error:  # metrics must not fail a finished run
        log.warning(
            "job %s: run metrics not sent to CloudWatch (%s: %s)",
            report["job"],
            type(error).__name__,
            error,
        )
        return 0
    log.info(
        "job %s: %d run metrics sent to %s",
        report["job"],
        len(data),
        manifest.observability.namespace,
    )
    return 1


class FleetCounters:
    """What a triggerer's fleet counts between two metric writes."""

    def __init__(self) -> None:
        #: Per job.
        self.launches: Counter[str] = Counter()
        self.logs_copied: Counter[str] = Counter()
        self.logs_missed: Counter[str] = Counter()
        #: Per API (RunTask, DescribeTasks, FilterLogEvents, StopTask).
        self.throttled: Counter[str] = Counter()

    def take(self) -> FleetCounters:
        """The counts so far; counting starts afresh."""
        taken = FleetCounters()
        taken.__dict__.update(self.__dict__)
        self.__init__()  # type: ignore[misc]
        return taken


def fleet_metric_data(
    counts: FleetCounters, running: Counter[str], teams: dict[str, str]
) -> list[dict[str, Any]]:
    """Datums of one fleet write: per active job, and throttled calls per API."""

    def datum(name: str, dimensions: list[dict[str, str]], value: float) -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": dimensions, "Value": float(value),
                "Unit": "Count"}  # fmt: skip

    per_job = {
        MetricName.LAUNCHES: counts.launches,
        MetricName.LOGS_COPIED: counts.logs_copied,
        MetricName.LOGS_MISSED: counts.logs_missed,
    }
    # Only jobs with something to say: an idle job costs nothing.
    jobs = sorted(
        {job for job, n in running.items() if n}
        | {job for counter in per_job.values() for job, n in counter.items() if n}
    )
    data = []
    for job in jobs:
        dimensions = [{"Name": "Job", "Value": job}, {"Name": "Team", "Value": teams.get(job, "")}]
        data.append(datum(MetricName.RUNNING_TASKS, dimensions, running.get(job, 0)))
        data.extend(datum(name, dimensions, c.get(job, 0)) for name, c in per_job.items())
    for api, n in sorted(counts.throttled.items()):
        data.append(datum(MetricName.THROTTLED_CALLS, [{"Name": "Api", "Value": api}], n))
    return data


def batches(data: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """PutMetricData calls for ``data``: one unless more than 1,000 datums."""
    step = PUT_METRIC_DATA_MAX_DATUMS
    return [data[i : i + step] for i in range(0, len(data), step)]
