"""The container contract every model image shares: partitions in, JSON Lines out."""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import model_contract as contract
import pytest

from tests.models.conftest import MODEL_NAMES

#: Each model's entry point (``<package>.main``), for every folder in models/.
MAINS: dict[str, Callable[[list[str] | None], int]] = {
    name: importlib.import_module(name).main for name in MODEL_NAMES
}
RunModule = Callable[..., subprocess.CompletedProcess[str]]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class FakeBoto3(types.ModuleType):
    """Stands in for boto3 (and its S3 client) to capture what would be uploaded."""

    def __init__(self) -> None:
        super().__init__("boto3")
        self.puts: list[dict[str, Any]] = []

    def client(self, service_name: str) -> FakeBoto3:
        assert service_name == "s3"
        return self

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.puts.append(kwargs)
        return {}


# Resolving partitions


def test_cli_partitions_win_over_environment() -> None:
    env = {"ML_PARTITIONS": '["from-env"]'}
    assert contract.resolve_partitions("a, b,c", env) == ["a", "b", "c"]


def test_environment_partitions_are_a_json_list() -> None:
    env = {"ML_PARTITIONS": '["loc-1", "loc 2", "loc-3"]'}
    assert contract.resolve_partitions(None, env) == ["loc-1", "loc 2", "loc-3"]


def test_blank_cli_items_are_kept_to_fail_as_partitions() -> None:
    assert contract.resolve_partitions("a,,b", {}) == ["a", "", "b"]


@pytest.mark.parametrize(
    ("cli", "env", "message"),
    [
        (None, {}, "no partitions"),
        (None, {"ML_PARTITIONS": "  "}, "no partitions"),
        (None, {"ML_PARTITIONS": "[]"}, "empty list"),
        ("", {"ML_PARTITIONS": '["a"]'}, "--partitions is empty"),
        (None, {"ML_PARTITIONS": "a,b"}, "not valid JSON"),
        (None, {"ML_PARTITIONS": '{"a": 1}'}, "JSON list of strings"),
        (None, {"ML_PARTITIONS": '["a", 1]'}, "JSON list of strings"),
    ],
)
def test_missing_or_malformed_partitions_are_usage_errors(
    cli: str | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(contract.UsageError, match=message):
        contract.resolve_partitions(cli, env)


@pytest.mark.parametrize("partition", ["a", "loc-0001", "all", "x" * 256, "two words"])
def test_valid_partition_ids(partition: str) -> None:
    contract.check_partition_id(partition)


@pytest.mark.parametrize("partition", ["", " a", "a ", "x" * 257, "a\nb", "a\tb"])
def test_invalid_partition_ids(partition: str) -> None:
    with pytest.raises(contract.PartitionError):
        contract.check_partition_id(partition)


# Output and schedule


@pytest.mark.parametrize("value", ["s3://bucket", "s3://bucket/", "s3:///key"])
def test_s3_output_needs_bucket_and_key(value: str) -> None:
    with pytest.raises(contract.UsageError, match="s3://bucket/key"):
        contract.resolve_output(value, {})


def test_output_flag_wins_and_blank_means_stdout() -> None:
    assert contract.resolve_output("out.jsonl", {"ML_OUTPUT_URI": "s3://b/k"}) == "out.jsonl"
    assert contract.resolve_output(None, {"ML_OUTPUT_URI": "s3://b/k"}) == "s3://b/k"
    assert contract.resolve_output(None, {"ML_OUTPUT_URI": " "}) is None


def test_folder_output_gets_one_stable_file_per_chunk() -> None:
    first = contract.output_target("s3://b/runs/", "m", ["a", "b"])
    assert first.startswith("s3://b/runs/m-") and first.endswith(".jsonl")
    assert contract.output_target("s3://b/runs/", "m", ["a", "b"]) == first
    assert contract.output_target("s3://b/runs/", "m", ["c"]) != first
    assert contract.output_target("s3://b/k.jsonl", "m", ["a"]) == "s3://b/k.jsonl"


def test_logical_date_is_utc() -> None:
    naive = contract.logical_date({"ML_LOGICAL_DATE": "2024-03-10T05:30:00"})
    assert naive == datetime(2024, 3, 10, 5, 30, tzinfo=UTC)
    offset = contract.logical_date({"ML_LOGICAL_DATE": "2024-03-10T07:30:00+02:00"})
    assert offset == naive and offset.tzinfo == UTC
    assert contract.logical_date({"ML_LOGICAL_DATE": "2024-03-10T05:30:00Z"}) == naive
    now = contract.logical_date({})
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


def test_bad_logical_date_is_a_usage_error() -> None:
    with pytest.raises(contract.UsageError, match="ML_LOGICAL_DATE"):
        contract.logical_date({"ML_LOGICAL_DATE": "yesterday"})


def test_s3_output_is_uploaded_as_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBoto3()
    monkeypatch.setitem(sys.modules, "boto3", fake)
    code = contract.run(
        model="m",
        label="item",
        partitions=["a", "b"],
        process=lambda p: ({"value": p.upper()}, f"value={p.upper()}"),
        output="s3://bucket/runs/out.jsonl",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert code == 0
    [put] = fake.puts
    assert (put["Bucket"], put["Key"]) == ("bucket", "runs/out.jsonl")
    rows = [json.loads(line) for line in put["Body"].decode().splitlines()]
    assert [(r["partition"], r["value"], r["status"]) for r in rows] == [
        ("a", "A", "ok"),
        ("b", "B", "ok"),
    ]


def test_failed_upload_is_exit_code_1(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBoto3()

    def refuse(**kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("AccessDenied")

    monkeypatch.setattr(fake, "put_object", refuse)
    monkeypatch.setitem(sys.modules, "boto3", fake)
    out = io.StringIO()
    code = contract.run(
        model="m",
        label="item",
        partitions=["a"],
        process=lambda p: ({}, ""),
        output="s3://bucket/key",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert code == 1
    assert "output error" in out.getvalue() and "AccessDenied" in out.getvalue()


def test_a_nan_result_fails_only_its_partition(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    code = contract.run(
        model="m",
        label="item",
        partitions=["good", "bad"],
        process=lambda p: ({"value": 1.0 if p == "good" else float("nan")}, ""),
        output=str(target),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert code == 1
    assert [r["status"] for r in read_jsonl(target)] == ["ok", "error"]


# The three entry points


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_no_partitions_exits_2(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert MAINS[model]([]) == 2
    assert "no partitions" in capsys.readouterr().err


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_empty_partition_list_in_env_exits_2(
    model: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ML_PARTITIONS", "[]")
    assert MAINS[model]([]) == 2
    assert "empty list" in capsys.readouterr().err


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_unknown_flag_exits_2(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert MAINS[model](["--partitions", "a", "--no-such-flag"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_one_bad_partition_exits_1_and_the_rest_still_run(
    model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "nested" / "dir" / "out.jsonl"
    monkeypatch.setenv("ML_PARTITIONS", json.dumps(["p-1", "", "p-3"]))
    monkeypatch.setenv("ML_OUTPUT_URI", str(target))
    monkeypatch.setenv("ML_LOGICAL_DATE", "2024-05-01T06:00:00Z")

    assert MAINS[model]([]) == 1

    rows = read_jsonl(target)
    assert [(r["partition"], r["status"], r["model"]) for r in rows] == [
        ("p-1", "ok", model),
        ("", "error", model),
        ("p-3", "ok", model),
    ]
    assert "empty partition id" in rows[1]["error"]
    log = capsys.readouterr().out.splitlines()
    label = log[1].split("=", 1)[0]  # the model's own word for a partition ("market")
    assert log[0].startswith(f"start model={model} partitions=3 output={target}")
    assert re.fullmatch(r"[a-z_]+", label)
    assert log[1].startswith(f"{label}=p-1 ") and log[1].endswith(" status=ok")
    assert log[2].startswith(f'{label}="" status=error')
    assert log[3].startswith(f"{label}=p-3 ") and log[3].endswith(" status=ok")
    assert log[4].startswith("done partitions=3 failed=1 seconds=")


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_env_partitions_and_cli_partitions_give_the_same_records(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_LOGICAL_DATE", "2024-05-01T06:00:00Z")
    from_args, from_env = tmp_path / "args.jsonl", tmp_path / "env.jsonl"
    assert MAINS[model](["--partitions", "p-1,p-2", "--output", str(from_args)]) == 0
    monkeypatch.setenv("ML_PARTITIONS", '["p-1", "p-2"]')
    monkeypatch.setenv("ML_OUTPUT_URI", str(from_env))
    assert MAINS[model]([]) == 0
    assert from_args.read_bytes() == from_env.read_bytes()
    assert [r["partition"] for r in read_jsonl(from_env)] == ["p-1", "p-2"]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_same_partition_gives_the_same_record(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_LOGICAL_DATE", "2024-05-01T06:00:00Z")
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    assert MAINS[model](["--partitions", "p-1,p-2,p-1", "--output", str(first)]) == 0
    assert MAINS[model](["--partitions", "p-1", "--output", str(second)]) == 0
    rows = read_jsonl(first)
    assert rows[0] == rows[2] == read_jsonl(second)[0]

    def results(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k != "partition" and not k.endswith("_id")}

    assert results(rows[0]) != results(rows[1]), "different ids should get different data"


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_python_dash_m_keeps_stdout_pure_and_matches_another_process(
    model: str, run_module: RunModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A different hash seed from this process: output must not depend on hash().
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    env = {"ML_LOGICAL_DATE": "2024-05-01T06:00:00Z", "PYTHONHASHSEED": seed}
    result = run_module(model, "--partitions", "p-1,p-2", env=env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["partition"], r["status"]) for r in rows] == [("p-1", "ok"), ("p-2", "ok")]
    # With records on stdout, progress goes to stderr.
    assert "start model=" in result.stderr and "done partitions=2 failed=0" in result.stderr

    here = tmp_path / "here.jsonl"
    monkeypatch.setenv("ML_LOGICAL_DATE", env["ML_LOGICAL_DATE"])
    assert MAINS[model](["--partitions", "p-1,p-2", "--output", str(here)]) == 0
    assert read_jsonl(here) == rows


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_python_dash_m_exit_code_reaches_the_shell(model: str, run_module: RunModule) -> None:
    result = run_module(model, env={"ML_PARTITIONS": '["p-1", ""]', "ML_OUTPUT_URI": "out.jsonl"})
    assert result.returncode == 1
    assert "done partitions=2 failed=1" in result.stdout
    assert run_module(model).returncode == 2


def test_the_shared_dockerfile_deploys_on_the_public_base_and_runs_as_non_root() -> None:
    models = Path(__file__).resolve().parents[2] / "models"
    lines = [
        line.strip()
        for line in (models / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # What `cdk deploy` builds: the public base unless the local harness overrides it.
    assert lines[:2] == [
        "ARG BASE_IMAGE=public.ecr.aws/docker/library/python:3.11-slim",
        "FROM ${BASE_IMAGE}",
    ]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"} and not users[-1].startswith("0:")
    assert lines[-1] == 'ENTRYPOINT ["python", "-m", "model_contract"]'
    assert "__pycache__" in (models / ".dockerignore").read_text()
