"""The container I/O contract: partitions in, one JSON line per partition out.

One package shared by every model image: ``models/Dockerfile`` builds it into each image
beside the model's own package, and ``python -m model_contract`` (the images' entry point)
runs the model named by ``ML_MODEL_PACKAGE``. See ``models/README.md`` for the contract.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

PARTITIONS_ENV = "ML_PARTITIONS"
OUTPUT_ENV = "ML_OUTPUT_URI"
LOGICAL_DATE_ENV = "ML_LOGICAL_DATE"
MAX_PARTITION_LENGTH = 256

Record = dict[str, Any]
# Turns one partition id into its result fields and a short "key=value ..." log detail.
Processor = Callable[[str], tuple[Record, str]]
T = TypeVar("T")


class UsageError(Exception):
    """The run cannot start at all (exit code 2)."""


class PartitionError(ValueError):
    """One partition cannot be processed; the others still run."""


def add_contract_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--partitions",
        help=f"comma-separated partition ids (default: JSON list of strings in ${PARTITIONS_ENV})",
    )
    parser.add_argument(
        "--output",
        help=f"s3://bucket/key, a local file path, or a prefix ending in '/' "
        f"(default: ${OUTPUT_ENV}; unset: JSON Lines on stdout)",
    )


def resolve_partitions(cli_value: str | None, environ: Mapping[str, str]) -> list[str]:
    """Partitions from ``--partitions a,b`` or else from the JSON list in ``ML_PARTITIONS``.

    Blank items are kept on purpose: they fail as partitions (exit 1) rather than
    silently shrinking the chunk the orchestrator asked for.
    """
    if cli_value is not None:
        if not cli_value.strip():
            raise UsageError("no partitions: --partitions is empty")
        return [item.strip() for item in cli_value.split(",")]
    raw = environ.get(PARTITIONS_ENV, "")
    if not raw.strip():
        raise UsageError(
            f"no partitions: pass --partitions a,b,c or set {PARTITIONS_ENV} "
            'to a JSON list of strings, e.g. ["a", "b"]'
        )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{PARTITIONS_ENV} is not valid JSON: {exc.msg}") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"{PARTITIONS_ENV} must be a JSON list of strings, got: {raw[:80]}")
    if not value:
        raise UsageError(f"no partitions: {PARTITIONS_ENV} is an empty list")
    return value


def check_partition_id(partition: str) -> None:
    """Partition ids follow the platform's rule: 1-256 printable characters, no padding."""
    if not partition:
        raise PartitionError("empty partition id")
    if len(partition) > MAX_PARTITION_LENGTH:
        raise PartitionError(f"partition id longer than {MAX_PARTITION_LENGTH} characters")
    if partition != partition.strip() or not partition.isprintable():
        raise PartitionError("partition id has surrounding whitespace or control characters")


def resolve_output(cli_value: str | None, environ: Mapping[str, str]) -> str | None:
    """The output location, or None for stdout."""
    value = (cli_value if cli_value is not None else environ.get(OUTPUT_ENV, "")).strip()
    if not value:
        return None
    if value.startswith("s3://"):
        bucket, _, key = value.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise UsageError(f"output {value!r} must look like s3://bucket/key")
    return value


def output_target(output: str, model: str, partitions: Sequence[str]) -> str:
    """A location ending in '/' is a folder: each chunk gets its own file, named from its
    partitions so a retried task overwrites its own result instead of a sibling's."""
    if not output.endswith("/"):
        return output
    digest = hashlib.sha256("\n".join(partitions).encode()).hexdigest()[:16]
    return f"{output}{model}-{digest}.jsonl"


def logical_date(environ: Mapping[str, str]) -> datetime:
    """The scheduled time from ``ML_LOGICAL_DATE`` (naive means UTC), else now, in UTC."""
    raw = environ.get(LOGICAL_DATE_ENV, "").strip()
    if not raw:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{LOGICAL_DATE_ENV}={raw!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def option(
    cli_value: T | None,
    environ: Mapping[str, str],
    env_name: str,
    default: T,
    parse: Callable[[str], T],
) -> T:
    """A model parameter: the CLI flag wins, then the environment, then the default."""
    if cli_value is not None:
        return cli_value
    raw = environ.get(env_name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise UsageError(f"{env_name}={raw!r} is not a valid value") from None


def write_lines(lines: Sequence[str], target: str | None, stdout: TextIO) -> None:
    body = "".join(line + "\n" for line in lines)
    if target is None:
        stdout.write(body)
        stdout.flush()
        return
    if target.startswith("s3://"):
        # Imported here so local runs and tests need nothing beyond the standard library.
        import boto3

        bucket, _, key = target.removeprefix("s3://").partition("/")
        boto3.client("s3").put_object(
            Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson"
        )
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees half a file.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(body, encoding="utf-8")
    os.replace(partial, path)


def _show(value: str) -> str:
    """A log value, quoted only when it would otherwise be ambiguous."""
    if value and not any(ch.isspace() or ch in '"=' for ch in value):
        return value
    return json.dumps(value)


def run(
    *,
    model: str,
    label: str,
    partitions: Sequence[str],
    process: Processor,
    output: str | None,
    context: str = "",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Process every partition, write the records, and return the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    # With no output location the records own stdout, so progress moves to stderr.
    log_stream = err if output is None else out
    target = None if output is None else output_target(output, model, partitions)

    def log(message: str) -> None:
        print(message, file=log_stream, flush=True)

    started = time.monotonic()
    extra = f" {context}" if context else ""
    log(f"start model={model} partitions={len(partitions)} output={target or 'stdout'}{extra}")
    lines: list[str] = []
    failed = 0
    for partition in partitions:
        try:
            check_partition_id(partition)
            fields, detail = process(partition)
            record = {"model": model, "partition": partition, "status": "ok", **fields}
            # allow_nan=False: a NaN is a bug in this partition, not valid JSON for readers.
            lines.append(json.dumps(record, sort_keys=True, allow_nan=False))
        except Exception as exc:
            failed += 1
            error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, PartitionError):
                traceback.print_exc(file=err)
            record = {"model": model, "partition": partition, "status": "error", "error": error}
            lines.append(json.dumps(record, sort_keys=True))
            log(f"{label}={_show(partition)} status=error error={_show(error)}")
        else:
            log(f"{label}={_show(partition)} {detail} status=ok")
    code = EXIT_FAILED if failed else EXIT_OK
    try:
        write_lines(lines, target, out)
    except Exception as exc:
        traceback.print_exc(file=err)
        log(f"output error target={target} error={_show(f'{type(exc).__name__}: {exc}')}")
        code = EXIT_FAILED
    seconds = time.monotonic() - started
    log(f"done partitions={len(partitions)} failed={failed} seconds={seconds:.2f}")
    return code
