"""A run's report: chunks succeeded and failed, time, start delay and Fargate cost.

Built by the ``summarize`` task from every chunk's result (``CHUNK_RESULT_KEY``, pushed by
failures as well as successes). It is logged, returned as XCom, written as the DAG run's
note where the backend allows it, and sent to CloudWatch as one PutMetricData call.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from ml_platform.contract import Job, Manifest, MetricName

log = logging.getLogger(__name__)

#: The REST API's limit on a DAG run note.
NOTE_MAX_CHARS = 1000


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _seconds(start: Any, end: Any) -> float | None:
    a, b = _instant(start), _instant(end)
    return None if a is None or b is None else (b - a).total_seconds()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def build_report(
    job: Job,
    chunks: list[list[str]],
    results: list[dict[str, Any] | None],
    *,
    succeeded: list[bool],
    scheduled_at: datetime,
) -> dict[str, Any]:
    """The run's figures. ``results[i]``: chunk i's last try's result, or None when it
    never stopped (not launched, timed out, cleared); ``succeeded[i]``: its state."""
    known = [r for r in results if r]
    durations = sorted(
        d for r in known if (d := _seconds(r.get("started_at"), r.get("stopped_at"))) is not None
    )
    started = [s for r in known if (s := _instant(r.get("started_at"))) is not None]
    stopped = [s for r in known if (s := _instant(r.get("stopped_at"))) is not None]
    cost = sum(float(r.get("cost_usd") or 0.0) for r in known)
    partitions = sum(len(c) for c in chunks)
    return {
        "job": job.name,
        "team": job.team,
        "chunks": len(chunks),
        "partitions": partitions,
        "succeeded": sum(succeeded),
        "failed": len(chunks) - sum(succeeded),
        "seconds_min": _rounded(durations[0]) if durations else None,
        "seconds_median": _rounded(durations[len(durations) // 2]) if durations else None,
        "seconds_max": _rounded(durations[-1]) if durations else None,
        "start_delay_s": _rounded(_seconds(scheduled_at, min(started))) if started else None,
        "run_s": _rounded(_seconds(scheduled_at, max(stopped))) if stopped else None,
        "billed_seconds": sum(int(r.get("billed_seconds") or 0) for r in known),
        "cost_usd": round(cost, 4),
        "cost_per_partition_usd": round(cost / partitions, 6) if partitions else None,
        "cost_by_chunk_usd": {str(r["chunk"]): r.get("cost_usd") for r in known if "chunk" in r},
        "cost_unknown_chunks": len(chunks) - len(known),
    }


def note(report: dict[str, Any], manifest: Manifest) -> str:
    """The DAG run's note: what the on-call person and the budget owner look for."""
    prices = manifest.prices
    unknown = report["cost_unknown_chunks"]
    lines = [
        f"**{report['succeeded']}/{report['chunks']} chunks succeeded**"
        f" ({report['partitions']} partitions), {report['failed']} failed.",
        f"Fargate cost: **${report['cost_usd']:.4f}**"
        + (
            f" (${report['cost_per_partition_usd']:.6f} per partition)"
            if report["cost_per_partition_usd"] is not None
            else ""
        )
        + f", {report['billed_seconds']} task-seconds billed"
        + (f"; {unknown} chunk(s) never reported a stop, not counted" if unknown else "")
        + ".",
        f"First chunk running {report['start_delay_s']} s after the scheduled time; "
        f"run {report['run_s']} s; slowest chunk {report['seconds_max']} s.",
        f"Prices: {prices.region} list prices as of {prices.as_of}.",
    ]
    return "\n\n".join(lines)


def metric_data(report: dict[str, Any], manifest: Manifest) -> list[dict[str, Any]]:
    """The run's datums for one PutMetricData call, by job and team."""
    dimensions = [
        {"Name": "Job", "Value": report["job"]},
        {"Name": "Team", "Value": report["team"]},
    ]
    values = {
        MetricName.CHUNKS_SUCCEEDED: (report["succeeded"], "Count"),
        MetricName.CHUNKS_FAILED: (report["failed"], "Count"),
        MetricName.RUN_SECONDS: (report["run_s"], "Seconds"),
        MetricName.SLOWEST_CHUNK_SECONDS: (report["seconds_max"], "Seconds"),
        MetricName.START_DELAY_SECONDS: (report["start_delay_s"], "Seconds"),
        MetricName.RUN_COST_USD: (report["cost_usd"], "None"),
    }
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": unit}
        for name, (value, unit) in values.items()
        if value is not None
    ]


def log_report(report: dict[str, Any]) -> None:
    log.info(
        "job %s: %d chunks (%d partitions): %d succeeded, %d failed; task seconds "
        "min %s, median %s, max %s; first chunk running %s s after the scheduled time",
        report["job"],
        report["chunks"],
        report["partitions"],
        report["succeeded"],
        report["failed"],
        report["seconds_min"],
        report["seconds_median"],
        report["seconds_max"],
        report["start_delay_s"],
    )
    per_partition = report["cost_per_partition_usd"]
    log.info(
        "job %s: Fargate cost $%.4f, %s per partition, %d task-seconds billed%s",
        report["job"],
        report["cost_usd"],
        "-" if per_partition is None else f"${per_partition:.6f}",
        report["billed_seconds"],
        f"; {report['cost_unknown_chunks']} chunk(s) without a stop, not counted"
        if report["cost_unknown_chunks"]
        else "",
    )


def write_note(
    manifest: Manifest, dag_id: str, run_id: str, text: str, aws_conn_id: str | None
) -> bool:
    """Set the DAG run's note through Airflow's public REST API: Airflow 3.3's Task SDK
    cannot (its Execution API has no route for it; apache/airflow#64890 asks for one).

    MWAA: ``InvokeRestApi`` as the execution role, mapped to Airflow's User role.
    Self-hosted: the api-server, as the user ``init`` created for this (role User), whose
    password the scheduler gets from Secrets Manager (``ML_PLATFORM_API_*``).
    A note that cannot be written is logged; the run's report is in this log and XCom.
    """
    path = "/dags/{}/dagRuns/{}".format(*(urllib.parse.quote(p, safe="") for p in (dag_id, run_id)))
    body = {"note": text[:NOTE_MAX_CHARS]}
    try:
        if manifest.observability.mwaa_environment is not None:
            _note_through_mwaa(manifest, path, body, aws_conn_id)
        elif os.environ.get("ML_PLATFORM_API_URL"):
            _note_through_api_server(os.environ, path, body)
        else:
            log.info("Run report kept in this log and XCom 'report' (no REST API configured)")
            return False
    except Exception as error:  # the note is a convenience: never fail a finished run
        log.warning("DAG run note not written (%s: %s)", type(error).__name__, error)
        return False
    log.info("Run report written to the DAG run's note")
    return True


def _note_through_mwaa(
    manifest: Manifest, path: str, body: dict[str, Any], aws_conn_id: str | None
) -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    mwaa: Any = AwsBaseHook(
        aws_conn_id=aws_conn_id, region_name=manifest.region, client_type="mwaa"
    ).get_conn()
    mwaa.invoke_rest_api(
        Name=manifest.observability.mwaa_environment, Path=path, Method="PATCH", Body=body
    )


def _note_through_api_server(env: Any, path: str, body: dict[str, Any]) -> None:
    base = env["ML_PLATFORM_API_URL"].rstrip("/")
    login = json.dumps(
        {"username": env["ML_PLATFORM_API_USERNAME"], "password": env["ML_PLATFORM_API_PASSWORD"]}
    ).encode()
    request = urllib.request.Request(
        f"{base}/auth/token", data=login, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        token = json.loads(reply.read())["access_token"]
    patch = urllib.request.Request(
        f"{base}/api/v2{path}",
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(patch, timeout=10):
        pass
