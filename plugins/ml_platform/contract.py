"""The contract between the CDK side and the Airflow side, stated once.

Every value both sides must agree on lives here: AWS and Airflow limits, the job and pool
limits and their defaults, the ECS API budget, the RunTask overrides a chunk sends, and
the job manifest. CDK validation (``config/``, ``constructs_lib/``) and the runtime
(``factory``, ``fargate``, ``fleet``) read these; neither restates them.

It imports neither Airflow nor botocore (pydantic is in MWAA's image and in the CDK
venv), so the CDK app imports it without the Airflow runtime. Bump ``SCHEMA_VERSION`` on
any incompatible manifest change; ``schemas/job-manifest.schema.json`` is generated from
these models (``make schema``) and checked by the tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

# -- AWS limits (per account and region unless noted) -------------------------------------
# Sources: Amazon ECS service quotas and API reference (RunTask, DescribeTasks, Tagging),
# Fargate task sizes, CloudWatch Logs quotas; read through the docs search, see README.

#: Fargate task launches: a bucket of 100, refilled at 20 per second.
FARGATE_LAUNCH_RATE = 20.0
FARGATE_LAUNCH_BURST = 100.0
#: DescribeTasks, ListTasks and the other ECS reads share one bucket.
ECS_READ_RATE = 20.0
ECS_READ_BURST = 100.0
#: StopTask has no published rate; paced like launches.
ECS_STOP_RATE = 20.0
ECS_STOP_BURST = 100.0
#: CloudWatch Logs GetLogEvents, account-wide.
GET_LOG_EVENTS_RATE = 10.0
#: CloudWatch Logs FilterLogEvents: 5 per second per account and region, not raisable
#: (AWS knowledge center, "How do I determine throttling in my CloudWatch logs?").
FILTER_LOG_EVENTS_RATE = 5.0
#: DescribeTasks takes at most 100 task ARNs per call.
DESCRIBE_TASKS_MAX_ARNS = 100
#: RunTask ``startedBy`` and ``clientToken`` lengths.
STARTED_BY_MAX = 36
CLIENT_TOKEN_MAX = 64
#: RunTask ``overrides``: 8,192 characters, JSON formatting characters included.
RUN_TASK_OVERRIDES_MAX_CHARS = 8192
#: User tags on one ECS task (``aws:`` tags do not count).
TAGS_PER_TASK_MAX = 50
#: A registered task definition (container definitions, environment included).
TASK_DEFINITION_MAX_BYTES = 64 * 1024
#: Valid Fargate (Linux) CPU units -> memory sizes in MiB.
FARGATE_SIZES: Mapping[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
#: Configurable Fargate ephemeral storage (GiB); unset means the 20 GiB default.
EPHEMERAL_STORAGE_GIB = (21, 200)
#: FARGATE_SPOT runs Linux x86_64 tasks only: not ARM64, not Windows.
SPOT_CPU_ARCHITECTURES = ("X86_64",)
CPU_ARCHITECTURES = ("X86_64", "ARM64")
#: Fargate bills per second from the start of the image pull to the task's stop, with a
#: one-minute minimum; the first 20 GiB of ephemeral storage are included.
FARGATE_MINIMUM_BILLED_SECONDS = 60
FARGATE_INCLUDED_EPHEMERAL_GIB = 20
#: CloudWatch PutMetricData: datums per call; dimensions per metric.
PUT_METRIC_DATA_MAX_DATUMS = 1000
METRIC_DIMENSIONS_MAX = 30

# -- Airflow limits -------------------------------------------------------------------------

#: ``dag_run.run_id`` is a String(250) column (``airflow.models.base.ID_LEN``).
AIRFLOW_RUN_ID_MAX = 250

# -- Platform limits and defaults -----------------------------------------------------------

SCHEMA_VERSION = 1

#: Job names: the DAG id, the task-definition family suffix and the log-group suffix.
NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
NAME_MIN_LENGTH = 3
NAME_MAX_LENGTH = 40
POOL_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,50}$"
POOL_SLOTS_MAX = 10_000
POOL_DESCRIPTION_MAX = 200
JOB_DESCRIPTION_MAX = 256
PARTITION_MAX_CHARS = 256
MAX_RETRIES = 10
MAX_ACTIVE_RUNS_MAX = 16
#: A job's share of the launch queue against other jobs starting at the same time.
LAUNCH_WEIGHT_MAX = 100.0
#: Fargate needs about a minute to start a task; a shorter timeout can never be met.
MIN_EXECUTION_TIMEOUT_SECONDS = 60
#: Upper bound of ``core.max_map_length`` the platform accepts (a job's chunks per run).
MAX_MAP_LENGTH_MAX = 100_000
SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")

DEFAULT_CPU = 256
DEFAULT_MEMORY_MIB = 512
DEFAULT_CHUNK_SIZE = 1
DEFAULT_POOL_SLOTS = 1
DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAY_SECONDS = 120
DEFAULT_MAX_RETRY_DELAY_SECONDS = 1800
DEFAULT_EXECUTION_TIMEOUT_SECONDS = 3600
DEFAULT_MAX_ACTIVE_RUNS = 1
#: Every job the same share: a small job is not queued behind a big one.
DEFAULT_LAUNCH_WEIGHT = 1.0
#: The first chunk RUNNING later than this after the scheduled time raises an alarm.
DEFAULT_MAX_START_DELAY_SECONDS = 300
#: A run's slowest chunk longer than this many times its expected time raises an alarm.
DEFAULT_RUN_TIME_ALARM_FACTOR = 2.0
#: Fleet metrics: at most one PutMetricData per triggerer per this many seconds.
FLEET_METRICS_INTERVAL_SECONDS = 60


class MetricName(StrEnum):
    """What the runtime publishes (``report``, ``metrics``) and the alarms and dashboard
    read (``constructs_lib/monitoring.py``), by ``Job`` and ``Team`` unless noted."""

    # One write per run, from its summarize task.
    CHUNKS_SUCCEEDED = "ChunksSucceeded"
    CHUNKS_FAILED = "ChunksFailed"
    RUN_SECONDS = "RunSeconds"
    SLOWEST_CHUNK_SECONDS = "SlowestChunkSeconds"
    START_DELAY_SECONDS = "StartDelaySeconds"
    RUN_COST_USD = "RunCostUSD"
    # At most one write a minute per triggerer, from its fleet.
    RUNNING_TASKS = "RunningTasks"
    LAUNCHES = "Launches"
    LOGS_COPIED = "LogsCopied"
    LOGS_MISSED = "LogsMissed"
    #: By ``Api`` only.
    THROTTLED_CALLS = "ThrottledCalls"


#: Variables the platform sets in every model container (a job may not set them).
JOB_ENVIRONMENT = ("ML_JOB_NAME", "ML_ENVIRONMENT")
CHUNK_ENVIRONMENT = ("ML_PARTITIONS", "ML_LOGICAL_DATE", "ML_RUN_ID", "ML_CHUNK_INDEX")
#: Tags each launch adds to the job's tags.
LAUNCH_TAG_KEYS = ("dag", "run", "chunk", "try")
#: AWS tag rules, for environment and job tags (``aws:`` keys are AWS's own).
TAG_KEY_PATTERN = r"^(?!aws:)[\w .:/=+\-@]{1,128}$"
TAG_VALUE_PATTERN = r"^[\w .:/=+\-@]{0,256}$"


def chunk_overrides(
    container: str, chunk: Sequence[str], *, logical_date: str, run_id: str, chunk_index: int
) -> dict[str, Any]:
    """RunTask ``overrides`` of one chunk: the operator sends exactly this."""
    values = (json.dumps(list(chunk)), logical_date, run_id, str(chunk_index))
    environment = [
        {"name": name, "value": value}
        for name, value in zip(CHUNK_ENVIRONMENT, values, strict=True)
    ]
    return {"containerOverrides": [{"name": container, "environment": environment}]}


def overrides_chars(overrides: Mapping[str, Any]) -> int:
    """Characters ECS counts against ``RUN_TASK_OVERRIDES_MAX_CHARS``. Counted with
    ``json.dumps``'s spaces, which is more than the SDK sends: refuses early, never late."""
    return len(json.dumps(overrides))


def largest_overrides_chars(container: str, chunk: Sequence[str], chunks: int) -> int:
    """A chunk's overrides at their largest: the longest run id Airflow allows."""
    return overrides_chars(
        chunk_overrides(
            container,
            chunk,
            logical_date="2026-01-01T00:00:00+00:00",
            run_id="r" * AIRFLOW_RUN_ID_MAX,
            chunk_index=max(chunks - 1, 0),
        )
    )


class Capacity(StrEnum):
    """Where a job's Fargate tasks run."""

    ON_DEMAND = "on-demand"
    SPOT = "spot"
    # Spot first; a launch that finds no spot capacity is retried on demand.
    SPOT_WITH_FALLBACK = "spot-with-fallback"


def _limit_problems(kind: Any, value: Any) -> list[tuple[str, str]]:
    """Check a config dataclass against its annotated limits: (field, what is wrong)."""
    try:
        TypeAdapter(kind).validate_python(dataclasses.asdict(value))
    except ValidationError as error:
        return [
            (".".join(str(p) for p in e["loc"]), f"{e['input']!r}: {e['msg']}")
            for e in error.errors(include_url=False)
        ]
    return []


@dataclasses.dataclass(frozen=True)
class EcsBudget:
    """What the platform may spend of the account's ECS and CloudWatch Logs API limits.

    Config states it for the whole environment; the manifest carries each triggerer's
    share (:meth:`share`), which that triggerer's fleet spends. One shape for both.
    """

    __pydantic_config__ = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    launch_rate: Annotated[float, Field(gt=0, le=FARGATE_LAUNCH_RATE)] = FARGATE_LAUNCH_RATE
    """RunTask calls per second (token bucket refill)."""
    launch_burst: Annotated[float, Field(ge=1, le=FARGATE_LAUNCH_BURST)] = FARGATE_LAUNCH_BURST
    """RunTask calls at once after a quiet spell."""
    read_rate: Annotated[float, Field(gt=0, le=ECS_READ_RATE)] = 10.0
    """DescribeTasks/ListTasks calls per second; the rest of ECS's 20 is left to others."""
    read_burst: Annotated[float, Field(ge=1, le=ECS_READ_BURST)] = 20.0
    """Reads at once after a quiet spell."""
    log_rate: Annotated[float, Field(gt=0, le=FILTER_LOG_EVENTS_RATE)] = 4.0
    """FilterLogEvents calls per second (each reads up to 100 stopped tasks' streams)."""
    log_burst: Annotated[float, Field(ge=1, le=FILTER_LOG_EVENTS_RATE)] = 1.0
    """Small: refill plus burst must stay under FilterLogEvents' 5 per second."""
    stop_rate: Annotated[float, Field(gt=0, le=ECS_STOP_RATE)] = ECS_STOP_RATE
    """StopTask calls per second: a mass clear stops thousands of tasks at once."""
    stop_burst: Annotated[float, Field(ge=1, le=ECS_STOP_BURST)] = ECS_STOP_BURST
    """StopTask calls at once."""
    poll_interval: Annotated[float, Field(ge=1, le=300)] = 15.0
    """Seconds between two status checks of one task."""
    log_lines: Annotated[int, Field(ge=1, le=10_000)] = 200
    """Last lines of a container's log copied into the Airflow task log."""
    log_wait_seconds: Annotated[float, Field(ge=0, le=60)] = 2.0
    """How long a succeeded task waits for log budget before finishing without the copy."""
    launch_deadline_seconds: Annotated[float, Field(ge=60, le=86_400)] = 1800.0
    """Give up launching (throttling, no capacity) after this long."""

    def problems(self, prefix: str = "ecs_budget") -> list[str]:
        return [f"field '{prefix}.{f}': {why}" for f, why in _limit_problems(EcsBudget, self)]

    def share(self, triggerers: int) -> EcsBudget:
        """Each triggerer's part: rates and bursts divided, bursts kept at one or more."""
        rate = {f: getattr(self, f) / triggerers for f in _RATES}
        burst = {f: max(getattr(self, f) / triggerers, 1.0) for f in _BURSTS}
        return dataclasses.replace(self, **rate, **burst)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_RATES = ("launch_rate", "read_rate", "log_rate", "stop_rate")
_BURSTS = ("launch_burst", "read_burst", "log_burst", "stop_burst")


@dataclasses.dataclass(frozen=True)
class Pool:
    """An Airflow pool, declared once per environment and named by jobs.

    Deferred Fargate tasks keep their slot (``include_deferred``): otherwise a pool of 20
    lets thousands of tasks run at once, since each frees its slot when it defers.
    """

    __pydantic_config__ = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: Annotated[str, Field(pattern=POOL_NAME_PATTERN)]
    """Letters, digits, ``_ . -``; jobs name it."""
    slots: Annotated[int, Field(ge=1, le=POOL_SLOTS_MAX)]
    """Chunk tasks running at once (a deferred task holds its slot)."""
    description: Annotated[str, Field(max_length=POOL_DESCRIPTION_MAX)] = ""
    """Shown in Airflow's pool list."""
    include_deferred: Literal[True] = True
    """Always true: deferred tasks count against the pool."""

    def problems(self) -> list[str]:
        return [f"pool {self.name!r}: field '{f}': {why}" for f, why in _limit_problems(Pool, self)]


# -- The job manifest -----------------------------------------------------------------------


class DeclarationError(ValueError):
    """A user's declaration (environment, job, manifest) that cannot be deployed. Its
    message says where (environment, job or pool), which field, and what is allowed; it
    is shown without a traceback."""


class ManifestError(DeclarationError):
    """A manifest that does not match the schema; the message names job and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class StaticPartitions(_Model):
    kind: Literal["static"] = "static"
    values: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=PARTITION_MAX_CHARS)]],
        Field(min_length=1),
    ]


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
    retries: Annotated[int, Field(ge=0, le=MAX_RETRIES)]
    delay_seconds: Annotated[int, Field(ge=0)]
    exponential_backoff: bool
    max_delay_seconds: Annotated[int, Field(ge=0)]


class Job(_Model):
    name: Annotated[
        str, Field(pattern=NAME_PATTERN, min_length=NAME_MIN_LENGTH, max_length=NAME_MAX_LENGTH)
    ]
    """The job and DAG id."""
    description: Annotated[str, Field(max_length=JOB_DESCRIPTION_MAX)]
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
    execution_timeout_seconds: Annotated[int, Field(ge=MIN_EXECUTION_TIMEOUT_SECONDS)]
    """Limit for one chunk, launch to stop; the Fargate task is stopped on timeout."""
    max_active_runs: Annotated[int, Field(ge=1, le=MAX_ACTIVE_RUNS_MAX)]
    """Concurrent DAG runs."""
    launch_weight: Annotated[float, Field(gt=0, le=LAUNCH_WEIGHT_MAX)] = DEFAULT_LAUNCH_WEIGHT
    """Share of the launch queue while other jobs' chunks wait too: a job of weight 2 gets
    two launches for each one of a job of weight 1. Within a job, chunks start in
    map-index order."""
    tags: dict[str, str]
    """Cost-allocation tags added to every task the job launches."""
    cpu_architecture: Literal["X86_64", "ARM64"] = "X86_64"
    """The task definition's CPU architecture (prices differ)."""
    ephemeral_storage_gib: Annotated[int, Field(ge=20, le=EPHEMERAL_STORAGE_GIB[1])] = (
        FARGATE_INCLUDED_EPHEMERAL_GIB
    )
    """Ephemeral storage of one task; above 20 GiB it is billed."""
    expected_chunk_seconds: Annotated[int, Field(ge=1)] | None = None
    """How long one chunk usually runs, launch to stop; null: unknown, and estimates use
    the execution timeout as a ceiling."""
    max_start_delay_seconds: Annotated[int, Field(ge=0)] = DEFAULT_MAX_START_DELAY_SECONDS
    """The first chunk RUNNING later than this after the scheduled time raises an alarm."""

    @property
    def expected_or_ceiling_seconds(self) -> tuple[int, bool]:
        """(seconds one chunk is expected to run, whether that is the timeout's ceiling)."""
        if self.expected_chunk_seconds is not None:
            return self.expected_chunk_seconds, False
        return self.execution_timeout_seconds, True


class FargatePrices(_Model):
    """Fargate list prices of the manifest's region, per hour (USD)."""

    region: Annotated[str, Field(min_length=1)]
    as_of: Annotated[str, Field(min_length=1)]
    """The day these prices were read."""
    source: Annotated[str, Field(min_length=1)]
    x86_vcpu_hour: Annotated[float, Field(gt=0)]
    x86_gb_hour: Annotated[float, Field(gt=0)]
    arm_vcpu_hour: Annotated[float, Field(gt=0)]
    arm_gb_hour: Annotated[float, Field(gt=0)]
    ephemeral_gb_hour: Annotated[float, Field(ge=0)]
    """Ephemeral storage above the 20 GiB included."""
    spot_discount: Annotated[float, Field(ge=0, lt=1)]
    """Fargate Spot's discount from on-demand: configured, since Spot prices move."""


class Observability(_Model):
    """Where runs and the fleet report their metrics."""

    namespace: Annotated[str, Field(min_length=1, max_length=255)]
    """CloudWatch namespace of the environment's metrics."""
    mwaa_environment: str | None = None
    """The MWAA environment whose REST API (``InvokeRestApi``) takes each run's note;
    null on a self-hosted Airflow, where the summary log and XCom carry the report."""


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
    max_map_length: Annotated[int, Field(ge=1, le=MAX_MAP_LENGTH_MAX)]
    """Airflow's core.max_map_length: the largest fan-out."""
    fleet: EcsBudget
    """API budget of each triggerer process (its share of the environment's)."""
    prices: FargatePrices
    """What a chunk's Fargate task costs, for each run's cost summary."""
    observability: Observability
    """CloudWatch namespace of runs' and the fleet's metrics."""
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

    def pool(self, name: str) -> Pool:
        return next(pool for pool in self.pools if pool.name == name)


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


def tag_problems(tags: Mapping[str, str], field_name: str) -> list[str]:
    """AWS tag rules, shared by environments and jobs."""
    problems = []
    for key, value in tags.items():
        if not isinstance(key, str) or not re.match(TAG_KEY_PATTERN, key, re.IGNORECASE):
            problems.append(
                f"field {field_name!r}: tag key {key!r} must be 1-128 of letters, digits, "
                "spaces and _ . : / = + - @, not starting with 'aws:'"
            )
        if not isinstance(value, str) or not re.match(TAG_VALUE_PATTERN, value):
            problems.append(
                f"field {field_name!r}: tag {key!r} value {value!r} must be 0-256 of letters, "
                "digits, spaces and _ . : / = + - @"
            )
    return problems
