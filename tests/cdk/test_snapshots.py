"""Whole-stack snapshots, every stack of every environment.

A change here is a reviewed infrastructure change: `make snapshots` re-records them and
the diff shows what the change does to the templates.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import Synthesized

# Asset hashes change with any file in an asset folder; they say nothing about the infra.
ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def stacks() -> list[str]:
    """Every stack of an environment: each group's, as many as jobs/stacks.json records."""
    from constructs_lib.job_placement import StackPlacement, stack_id
    from jobs import JOB_GROUPS, PLACEMENT_FILE

    placement = StackPlacement.load(PLACEMENT_FILE)
    groups = [
        stack_id(group, number)
        for group in JOB_GROUPS
        for number in range(1, placement.stacks_of(group) + 1)
    ]
    return ["Network", "Compute", *groups, "Airflow", "Monitoring"]


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def masked(template: dict[str, Any]) -> Any:
    return json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


@pytest.mark.parametrize("stack", stacks())
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_stack_snapshot(
    synthesized: Synthesized, snapshot_json: SnapshotAssertion, env: str, stack: str
) -> None:
    assert masked(synthesized.template(env, stack)) == snapshot_json


def test_snapshots_are_stable_from_run_to_run(synthesized: Synthesized, tmp_path: Any) -> None:
    from config import ENVIRONMENTS
    from jobs import JOB_GROUPS
    from stacks.platform_app import build_app, synth

    app, stages = build_app({"dev": ENVIRONMENTS["dev"]}, JOB_GROUPS, outdir=str(tmp_path))
    synth(app, stages)
    again = json.loads(next(tmp_path.glob("assembly-dev/devAirflow*.template.json")).read_text())
    assert masked(again) == masked(synthesized.template("dev", "Airflow"))
