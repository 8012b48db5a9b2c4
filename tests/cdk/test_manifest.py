"""The job manifest: schema, the two copies, and refusal of malformed input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ml_platform.manifest import ManifestError, json_schema, load_manifest, parse_manifest
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
        assert {job.name for job in manifest.jobs} == {
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


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("jobs", 0, "chunk_size"), 0, "job 'location-forecast': field 'chunk_size'"),
        (("jobs", 1, "capacity"), "cheap", "job 'dynamic-pricing': field 'capacity'"),
        (("jobs", 2, "name"), "Bad Name", "field 'name'"),
        (("jobs", 0, "retry", "retries"), -1, "field 'retry.retries'"),
        (("jobs", 1, "partitions", "kind"), "ftp", "field 'partitions'"),
        (("jobs", 1, "pool"), "nope", "job 'dynamic-pricing': field 'pool': 'nope' is not"),
        (("schema_version",), 2, "field 'schema_version'"),
        (("network", "assign_public_ip"), True, "field 'network.assign_public_ip'"),
    ],
)
def test_malformed_manifest_names_job_and_field(
    synthesized: Synthesized, path: tuple[Any, ...], value: Any, expected: str
) -> None:
    data = _valid(synthesized)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data)
    assert expected in str(caught.value)


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
    # 20 launches/s after a burst of 100, 10 reads/s, 8 log reads/s, over 2 triggerers.
    assert (fleet["launch_rate"], fleet["launch_burst"]) == (10.0, 50.0)
    assert (fleet["read_rate"], fleet["log_rate"]) == (5.0, 4.0)
    assert fleet["poll_interval"] == 15.0
