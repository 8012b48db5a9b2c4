"""A catalog that grows and shrinks deploys: a group spreads over as many stacks as it
needs, no job ever moves (so no resource is replaced), removing a job leaves every
import satisfied, and Airflow's permissions do not grow with the catalog."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from bench.catalog import catalog_groups
from config import ENVIRONMENTS
from constructs_lib.job import JobImage, MlJob
from constructs_lib.job_placement import JOBS_PER_STACK, PlacementError, StackPlacement
from jobs import PLACEMENT_FILE
from stacks.platform_app import build_app, synth
from stacks.quotas import MAX_RESOURCES, MAX_TEMPLATE_BYTES, stack_templates
from tests.conftest import Synthesized

GROUP = "scoring"


def group_of(names: Sequence[str]) -> dict[str, Callable[[Any], None]]:
    """One job group declaring ``names`` in that order."""

    def declare(stack: Any) -> None:
        for name in names:
            MlJob(
                stack,
                name.title().replace("-", ""),
                platform=stack.platform,
                name=name,
                team="scoring",
                image=JobImage.from_model("dynamic_pricing"),
            )

    return {GROUP: declare}


def synth_dev(
    outdir: Path, groups: dict[str, Callable[[Any], None]], placement: StackPlacement
) -> Path:
    app, stages = build_app(
        {"dev": ENVIRONMENTS["dev"]}, groups, placement=placement, outdir=str(outdir)
    )
    return synth(app, stages)


def templates(assembly: Path) -> dict[str, dict[str, Any]]:
    """Each stack's template by its name in the app ("dev/Jobs-scoring-2")."""
    return {s.display_name: json.loads(s.path.read_text()) for s in stack_templates(assembly)}


def job_homes(assembly: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """Each job construct's stack and the logical ids of its resources."""
    homes: dict[str, tuple[str, set[str]]] = {}
    for stack in stack_templates(assembly):
        if "/Jobs-" not in stack.display_name:
            continue
        for logical_id, path in stack.construct_paths().items():
            if "/" in path:  # below a construct of the stack: a job's resource
                owner = path.split("/")[0]
                homes.setdefault(owner, (stack.display_name, set()))[1].add(logical_id)
    return {job: (stack, frozenset(ids)) for job, (stack, ids) in homes.items()}


def exports(assembly: Path) -> tuple[set[str], set[str]]:
    """(names exported, names imported) over every stack."""
    exported, imported = set(), set()
    for template in templates(assembly).values():
        for output in template.get("Outputs", {}).values():
            name = output.get("Export", {}).get("Name")
            if name is not None:
                exported.add(json.dumps(name, sort_keys=True))
        imported |= {json.dumps(v, sort_keys=True) for v in _values_of(template, "Fn::ImportValue")}
    return exported, imported


def _values_of(value: Any, key: str) -> list[Any]:
    if isinstance(value, dict):
        found = [value[key]] if key in value else []
        return found + [v for item in value.values() for v in _values_of(item, key)]
    if isinstance(value, list):
        return [v for item in value for v in _values_of(item, key)]
    return []


# -- a group that grows, shrinks and grows again ------------------------------------------

FIRST = ["alpha", "bravo", "charlie", "delta", "echo"]  # 2 per stack: 3 stacks


@pytest.fixture(scope="module")
def first_synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The catalog as first deployed, and its recorded placement."""
    record = tmp_path_factory.mktemp("record") / "stacks.json"
    placement = StackPlacement(jobs_per_stack=2)
    assembly = synth_dev(tmp_path_factory.mktemp("first"), group_of(FIRST), placement)
    placement.save(record)
    return assembly, record


def test_a_group_spreads_over_as_many_stacks_as_it_needs(
    first_synth: tuple[Path, Path],
) -> None:
    assembly, record = first_synth
    homes = job_homes(assembly)
    assert {job: stack for job, (stack, _) in homes.items()} == {
        "Alpha": "dev/Jobs-scoring",
        "Bravo": "dev/Jobs-scoring",
        "Charlie": "dev/Jobs-scoring-2",
        "Delta": "dev/Jobs-scoring-2",
        "Echo": "dev/Jobs-scoring-3",
    }
    recorded = json.loads(record.read_text())["groups"][GROUP]
    assert recorded == {
        "stacks": 3,
        "jobs": {"alpha": 1, "bravo": 1, "charlie": 2, "delta": 2, "echo": 3},
    }


def test_adding_a_job_moves_no_existing_job(first_synth: tuple[Path, Path], tmp_path: Path) -> None:
    before, record = first_synth
    placement = StackPlacement.load(record, jobs_per_stack=2)
    # Declared second: by order alone it would push every later job along.
    after = synth_dev(tmp_path, group_of(["alpha", "foxtrot", *FIRST[1:]]), placement)
    old, new = job_homes(before), job_homes(after)
    assert {job: new[job] for job in old} == old  # same stack, same logical ids
    assert new["Foxtrot"][0] == "dev/Jobs-scoring-3"  # the first stack with room
    assert placement.placed == [(GROUP, "foxtrot", 3)]


def test_removing_a_job_keeps_every_import_satisfied_and_frees_its_place(
    first_synth: tuple[Path, Path], tmp_path: Path
) -> None:
    before, record = first_synth
    placement = StackPlacement.load(record, jobs_per_stack=2)
    after = synth_dev(tmp_path / "a", group_of(["alpha", "bravo", "delta", "echo"]), placement)
    exported_after, imported_after = exports(after)
    _, imported_before = exports(before)
    # No export that a deployed stack imports disappears (CloudFormation would refuse
    # the deploy with "export ... in use"), and every import of the new catalog exists.
    assert imported_before <= exported_after
    assert imported_after <= exported_after
    old = job_homes(before)
    assert {job: home for job, home in job_homes(after).items()} == {
        job: home for job, home in old.items() if job != "Charlie"
    }
    # The record forgets it; a later job takes its place rather than a new stack.
    placement.save(record_after := tmp_path / "stacks.json")
    again = StackPlacement.load(record_after, jobs_per_stack=2)
    assert again.stack_of(GROUP, "golf") == 2


def test_an_emptied_stack_stays_without_job_resources_so_a_deploy_deletes_them(
    first_synth: tuple[Path, Path], tmp_path: Path
) -> None:
    _, record = first_synth
    placement = StackPlacement.load(record, jobs_per_stack=2)
    after = synth_dev(tmp_path, group_of(FIRST[:4]), placement)
    emptied = templates(after)["dev/Jobs-scoring-3"]
    # CDK never deletes a stack it no longer synthesizes; kept empty, its deploy removes
    # the job's resources (the CLI deletes a stack left with none at all).
    assert not any(
        r["Type"].startswith(("AWS::ECS", "AWS::IAM", "AWS::Logs"))
        for r in emptied.get("Resources", {}).values()
    )


def test_the_airflow_stack_imports_nothing_from_the_job_stacks(
    synthesized: Synthesized,
) -> None:
    for env in ("dev", "prod"):
        airflow = json.dumps(synthesized.template(env, "Airflow"))
        assert f"{env}-Jobs" not in airflow
        for group, stack in synthesized.stages[env].job_stacks.items():
            for member in stack.group_stacks.values():
                template = synthesized.template(env, member.node.id)
                assert "Outputs" not in template or not any(
                    "Export" in o for o in template["Outputs"].values()
                ), group


# -- the record -----------------------------------------------------------------------------


def test_the_committed_record_places_every_job_of_the_catalog(
    synthesized: Synthesized,
) -> None:
    assert synthesized.placement.placed == [], (
        f"jobs without a recorded stack: {synthesized.placement.placed}; run `make synth` "
        f"and commit {PLACEMENT_FILE.relative_to(PLACEMENT_FILE.parents[1])}"
    )
    assert synthesized.placement.is_recorded_in(PLACEMENT_FILE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not a job placement"),
        ('{"groups": {"g": {"jobs": {}}}}', "not a job placement"),
        ('{"groups": {"g": {"stacks": 2, "jobs": {"a": 3}}}}', "stack numbers must be 1-2"),
    ],
)
def test_an_unreadable_record_is_refused_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    (path := tmp_path / "stacks.json").write_text(text)
    with pytest.raises(PlacementError, match=message) as refused:
        StackPlacement.load(path)
    assert str(path) in str(refused.value)


# -- 1,000 jobs ------------------------------------------------------------------------------


def airflow_role_policies(assembly: Path) -> list[Any]:
    airflow = next(t for name, t in templates(assembly).items() if name.endswith("/Airflow"))
    return [
        (r["Type"], r["Properties"]["PolicyDocument"])
        for r in airflow["Resources"].values()
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        and "MwaaExecutionRole" in json.dumps(r["Properties"].get("Roles"))
    ]


def test_a_thousand_jobs_in_one_group_deploy_and_airflow_policies_do_not_grow(
    tmp_path: Path,
) -> None:
    small = synth_dev(tmp_path / "3", catalog_groups(3, 1), StackPlacement())
    large = synth_dev(tmp_path / "1000", catalog_groups(1000, 1), StackPlacement())
    # The same documents, byte for byte: nothing in them names a job.
    assert airflow_role_policies(large) == airflow_role_policies(small)
    assert [kind for kind, _ in airflow_role_policies(large)] == ["AWS::IAM::Policy"]
    stacks = [s for s in stack_templates(large) if "/Jobs-" in s.display_name]
    assert len(stacks) == math.ceil(1000 / JOBS_PER_STACK)
    for stack in stack_templates(large):
        assert stack.path.stat().st_size < MAX_TEMPLATE_BYTES
        assert len(json.loads(stack.path.read_text())["Resources"]) < MAX_RESOURCES
    assert len(json.loads((large / "manifests" / "dev.json").read_text())["jobs"]) == 1000
