"""The job manifest: schema, the two copies, and refusal of malformed input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ml_platform.contract import ManifestError, json_schema, load_manifest, parse_manifest
from tests.conftest import REPO, Synthesized


def test_committed_schema_matches_the_models() -> None:
    committed = json.loads((REPO / "schemas" / "job-manifest.schema.json").read_text())
    assert committed == json_schema(), "run `make schema` and commit the result"


def test_every_environment_manifest_is_valid(synthesized: Synthesized) -> None:
    for env in ("dev", "prod"):
        data = synthesized.manifest(env)
        jsonschema.validate(data, json_schema())
        manifest = parse_manifest(data)
        assert manifest.environment == env
        assert manifest.cluster == f"mlp-{env}"
        # The examples; a job a user adds joins them.
        assert {job.name for job in manifest.jobs} >= {
            "location-forecast",
            "dynamic-pricing",
            "anomaly-detector",
        }
        assert {pool.name for pool in manifest.pools} == {"forecast", "pricing", "batch"}
        assert all(pool.include_deferred for pool in manifest.pools)


def test_local_copy_spells_deploy_time_values_as_fn_sub(synthesized: Synthesized) -> None:
    manifest = synthesized.manifest("dev")
    assert manifest["region"] == "${AWS::Region}"
    assert len(manifest["network"]["subnets"]) == 2
    for value in manifest["network"]["subnets"] + manifest["network"]["security_groups"]:
        assert value.startswith("${") and value.endswith("}"), value
        assert "Token[" not in value
    assert "Token[" not in json.dumps(manifest)


def test_local_copy_is_written_under_cdk_out(synthesized: Synthesized) -> None:
    assert (synthesized.outdir / "manifests" / "dev.json").is_file()
    assert (synthesized.outdir / "manifests" / "prod.json").is_file()


def _valid(synthesized: Synthesized) -> dict[str, Any]:
    return copy.deepcopy(synthesized.manifest("dev"))


FC, DP, AD = "job 'location-forecast'", "job 'dynamic-pricing'", "job 'anomaly-detector'"
#: A job's entry by name, wherever it sits in the list.
LF, PR, AN = (
    ("jobs", name) for name in ("location-forecast", "dynamic-pricing", "anomaly-detector")
)
ENV = "environment 'dev'"


@pytest.mark.parametrize(
    ("path", "value", "where", "allowed"),
    [
        ((*LF, "chunk_size"), 0, f"{FC}: field 'chunk_size'", "greater than or equal to 1"),
        ((*PR, "capacity"), "cheap", f"{DP}: field 'capacity'",
         "'on-demand', 'spot' or 'spot-with-fallback'"),
        ((*AN, "name"), "Bad Name", "job 'Bad Name': field 'name'", "^[a-z][a-z0-9]*"),
        ((*LF, "retry", "retries"), -1, f"{FC}: field 'retry.retries'", "greater than"),
        ((*PR, "partitions", "kind"), "ftp", f"{DP}: field 'partitions'", "'static', 's3'"),
        ((*PR, "partitions", "values"), [], f"{DP}: field 'partitions.static.values'",
         "at least 1 item"),
        ((*PR, "pool"), "nope", f"{DP}: field 'pool': 'nope' is not", "declared pools"),
        ((*LF, "cpu"), "big", f"{FC}: field 'cpu'", "valid integer"),
        ((*LF, "logs", "group"), "", f"{FC}: field 'logs.group'", "at least 1 character"),
        ((*LF, "tags"), {"a": 1}, f"{FC}: field 'tags.a'", "valid string"),
        ((*AN, "execution_timeout_seconds"), 30, f"{AD}: field 'execution_timeout_seconds'",
         "greater than or equal to 60"),
        ((*LF, "max_active_runs"), 0, f"{FC}: field 'max_active_runs'", "greater than"),
        (("schema_version",), 2, f"{ENV}: field 'schema_version'", "Input should be 1"),
        (("region",), "", f"{ENV}: field 'region'", "at least 1 character"),
        (("network", "assign_public_ip"), True, f"{ENV}: field 'network.assign_public_ip'",
         "Input should be False"),
        (("network", "subnets"), [], f"{ENV}: field 'network.subnets'", "at least 1 item"),
        (("max_map_length",), 0, f"{ENV}: field 'max_map_length'", "greater than or equal to 1"),
        (("fleet", "poll_interval"), 0, f"{ENV}: field 'fleet.poll_interval'", "greater than"),
        (("fleet", "log_lines"), 0, f"{ENV}: field 'fleet.log_lines'", "greater than"),
        (("pools", 0, "slots"), 0, "pool 'forecast': field 'slots'", "greater than"),
        (("pools", 0, "name"), "b a d", "pool 'b a d': field 'name'", "^[A-Za-z0-9_.-]{1,50}$"),
    ],
)  # fmt: skip
def test_malformed_manifest_names_job_and_field(
    synthesized: Synthesized, path: tuple[Any, ...], value: Any, where: str, allowed: str
) -> None:
    data = _valid(synthesized)
    target = data
    for key in path[:-1]:
        if isinstance(target, list) and isinstance(key, str):  # a job by its name
            key = next(i for i, job in enumerate(target) if job["name"] == key)
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data)
    message = str(caught.value)
    assert where in message, message
    assert allowed in message, message


def test_unknown_field_is_refused(synthesized: Synthesized) -> None:
    data = _valid(synthesized)
    data["jobs"][0]["operator"] = "airflow.operators.bash.BashOperator"
    with pytest.raises(ManifestError, match="job 'location-forecast': field 'operator'"):
        parse_manifest(data)


def test_duplicate_jobs_are_refused(synthesized: Synthesized) -> None:
    data = _valid(synthesized)
    data["jobs"].append(data["jobs"][0])
    with pytest.raises(ManifestError, match="'location-forecast': field 'name': duplicate"):
        parse_manifest(data)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        load_manifest(broken)


def test_each_triggerer_gets_its_share_of_the_ecs_budget(synthesized: Synthesized) -> None:
    fleet = synthesized.manifest("prod")["fleet"]
    # 20 launches/s after a burst of 100, 10 reads/s, 4 log reads/s, over 2 triggerers
    # (self-hosted: at most max_triggerers run, each with this share).
    assert (fleet["launch_rate"], fleet["launch_burst"]) == (10.0, 50.0)
    assert (fleet["read_rate"], fleet["log_rate"]) == (5.0, 2.0)
    assert fleet["poll_interval"] == 15.0
