"""Partitions kept in S3 are read at run time through the AWS connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ml_platform.contract import Job
from ml_platform.factory import resolve_chunks
from simulator.bootstrap import airflow_connection, client
from simulator.fargate import FargateSimulator, Scripted
from simulator.server import LocalAws

#: What Airflow hands the resolve task at run time.
RUN = {
    "run_id": "scheduled__2026-01-01T00:00:00+00:00",
    "logical_date": "2026-01-01T00:00:00+00:00",
}


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(FargateSimulator(behaviour=lambda family: Scripted())) as local:
        yield local


@pytest.fixture
def connection(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_LOCAL", airflow_connection(aws.endpoint_url, "us-east-1"))
    return "aws_local"


def s3_job(bucket: str, key: str, chunk_size: int = 3) -> Job:
    entry: dict[str, Any] = {
        "name": "sensor-scan",
        "description": "",
        "team": "t",
        "image": "asset:x",
        "task_definition_family": "f",
        "container_name": "model",
        "cpu": 256,
        "memory_mib": 512,
        "logs": {"group": "g", "stream_prefix": "job"},
        "capacity": "spot",
        "schedule": None,
        "partitions": {"kind": "s3", "bucket": bucket, "key": key},
        "chunk_size": chunk_size,
        "pool": "batch",
        "pool_slots": 1,
        "retry": {
            "retries": 0,
            "delay_seconds": 0,
            "exponential_backoff": False,
            "max_delay_seconds": 0,
        },
        "execution_timeout_seconds": 60,
        "max_active_runs": 1,
        "tags": {},
    }
    return Job.model_validate(entry)


def test_s3_partitions_are_read_and_chunked(aws: LocalAws, connection: str) -> None:
    s3 = client("s3", aws.endpoint_url, "us-east-1")
    s3.create_bucket(Bucket="partitions")
    values = [f"sensor-{i:03d}" for i in range(1, 8)]
    s3.put_object(Bucket="partitions", Key="lists/sensors.json", Body=json.dumps(values))
    chunks = resolve_chunks(s3_job("partitions", "lists/sensors.json"), 100, connection, **RUN)
    assert chunks == [values[0:3], values[3:6], values[6:7]]


def test_a_malformed_partition_object_fails_clearly(aws: LocalAws, connection: str) -> None:
    s3 = client("s3", aws.endpoint_url, "us-east-1")
    s3.create_bucket(Bucket="broken")
    s3.put_object(Bucket="broken", Key="p.json", Body=json.dumps({"not": "a list"}))
    with pytest.raises(Exception, match=r"s3://broken/p.json must hold a JSON list"):
        resolve_chunks(s3_job("broken", "p.json"), 100, connection, **RUN)
