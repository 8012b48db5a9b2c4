"""The DAG file: every job's DAG loads, matches its manifest entry, and parses offline."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ml_platform.contract import load_manifest
from tests.dags.conftest import DAGS

#: What Airflow hands the resolve task at run time.
RUN = {
    "run_id": "scheduled__2026-01-01T00:00:00+00:00",
    "logical_date": "2026-01-01T00:00:00+00:00",
}


def dagbag(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("ML_PLATFORM_MANIFEST", str(manifest))
    return DagBag(dag_folder=str(DAGS), safe_mode=True)


def test_every_job_has_a_dag_and_nothing_fails_to_import(
    dev_manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = dagbag(dev_manifest, monkeypatch)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {job.name for job in load_manifest(dev_manifest).jobs}


def test_each_dag_matches_its_manifest_entry(
    dev_manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(dev_manifest)
    bag = dagbag(dev_manifest, monkeypatch)
    for job in manifest.jobs:
        dag = bag.dags[job.name]
        assert dag.catchup is False
        assert dag.max_active_runs == job.max_active_runs
        assert set(dag.tags) == {f"team:{job.team}", f"job:{job.name}", "env:dev"}
        assert dag.owner == job.team
        assert job.image in dag.doc_md and job.logs.group in dag.doc_md
        if job.schedule and not job.schedule.startswith("@"):
            assert f"expression='{job.schedule}'" in repr(dag.timetable)
        assert [t.task_id for t in dag.topological_sort()] == [
            "resolve_partitions",
            "run",
            "summarize",
        ]
        run = dag.get_task("run")
        kwargs = run.partial_kwargs
        assert kwargs["pool"] == job.pool
        assert kwargs["pool_slots"] == job.pool_slots
        assert kwargs["retries"] == job.retry.retries
        assert kwargs["retry_delay"] == timedelta(seconds=job.retry.delay_seconds)
        assert kwargs["retry_exponential_backoff"] == job.retry.exponential_backoff
        assert kwargs["execution_timeout"] == timedelta(seconds=job.execution_timeout_seconds)
        assert run.expand_input.value["chunk"].operator.task_id == "resolve_partitions"
        assert dag.get_task("summarize").trigger_rule == "all_done"


def test_schedules(dev_manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bag = dagbag(dev_manifest, monkeypatch)
    assert "0 */3 * * *" in str(bag.dags["location-forecast"].timetable)
    assert "0 * * * *" in str(bag.dags["dynamic-pricing"].timetable)


def test_chunks_are_resolved_at_run_time(dev_manifest: Path) -> None:
    from ml_platform.factory import resolve_chunks

    job = load_manifest(dev_manifest).job("anomaly-detector")
    chunks = resolve_chunks(job, max_map_length=4096, aws_conn_id=None, **RUN)
    assert len(chunks) == 12 and all(len(c) == 25 for c in chunks)
    assert chunks[0][0] == "sensor-001" and chunks[-1][-1] == "sensor-300"
    with pytest.raises(Exception, match=r"12 tasks, above core.max_map_length 10"):
        resolve_chunks(job, max_map_length=10, aws_conn_id=None, **RUN)


GUARD = """
import socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError(f"network connection at parse time: {{args}}")
socket.socket.connect = refuse
socket.create_connection = refuse
sys.path.insert(0, {dags!r})
import runpy

runpy.run_path({dag_file!r})
print("parsed")
"""


def test_importing_the_dag_file_opens_no_connection(dev_manifest: Path, airflow_home: Path) -> None:
    script = GUARD.format(dags=str(DAGS), dag_file=str(DAGS / "ml_platform_dags.py"))
    env = {
        "ML_PLATFORM_MANIFEST": str(dev_manifest),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "parsed" in result.stdout


def test_the_guard_catches_a_connection(airflow_home: Path, tmp_path: Path) -> None:
    dag_file = tmp_path / "bad_dag.py"
    dag_file.write_text("import socket\nsocket.create_connection(('127.0.0.1', 9))\n")
    script = GUARD.format(dags=str(DAGS), dag_file=str(dag_file))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert "network connection at parse time" in result.stderr


def test_a_malformed_manifest_is_an_import_error_naming_job_and_field(
    dev_manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(dev_manifest.read_text())
    next(job for job in data["jobs"] if job["name"] == "dynamic-pricing")["chunk_size"] = 0
    broken = tmp_path / "manifest.json"
    broken.write_text(json.dumps(data))
    bag = dagbag(broken, monkeypatch)
    assert bag.dag_ids == []  # no DAG silently survives a broken manifest
    (error,) = bag.import_errors.values()
    assert "job 'dynamic-pricing': field 'chunk_size'" in error


def test_a_missing_manifest_is_an_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = dagbag(tmp_path / "absent.json", monkeypatch)
    (error,) = bag.import_errors.values()
    assert "manifest not found" in error
