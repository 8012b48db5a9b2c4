"""The job manifest: the one contract between the CDK side and the DAG factory.

The CDK app writes it (one per environment); the DAG file reads it at parse time.
It carries everything a DAG needs so that parsing never calls AWS. Bump
``SCHEMA_VERSION`` on any incompatible change; ``schemas/job-manifest.schema.json``
is generated from these models (``make schema``) and checked by the tests.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

SCHEMA_VERSION = 1

NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
NAME_MAX_LENGTH = 40


class ManifestError(ValueError):
    """A manifest that does not match the schema; the message names job and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Capacity(StrEnum):
    """Where a job's Fargate tasks run."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"
    # Spot first; a launch that finds no spot capacity is retried on demand.
    SPOT_WITH_FALLBACK = "spot-with-fallback"


class Pool(_Model):
    """An Airflow pool; deferred tasks keep their slot so ECS stays protected."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,50}$")]
    slots: Annotated[int, Field(ge=1, le=10_000)]
    description: str = ""
    include_deferred: bool = True


class StaticPartitions(_Model):
    kind: Literal["static"] = "static"
    values: Annotated[list[str], Field(min_length=1)]


class S3Partitions(_Model):
    """A JSON list of strings in S3, read by the DAG's first task at run time."""

    kind: Literal["s3"] = "s3"
    bucket: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)]


Partitions = Annotated[StaticPartitions | S3Partitions, Field(discriminator="kind")]


class Network(_Model):
    subnets: Annotated[list[str], Field(min_length=1)]
    security_groups: Annotated[list[str], Field(min_length=1)]
    assign_public_ip: Literal[False] = False


class Logs(_Model):
    group: Annotated[str, Field(min_length=1)]
    # The awslogs-stream-prefix; streams are "<prefix>/<container>/<task id>".
    stream_prefix: Annotated[str, Field(min_length=1)]


class Retry(_Model):
    retries: Annotated[int, Field(ge=0, le=10)]
    delay_seconds: Annotated[int, Field(ge=0)]
    exponential_backoff: bool
    max_delay_seconds: Annotated[int, Field(ge=0)]


class FleetBudget(_Model):
    """What one triggerer process may spend on ECS and CloudWatch Logs calls."""

    launch_rate: Annotated[float, Field(gt=0)]
    """RunTask calls per second (token bucket refill)."""
    launch_burst: Annotated[float, Field(ge=1)]
    read_rate: Annotated[float, Field(gt=0)]
    """DescribeTasks/ListTasks calls per second at most."""
    read_burst: Annotated[float, Field(ge=1)]
    log_rate: Annotated[float, Field(gt=0)]
    """GetLogEvents calls per second at most."""
    log_burst: Annotated[float, Field(ge=1)]
    poll_interval: Annotated[float, Field(ge=1)]
    """Seconds between two status checks of one task."""
    log_lines: Annotated[int, Field(ge=1, le=10_000)]
    """Last lines of a container's log copied into the Airflow task log."""
    log_wait_seconds: Annotated[float, Field(ge=0)]
    """How long a succeeded task waits for log budget before finishing without the copy."""


class Job(_Model):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)]
    """The job and DAG id."""
    description: str
    """One line for the on-call person."""
    team: Annotated[str, Field(min_length=1)]
    """Owning team; the DAG owner."""
    image: Annotated[str, Field(min_length=1)]
    """Where the image comes from (for people; ECS uses the task definition)."""
    task_definition_family: Annotated[str, Field(min_length=1)]
    """RunTask runs the latest ACTIVE revision of this family."""
    container_name: Annotated[str, Field(min_length=1)]
    """The container that receives the chunk in its overrides."""
    cpu: int
    """Fargate CPU units of one task."""
    memory_mib: int
    """Fargate memory of one task."""
    logs: Logs
    """The container's awslogs group and stream prefix."""
    capacity: Capacity
    """Fargate capacity strategy."""
    schedule: str | None
    """A 5-field cron expression or preset; null: runs only when triggered."""
    partitions: Partitions
    """What the job fans out over."""
    chunk_size: Annotated[int, Field(ge=1)]
    """Partitions per Fargate task."""
    pool: str
    """Airflow pool each chunk task takes slots from."""
    pool_slots: Annotated[int, Field(ge=1)]
    """Slots one chunk task takes."""
    retry: Retry
    """Retries of one chunk."""
    execution_timeout_seconds: Annotated[int, Field(ge=1)]
    """Limit for one chunk, launch to stop; the Fargate task is stopped on timeout."""
    max_active_runs: Annotated[int, Field(ge=1)]
    """Concurrent DAG runs."""
    tags: dict[str, str]
    """Cost-allocation tags added to every task the job launches."""


class Manifest(_Model):
    schema_version: Literal[1] = 1
    """Bumped on any incompatible change."""
    environment: Annotated[str, Field(min_length=1)]
    """The environment (CDK stage) this manifest describes."""
    region: Annotated[str, Field(min_length=1)]
    """AWS region of the cluster."""
    cluster: Annotated[str, Field(min_length=1)]
    """ECS cluster name."""
    network: Network
    """awsvpc network configuration of every task."""
    max_map_length: Annotated[int, Field(ge=1)]
    """Airflow's core.max_map_length: the largest fan-out."""
    fleet: FleetBudget
    """API budget of each triggerer process."""
    pools: list[Pool]
    """Airflow pools of the environment."""
    jobs: list[Job]
    """One entry per MlJob."""

    @model_validator(mode="after")
    def _references_hold(self) -> Manifest:
        problems: list[str] = []
        pool_names = {pool.name for pool in self.pools}
        seen: set[str] = set()
        for job in self.jobs:
            if job.name in seen:
                problems.append(f"job {job.name!r}: field 'name': duplicate job name")
            seen.add(job.name)
            if job.pool not in pool_names:
                problems.append(
                    f"job {job.name!r}: field 'pool': {job.pool!r} is not declared; "
                    f"declared pools: {sorted(pool_names)}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)


def _describe(error: ErrorDetails, data: Any) -> str:
    """Turn a pydantic error location into '<job, pool or environment>: field <path>: ...'."""
    loc = list(error["loc"])
    env = data.get("environment") if isinstance(data, dict) else None
    where = f"environment {env!r}" if isinstance(env, str) and env else "manifest"
    if len(loc) >= 2 and loc[0] in ("jobs", "pools") and isinstance(loc[1], int):
        kind = str(loc[0])[:-1]
        name = None
        items = data.get(loc[0]) if isinstance(data, dict) else None
        if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
            name = items[loc[1]].get("name")
        where = f"{kind} {name!r}" if name else f"{kind} #{loc[1]}"
        loc = loc[2:]
    field = ".".join(str(part) for part in loc)
    if not field:
        return f"{error['msg'].removeprefix('Value error, ')}"
    allowed = ""
    ctx = error.get("ctx") or {}
    if "pattern" in ctx and str(ctx["pattern"]) not in error["msg"]:
        allowed = f" (allowed: {ctx['pattern']})"
    return f"{where}: field {field!r}: {error['msg']}{allowed}"


def parse_manifest(data: Any, *, source: str = "manifest") -> Manifest:
    """Validate a decoded manifest; raise ManifestError listing every problem."""
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(err, data) for err in exc.errors(include_url=False)]
        raise ManifestError(f"{source} is invalid:\n  - " + "\n  - ".join(lines)) from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file (local disk only: safe at DAG parse time)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"manifest not found at {path}") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None
    return parse_manifest(data, source=str(path))


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the manifest."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"ml-platform/job-manifest/v{SCHEMA_VERSION}"
    return schema
