"""Turns the job manifest into one DAG per job.

Parse time reads one local JSON file and nothing else: no AWS call, no Variable or
Connection look-up, no database access. Partitions are resolved at run time by a task,
so a 2,000-way fan-out costs the parser nothing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, TriggerRule, task
from airflow.sdk.exceptions import AirflowException

from ml_platform.contract import (
    RUN_TASK_OVERRIDES_MAX_CHARS,
    Job,
    Manifest,
    S3Partitions,
    chunk_overrides,
    load_manifest,
    overrides_chars,
)
from ml_platform.fargate import CHUNK_RESULT_KEY, FargateChunkOperator
from ml_platform.metrics import publish_run_metrics
from ml_platform.report import build_report, log_report, note, write_note

log = logging.getLogger(__name__)

#: The manifest's name beside the DAG file (``ML_PLATFORM_MANIFEST`` overrides the path).
MANIFEST_NAME = "manifest.json"
START_DATE = datetime(2024, 1, 1, tzinfo=UTC)


def chunked(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def resolve_chunks(
    job: Job, max_map_length: int, aws_conn_id: str | None, *, run_id: str, logical_date: str
) -> list[list[str]]:
    """The job's partitions, cut into chunks (run time: S3 is read here, never at parse).

    Refuses a chunk whose RunTask overrides ECS would refuse, before anything launches.
    """
    if isinstance(job.partitions, S3Partitions):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        raw = S3Hook(aws_conn_id=aws_conn_id).read_key(job.partitions.key, job.partitions.bucket)
        values = json.loads(raw)
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise AirflowException(
                f"job {job.name!r}: s3://{job.partitions.bucket}/{job.partitions.key} must hold "
                "a JSON list of non-empty strings"
            )
    else:
        values = list(job.partitions.values)
    chunks = chunked(values, job.chunk_size)
    if len(chunks) > max_map_length:
        raise AirflowException(
            f"job {job.name!r}: {len(values)} partitions in chunks of {job.chunk_size} make "
            f"{len(chunks)} tasks, above core.max_map_length {max_map_length}; raise chunk_size"
        )
    if not chunks:
        raise AirflowException(f"job {job.name!r}: no partitions to run")
    for index, chunk in enumerate(chunks):
        size = overrides_chars(
            chunk_overrides(
                job.container_name, chunk, logical_date=logical_date, run_id=run_id,
                chunk_index=index,
            )
        )  # fmt: skip
        if size > RUN_TASK_OVERRIDES_MAX_CHARS:
            raise AirflowException(
                f"job {job.name!r}: chunk {index} ({', '.join(chunk[:3])} ...) makes RunTask "
                f"overrides of {size} characters; ECS allows {RUN_TASK_OVERRIDES_MAX_CHARS}. "
                "Lower chunk_size or shorten the partition names."
            )
    return chunks


def summarize(
    manifest: Manifest,
    job: Job,
    chunks: list[list[str]],
    outcomes: list[dict[str, Any] | None],
    facts: list[dict[str, Any] | None],
    *,
    scheduled_at: datetime,
    aws_conn_id: str | None,
    ti: Any = None,
) -> dict[str, Any]:
    """The run's report (``ml_platform.report``): logged, sent to CloudWatch, kept as
    XCom ``report`` and as the DAG run's note; fails the run if any chunk failed.

    :param outcomes: each chunk's return value (None: the chunk did not succeed).
    :param facts: each chunk's ECS facts and cost, successes and failures alike.
    """
    report = build_report(
        job, chunks, facts, succeeded=[r is not None for r in outcomes], scheduled_at=scheduled_at
    )
    log_report(report)
    publish_run_metrics(report, manifest, aws_conn_id)
    if ti is not None:
        ti.xcom_push(key="report", value=report)
        write_note(manifest, ti.dag_id, ti.run_id, note(report, manifest), aws_conn_id)
    if report["failed"]:
        raise AirflowException(
            f"job {job.name!r}: {report['failed']} of {report['chunks']} chunks failed; "
            "see the failed 'run' task instances for the reason and the container log"
        )
    return report


def doc_md(manifest: Manifest, job: Job) -> str:
    partitions = (
        f"s3://{job.partitions.bucket}/{job.partitions.key} (read at run time)"
        if isinstance(job.partitions, S3Partitions)
        else f"{len(job.partitions.values)} static partitions"
    )
    stream = f"{job.logs.stream_prefix}/{job.container_name}"
    return f"""### {job.name}
{job.description or "(no description)"}

| | |
|---|---|
| team | {job.team} |
| image | `{job.image}` |
| task definition | `{job.task_definition_family}` on cluster `{manifest.cluster}` |
| size | {job.cpu} CPU units, {job.memory_mib} MiB, {job.capacity.value} |
| schedule | `{job.schedule or "manual"}` |
| fan-out | {partitions}, {job.chunk_size} per task |
| pool | `{job.pool}` ({job.pool_slots} slot(s) per task) |
| retries | {job.retry.retries}, from {job.retry.delay_seconds} s |
| timeout | {job.execution_timeout_seconds} s per task |
| logs | `{job.logs.group}`, stream `{stream}/<task id>`, copied into each `run` log |
"""


def build_dag(
    manifest: Manifest,
    job: Job,
    *,
    aws_conn_id: str | None = "aws_default",
    poll_interval: float | None = None,
) -> DAG:
    """:param poll_interval: overrides the manifest's (local runs poll faster)."""
    fleet = manifest.fleet
    if poll_interval is not None:
        fleet = replace(fleet, poll_interval=poll_interval)
    pool = manifest.pool(job.pool)
    with DAG(
        dag_id=job.name,
        schedule=job.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=job.max_active_runs,
        # The pool is the concurrency limit, not Airflow's per-DAG default of 16.
        max_active_tasks=max(pool.slots // job.pool_slots, 1),
        tags=[f"team:{job.team}", f"job:{job.name}", f"env:{manifest.environment}"],
        doc_md=doc_md(manifest, job),
        default_args={"owner": job.team},
    ) as dag:

        @task(task_id="resolve_partitions", retries=2, retry_delay=timedelta(seconds=30))
        def resolve(**context: Any) -> list[list[str]]:
            return resolve_chunks(
                job,
                manifest.max_map_length,
                aws_conn_id,
                run_id=context["run_id"],
                logical_date=context["dag_run"].run_after.isoformat(),
            )

        chunks = resolve()
        run = FargateChunkOperator.partial(
            task_id="run",
            job=job,
            manifest=manifest,
            aws_conn_id=aws_conn_id,
            fleet=fleet,
            pool=job.pool,
            pool_slots=job.pool_slots,
            retries=job.retry.retries,
            retry_delay=timedelta(seconds=job.retry.delay_seconds),
            retry_exponential_backoff=job.retry.exponential_backoff,
            max_retry_delay=timedelta(seconds=job.retry.max_delay_seconds),
            execution_timeout=timedelta(seconds=job.execution_timeout_seconds),
        ).expand(chunk=chunks)

        @task(task_id="summarize", trigger_rule=TriggerRule.ALL_DONE)
        def summary(chunks: Any, results: Any, **context: Any) -> dict[str, Any]:
            ti = context["ti"]
            facts = (
                ti.xcom_pull(
                    task_ids="run", key=CHUNK_RESULT_KEY, map_indexes=list(range(len(chunks)))
                )
                if chunks
                else []
            )
            return summarize(
                manifest,
                job,
                chunks,
                list(results),
                list(facts),
                scheduled_at=context["dag_run"].run_after,
                aws_conn_id=aws_conn_id,
                ti=ti,
            )

        summary(chunks, run.output)
    return dag


def build_dags(manifest: Manifest, **kwargs: Any) -> dict[str, DAG]:
    return {job.name: build_dag(manifest, job, **kwargs) for job in manifest.jobs}


def dags_from_manifest(dag_folder: str | Path, **kwargs: Any) -> dict[str, DAG]:
    """Every job's DAG from the manifest beside the DAG file in ``dag_folder``; a malformed
    manifest raises, so the DAG file shows an import error."""
    if "ML_PLATFORM_POLL_SECONDS" in os.environ:
        kwargs.setdefault("poll_interval", float(os.environ["ML_PLATFORM_POLL_SECONDS"]))
    path = os.environ.get("ML_PLATFORM_MANIFEST") or Path(dag_folder) / MANIFEST_NAME
    return build_dags(load_manifest(path), **kwargs)
