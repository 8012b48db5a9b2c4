"""Every check of an ``MlJob`` declaration, including the rules ECS and Fargate would only
enforce at RegisterTaskDefinition or RunTask time but that synth can already know.

Each check returns the problems it found as ``"field '<name>': <what is wrong and what is
allowed>"``; ``MlJob`` collects them all and raises once (``JobConfigError``). Limits
come from ``ml_platform.contract``, which the runtime reads too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from croniter import croniter

from config.model import EnvironmentConfig
from constructs_lib.job_inputs import (
    JobImage,
    Partitions,
    architecture_name,
    unresolved,
    whole_seconds,
)
from ml_platform import contract
from ml_platform.contract import Capacity, DeclarationError, tag_problems

_NAME = re.compile(contract.NAME_PATTERN)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Plaintext environment variables are visible to anyone who can read the task definition.
SECRET_LIKE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY", re.I)
_RESERVED_ENV = (*contract.JOB_ENVIRONMENT, *contract.CHUNK_ENVIRONMENT)


class JobConfigError(DeclarationError):
    """A job declaration that cannot be deployed; lists every problem at once."""


@dataclass(frozen=True)
class Declaration:
    """An ``MlJob``'s arguments, as the checks see them."""

    name: str
    team: str
    description: str
    image: JobImage
    command: Sequence[str] | None
    cpu: int
    memory_mib: int
    ephemeral_storage_gib: int | None
    cpu_architecture: ecs.CpuArchitecture
    environment: Mapping[str, str]
    secrets: Mapping[str, ecs.Secret]
    schedule: str | None
    partitions: Partitions
    chunk_size: int | str
    pool: str
    pool_slots: int
    retries: int
    retry_delay: cdk.Duration
    retry_exponential_backoff: bool
    max_retry_delay: cdk.Duration
    execution_timeout: cdk.Duration
    max_active_runs: int
    launch_weight: float
    start_window: cdk.Duration | None
    expected_chunk_time: cdk.Duration | None
    max_start_delay: cdk.Duration | None
    capacity: Capacity
    #: Whether ``capacity`` was chosen by the job (not the environment's default).
    capacity_chosen: bool
    cost_center: str | None
    tags: Mapping[str, str]


def raise_if_any(name: str, env: EnvironmentConfig, problems: list[str]) -> None:
    if problems:
        raise JobConfigError(
            f"job {name!r} in environment {env.name!r} is invalid:\n  - " + "\n  - ".join(problems)
        )


def declaration_problems(job: Declaration, env: EnvironmentConfig) -> list[str]:
    """Every problem of a declaration; the type checks first, since the rest assume them."""
    problems = _type_problems(job)
    if problems:
        return problems
    problems += _name_problems(job)
    problems += job.image.problems()
    problems += _command_problems(job.command)
    if not unresolved(job.cpu) and not unresolved(job.memory_mib):
        problems += fargate_size_problems(job.cpu, job.memory_mib, job.ephemeral_storage_gib)
    problems += _environment_problems(job.environment, job.secrets)
    problems += schedule_problems(job.schedule)
    problems += job.partitions.problems()
    problems += _start_window_problems(job) or fan_out_problems(job, env)
    problems += _pool_problems(job, env)
    problems += _retry_problems(job)
    problems += _expectation_problems(job)
    problems += capacity_problems(job.capacity, job.cpu_architecture, chosen=job.capacity_chosen)
    problems += tag_problems(job.tags, "tags")
    if job.cost_center is not None:
        problems += tag_problems({"cost-center": job.cost_center}, "cost_center")
    problems += launch_tag_count_problems({**env.tags, **job_tags(job)})
    return problems


def job_tags(job: Declaration) -> dict[str, str]:
    """Tags on every resource of the job and every task it launches."""
    return {
        "team": job.team,
        "job": job.name,
        **({"cost-center": job.cost_center} if job.cost_center else {}),
        **job.tags,
    }


def _type_problems(job: Declaration) -> list[str]:
    """Arguments of the wrong kind, named before anything else looks at them."""
    kinds: list[tuple[str, object, type | tuple[type, ...], str]] = [
        ("image", job.image, JobImage,
         "JobImage.from_model(...), .from_directory(...) or .from_ecr(...)"),
        ("partitions", job.partitions, Partitions, "Partitions.static([...]) or .from_s3(...)"),
        ("retry_delay", job.retry_delay, cdk.Duration, "a cdk.Duration"),
        ("max_retry_delay", job.max_retry_delay, cdk.Duration, "a cdk.Duration"),
        ("execution_timeout", job.execution_timeout, cdk.Duration, "a cdk.Duration"),
        ("start_window", job.start_window, (cdk.Duration, type(None)), "a cdk.Duration or None"),
        ("expected_chunk_time", job.expected_chunk_time, (cdk.Duration, type(None)),
         "a cdk.Duration or None"),
        ("max_start_delay", job.max_start_delay, (cdk.Duration, type(None)),
         "a cdk.Duration or None"),
        ("cpu_architecture", job.cpu_architecture, ecs.CpuArchitecture,
         "ecs.CpuArchitecture.X86_64 or .ARM64"),
    ]  # fmt: skip
    out = [
        f"field {field!r}: {value!r} must be {allowed}"
        for field, value, kind, allowed in kinds
        if not isinstance(value, kind)
    ]
    if isinstance(job.cpu_architecture, ecs.CpuArchitecture) and not architecture_name(
        job.cpu_architecture
    ):
        out.append("field 'cpu_architecture': must be ecs.CpuArchitecture.X86_64 or .ARM64")
    return out


def _name_problems(job: Declaration) -> list[str]:
    out = []
    low, high = contract.NAME_MIN_LENGTH, contract.NAME_MAX_LENGTH
    if (
        not isinstance(job.name, str)
        or not _NAME.match(job.name)
        or not low <= len(job.name) <= high
    ):
        out.append(
            f"field 'name': {job.name!r} must be {low}-{high} lowercase letters, "
            "digits and single hyphens, starting with a letter"
        )
    if not job.team or not isinstance(job.team, str):
        out.append("field 'team': name the owning team")
    else:
        out += tag_problems({"team": job.team}, "team")
    if (
        not isinstance(job.description, str)
        or "\n" in job.description
        or len(job.description) > contract.JOB_DESCRIPTION_MAX
    ):
        out.append(
            f"field 'description': must be one line of at most {contract.JOB_DESCRIPTION_MAX} "
            "characters"
        )
    return out


def _command_problems(command: Sequence[str] | None) -> list[str]:
    if command is not None and (
        isinstance(command, str) or not all(isinstance(part, str) for part in command)
    ):
        return ["field 'command': must be a list of strings, e.g. ['--horizon', '24']"]
    return []


def fargate_size_problems(cpu: int, memory_mib: int, storage: int | None) -> list[str]:
    out = []
    sizes_by_cpu = contract.FARGATE_SIZES
    if cpu not in sizes_by_cpu:
        out.append(f"field 'cpu': {cpu} is not a Fargate CPU size; allowed: {sorted(sizes_by_cpu)}")
    elif memory_mib not in sizes_by_cpu[cpu]:
        sizes = sizes_by_cpu[cpu]
        step = sizes[1] - sizes[0]
        out.append(
            f"field 'memory_mib': {memory_mib} does not fit cpu={cpu}; allowed: "
            f"{sizes[0]}-{sizes[-1]} in steps of {step}"
            + (f" ({list(sizes)})" if len(sizes) <= 4 else "")
        )
    low, high = contract.EPHEMERAL_STORAGE_GIB
    if storage is not None and not low <= storage <= high:
        out.append(
            f"field 'ephemeral_storage_gib': {storage} must be {low}-{high} "
            "(or unset for the 20 GiB default)"
        )
    return out


def _environment_problems(
    environment: Mapping[str, str], secrets: Mapping[str, ecs.Secret]
) -> list[str]:
    out = []
    for key, value in environment.items():
        if not _ENV_KEY.match(key):
            out.append(f"field 'environment': {key!r} is not a valid variable name")
        elif key in _RESERVED_ENV:
            out.append(f"field 'environment': {key!r} is set by the platform")
        elif SECRET_LIKE.search(key):
            out.append(
                f"field 'environment': {key!r} looks like a secret; pass it in "
                "'secrets' (Secrets Manager or SSM), never as plaintext"
            )
        if not isinstance(value, str):
            out.append(f"field 'environment': {key!r} value must be a string")
    for key, secret in secrets.items():
        if not _ENV_KEY.match(key):
            out.append(f"field 'secrets': {key!r} is not a valid variable name")
        elif key in _RESERVED_ENV:
            out.append(f"field 'secrets': {key!r} is set by the platform")
        if not isinstance(secret, ecs.Secret):
            out.append(
                f"field 'secrets': {key!r} must be an ecs.Secret "
                "(from_secrets_manager or from_ssm_parameter)"
            )
    overlap = sorted(set(environment) & set(secrets))
    if overlap:
        out.append(f"field 'secrets': {overlap} also set in 'environment'")
    return out


#: The five cron fields, in order, with what each allows (besides lists, ranges, */steps).
CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT"),
)


def schedule_problems(schedule: str | None) -> list[str]:
    """A cron expression (UTC) or a preset; a bad field is named with what it allows."""
    if schedule is None or schedule in contract.SCHEDULE_PRESETS:
        return []
    presets = f"a preset {list(contract.SCHEDULE_PRESETS)}, or None"
    fields = schedule.split() if isinstance(schedule, str) else []
    if len(fields) != len(CRON_FIELDS):
        return [
            f"field 'schedule': {schedule!r} has {len(fields)} fields; a cron expression has "
            f"5 ({' '.join(name for name, _ in CRON_FIELDS)}), or use {presets}"
        ]
    bad = [
        f"the {name} field {fields[i]!r} is not valid (allowed: {allowed})"
        for i, (name, allowed) in enumerate(CRON_FIELDS)
        if not croniter.is_valid(" ".join(f if j == i else "*" for j, f in enumerate(fields)))
    ]
    if bad:
        return [f"field 'schedule': {schedule!r}: {'; '.join(bad)}"]
    if not croniter.is_valid(schedule):
        return [f"field 'schedule': {schedule!r} is not a valid cron expression; or use {presets}"]
    return []


#: ``chunk_size="auto"``: the smallest chunk size that meets the job's start window.
AUTO_CHUNK_SIZE = "auto"
#: A start window longer than this is no window: the top of the hour is the point.
START_WINDOW_MAX_SECONDS = 3600


def _start_window_problems(job: Declaration) -> list[str]:
    out = []
    if job.start_window is not None and not (
        1 <= whole_seconds(job.start_window) <= START_WINDOW_MAX_SECONDS
    ):
        out.append(
            f"field 'start_window': must be 1 s to {START_WINDOW_MAX_SECONDS // 60} min after "
            "the scheduled time"
        )
    if job.chunk_size == AUTO_CHUNK_SIZE:
        if job.start_window is None:
            out.append("field 'chunk_size': 'auto' needs a start_window to choose it by")
        if job.partitions.bucket is not None:
            out.append(
                "field 'chunk_size': 'auto' needs partitions known at synth "
                "(Partitions.static); S3 partitions are listed only at run time"
            )
        if job.schedule is None:
            out.append("field 'chunk_size': 'auto' needs a schedule to plan the launches of")
    return out


def fan_out_problems(job: Declaration, env: EnvironmentConfig) -> list[str]:
    """The fan-out's limits for the declared chunk size; ``"auto"`` waits for the plan."""
    if job.chunk_size == AUTO_CHUNK_SIZE:
        return []
    return _fan_out_problems(job, env)


def _fan_out_problems(job: Declaration, env: EnvironmentConfig) -> list[str]:
    if (
        isinstance(job.chunk_size, bool)
        or not isinstance(job.chunk_size, int)
        or job.chunk_size < 1
    ):
        return [
            f"field 'chunk_size': {job.chunk_size!r} must be an integer >= 1 or {AUTO_CHUNK_SIZE!r}"
        ]
    values = list(job.partitions.values)
    if job.partitions.bucket is not None or not values:
        return []  # S3 partitions: the DAG's first task checks the same limits at run time
    out = []
    chunks = [values[i : i + job.chunk_size] for i in range(0, len(values), job.chunk_size)]
    if len(chunks) > env.airflow.max_map_length:
        out.append(
            f"field 'chunk_size': {len(values)} partitions in chunks of {job.chunk_size} "
            f"make {len(chunks)} tasks, above the environment's max_map_length "
            f"{env.airflow.max_map_length}; raise chunk_size"
        )
    largest = max(chunks, key=lambda chunk: len(json.dumps(chunk)))
    size = contract.largest_overrides_chars("model", largest, len(chunks))
    if size > contract.RUN_TASK_OVERRIDES_MAX_CHARS:
        out.append(
            f"field 'chunk_size': a chunk of {len(largest)} partitions makes RunTask overrides "
            f"of up to {size} characters; ECS allows {contract.RUN_TASK_OVERRIDES_MAX_CHARS}. "
            "Lower chunk_size or shorten the partition names"
        )
    return out


def _pool_problems(job: Declaration, env: EnvironmentConfig) -> list[str]:
    declared = env.pool(job.pool)
    if declared is None:
        return [
            f"field 'pool': {job.pool!r} is not declared in environment {env.name!r}; "
            f"declared: {[p.name for p in env.pools]}"
        ]
    if not isinstance(job.pool_slots, int) or not 1 <= job.pool_slots <= declared.slots:
        return [
            f"field 'pool_slots': {job.pool_slots} must be 1-{declared.slots} "
            f"(the size of pool {job.pool!r})"
        ]
    return []


def _retry_problems(job: Declaration) -> list[str]:
    out = []
    if not isinstance(job.retries, int) or not 0 <= job.retries <= contract.MAX_RETRIES:
        out.append(f"field 'retries': {job.retries!r} must be 0-{contract.MAX_RETRIES}")
    if whole_seconds(job.retry_delay) > whole_seconds(job.max_retry_delay):
        out.append("field 'max_retry_delay': must be at least retry_delay")
    if not isinstance(job.retry_exponential_backoff, bool):
        out.append("field 'retry_exponential_backoff': must be True or False")
    if whole_seconds(job.execution_timeout) < contract.MIN_EXECUTION_TIMEOUT_SECONDS:
        out.append(
            f"field 'execution_timeout': must be at least "
            f"{contract.MIN_EXECUTION_TIMEOUT_SECONDS} s (Fargate tasks take about a minute "
            "to start)"
        )
    runs = job.max_active_runs
    if not isinstance(runs, int) or not 1 <= runs <= contract.MAX_ACTIVE_RUNS_MAX:
        out.append(f"field 'max_active_runs': {runs!r} must be 1-{contract.MAX_ACTIVE_RUNS_MAX}")
    weight = job.launch_weight
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not 0 < weight <= contract.LAUNCH_WEIGHT_MAX
    ):
        out.append(
            f"field 'launch_weight': {weight!r} must be a number above 0 and at most "
            f"{contract.LAUNCH_WEIGHT_MAX:g}"
        )
    return out


def _expectation_problems(job: Declaration) -> list[str]:
    """What the cost estimate and the alarms take from the job."""
    out = []
    timeout = whole_seconds(job.execution_timeout)
    if job.expected_chunk_time is not None and not (
        1 <= whole_seconds(job.expected_chunk_time) <= timeout
    ):
        out.append(
            f"field 'expected_chunk_time': must be 1 s to the execution_timeout ({timeout} s): "
            "a chunk cannot be expected to outlast its timeout"
        )
    if job.max_start_delay is not None and not (
        0 <= whole_seconds(job.max_start_delay) <= START_WINDOW_MAX_SECONDS
    ):
        out.append(
            f"field 'max_start_delay': must be 0 s to {START_WINDOW_MAX_SECONDS // 60} min "
            "after the scheduled time"
        )
    return out


def capacity_problems(
    capacity: Capacity, architecture: ecs.CpuArchitecture, *, chosen: bool
) -> list[str]:
    """FARGATE_SPOT takes Linux x86_64 tasks only; RunTask would refuse an ARM64 task."""
    if not isinstance(capacity, Capacity):
        return [f"field 'capacity': {capacity!r}; allowed: {[c.value for c in Capacity]}"]
    spot = capacity is not Capacity.ON_DEMAND
    arch = architecture_name(architecture) or "?"
    if chosen and spot and arch not in contract.SPOT_CPU_ARCHITECTURES:
        return [
            f"field 'capacity': {capacity.value!r} needs Fargate Spot, which runs only "
            f"{'/'.join(contract.SPOT_CPU_ARCHITECTURES)} tasks, not {arch}; allowed for "
            f"{arch}: {Capacity.ON_DEMAND.value!r}"
        ]
    return []


def launch_tag_count_problems(tags: Mapping[str, str]) -> list[str]:
    """Each task carries the job's tags plus the platform's per-launch tags."""
    keys = {key for key in tags if not key.lower().startswith("aws:")}
    keys |= set(contract.LAUNCH_TAG_KEYS)
    if len(keys) > contract.TAGS_PER_TASK_MAX:
        return [
            f"field 'tags': each task would carry {len(keys)} tags (environment, job and the "
            f"platform's {list(contract.LAUNCH_TAG_KEYS)}); ECS allows "
            f"{contract.TAGS_PER_TASK_MAX} per task"
        ]
    return []


def task_definition_size_problems(container_definitions: Any) -> list[str]:
    """RegisterTaskDefinition refuses a definition over 64 KiB. Measured on the resolved
    container definitions; unresolved values (image URIs, ARNs) count as their template
    spelling, which is about as long as the values they become."""
    size = len(json.dumps(container_definitions, separators=(",", ":")).encode())
    if size > contract.TASK_DEFINITION_MAX_BYTES:
        return [
            f"field 'environment': the task definition is {size} bytes; ECS allows "
            f"{contract.TASK_DEFINITION_MAX_BYTES} (mostly environment values and the "
            "command): move large values to S3 or a secret"
        ]
    return []
