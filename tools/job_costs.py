"""An environment's monthly cost before deploying: each job's Fargate tasks, Airflow
itself, and the CloudWatch alarms and metrics the platform adds.

A job's month = runs a month (its schedule over a 730-hour month) x tasks a run x what
one task costs for the job's ``expected_chunk_time``; a job that declares none is priced
at its execution timeout and marked as a ceiling. A spot job is priced at the configured
Spot discount. ``make synth`` prints the table (``tools/synth_summary.py``);
``python -m tools.job_costs [cdk.out]`` prints it alone.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import croniter

from config.prices import HOURS_PER_MONTH, PRICES
from ml_platform.contract import (
    FARGATE_MINIMUM_BILLED_SECONDS,
    Capacity,
    Job,
    Manifest,
    MetricName,
    S3Partitions,
    load_manifest,
)
from ml_platform.cost import hourly_price

#: A week from a Monday: schedules are counted over it and scaled to 730 hours.
_WEEK_START = datetime(2026, 1, 5, tzinfo=UTC)
_WEEK_HOURS = 7 * 24
#: CloudWatch list prices (us-east-1): a standard alarm a month, a custom metric a month
#: (first 10,000), a dashboard a month (beyond the free 3), 1,000 PutMetricData calls.
ALARM_MONTH = 0.10
CUSTOM_METRIC_MONTH = 0.30
DASHBOARD_MONTH = 3.00
PUT_METRIC_DATA_PER_1000 = 0.01
#: Metrics each job publishes with its Job and Team dimensions (all but ThrottledCalls,
#: which is per API).
METRICS_PER_JOB = sum(name is not MetricName.THROTTLED_CALLS for name in MetricName)


def runs_per_month(schedule: str | None) -> float:
    """How often ``schedule`` fires in an average 730-hour month."""
    if schedule is None:
        return 0.0
    expression = croniter(schedule, _WEEK_START - timedelta(seconds=1))
    end = _WEEK_START + timedelta(days=7)
    fired = 0
    while expression.get_next(datetime) < end:
        fired += 1
    return fired * HOURS_PER_MONTH / _WEEK_HOURS


@dataclass(frozen=True)
class JobEstimate:
    job: str
    runs_per_month: float
    tasks_per_run: int | None
    task_seconds: int
    #: The task time is the execution timeout: the job declared no expected_chunk_time.
    ceiling: bool
    run_usd: float | None
    month_usd: float | None


def estimate_job(job: Job, manifest: Manifest) -> JobEstimate:
    tasks = (
        None
        if isinstance(job.partitions, S3Partitions)
        else -(-len(job.partitions.values) // job.chunk_size)
    )
    seconds, ceiling = job.expected_or_ceiling_seconds
    hourly = hourly_price(
        manifest.prices,
        cpu_units=job.cpu,
        memory_mib=job.memory_mib,
        architecture=job.cpu_architecture,
        ephemeral_gib=job.ephemeral_storage_gib,
        spot=job.capacity is not Capacity.ON_DEMAND,
    )
    billed = max(seconds, FARGATE_MINIMUM_BILLED_SECONDS)
    run = None if tasks is None else tasks * hourly * billed / 3600
    runs = runs_per_month(job.schedule)
    return JobEstimate(
        job=job.name,
        runs_per_month=runs,
        tasks_per_run=tasks,
        task_seconds=seconds,
        ceiling=ceiling,
        run_usd=run,
        month_usd=None if run is None else run * runs,
    )


def monitoring_month(manifest: Manifest, alarms: int) -> float:
    """Alarms, custom metrics, one dashboard and the run metric writes of a month."""
    writes = sum(runs_per_month(job.schedule) for job in manifest.jobs)
    writes += HOURS_PER_MONTH * 60  # a fleet write a minute while tasks run: the worst case
    return (
        alarms * ALARM_MONTH
        + len(manifest.jobs) * METRICS_PER_JOB * CUSTOM_METRIC_MONTH
        + DASHBOARD_MONTH
        + writes / 1000 * PUT_METRIC_DATA_PER_1000
    )


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def table(manifest: Manifest, airflow_month: float | None, alarms: int) -> str:
    """The estimate as text: a row per job, then the environment's total."""
    rows = []
    jobs_total = 0.0
    unknown = []
    for job in manifest.jobs:
        e = estimate_job(job, manifest)
        basis = f"{e.task_seconds} s" + (" (ceiling: timeout)" if e.ceiling else " expected")
        rows.append(
            [e.job, f"{e.runs_per_month:,.0f}", "S3: at run" if e.tasks_per_run is None
             else f"{e.tasks_per_run:,}", basis, _money(e.run_usd), _money(e.month_usd)]
        )  # fmt: skip
        if e.month_usd is None:
            unknown.append(e.job)
        else:
            jobs_total += e.month_usd
    from tools.synth_summary import _table

    monitoring = monitoring_month(manifest, alarms)
    lines = [
        _table(rows, ["job", "runs/month", "tasks/run", "task time", "$/run", "$/month"]),
        "",
        f"jobs' Fargate {_money(jobs_total)}"
        + (f" (without {', '.join(unknown)}: partitions known only at run time)" if unknown else "")
        + f"; Airflow {_money(airflow_month)}; alarms, metrics and dashboard {_money(monitoring)}"
        + f"; total {_money(jobs_total + (airflow_month or 0) + monitoring)} a month",
        f"({manifest.prices.region} list prices as of {manifest.prices.as_of}, Spot at "
        f"{manifest.prices.spot_discount:.0%} off; a 'ceiling' row uses the execution "
        "timeout: declare expected_chunk_time for a real figure)",
    ]
    return "\n".join(lines)


def airflow_month(environment: str) -> float | None:
    from config import ENVIRONMENTS
    from tools.airflow_costs import monthly_total

    env = ENVIRONMENTS.get(environment)
    return None if env is None else monthly_total(env, PRICES)


if __name__ == "__main__":
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")
    for path in sorted((outdir / "manifests").glob("*.json")):
        manifest = load_manifest(path)
        print(f"== environment {manifest.environment}: monthly estimate")
        print(table(manifest, airflow_month(manifest.environment), alarms=0))
