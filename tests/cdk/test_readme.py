"""The README's "Add a job" example works as written, and a user who follows the README
(add the group, `make snapshots`) gets a passing `make test`."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from config import ENVIRONMENTS
from stacks.platform_app import build_app, synth
from tests.conftest import REPO, copy_repository, run_in


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Add a job") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README lost its Add-a-job example"
    return match.group(1)


def test_the_readme_job_lands_in_templates_and_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model folder as the README says: a package of its own name beside the shared files.
    shutil.copytree(REPO / "models", tmp_path / "models")
    shutil.copytree(
        REPO / "models" / "dynamic_pricing" / "dynamic_pricing",
        tmp_path / "models" / "churn_score" / "churn_score",
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)

    out = tmp_path / "cdk.out"
    app, stages = build_app(
        {"dev": ENVIRONMENTS["dev"]}, {"growth": namespace["declare"]}, outdir=str(out)
    )
    synth(app, stages)

    jobs = json.loads(next(out.glob("assembly-dev/devJobsgrowth*.template.json")).read_text())
    kinds = [r["Type"] for r in jobs["Resources"].values()]
    assert kinds.count("AWS::ECS::TaskDefinition") == 1
    assert kinds.count("AWS::Logs::LogGroup") == 1
    assert kinds.count("AWS::IAM::Role") == 2
    text = json.dumps(jobs)
    assert '"Family": "mlp-dev-churn-score"' in text
    assert "acme-features" in text and "secretsmanager" in text
    # Airflow's role already covers it: the environment's families, roles and log groups.
    airflow = next(out.glob("assembly-dev/devAirflow*.template.json")).read_text()
    assert "churn-score" not in airflow.replace('"name": "churn-score"', "")
    assert "task-definition/mlp-dev-*:*" in airflow and ":role/mlp-dev/jobs/*" in airflow
    assert "log-group:/mlp-dev/jobs/*" in airflow
    entry = json.loads((out / "manifests" / "dev.json").read_text())["jobs"][0]
    assert entry["name"] == "churn-score" and entry["chunk_size"] == 4
    assert len(entry["partitions"]["values"]) == 40


def test_following_the_readme_passes_lint_and_the_tests(tmp_path: Path) -> None:
    """In a copy of the repository: the example as jobs/growth.py passes ruff as written;
    the snapshot check fails until `make snapshots` (which records the job's stack in
    jobs/stacks.json), as the README says; then the CDK and DAG tests pass with the new
    job among the others."""
    repo = copy_repository(tmp_path / "repo")
    (repo / "jobs" / "growth.py").write_text(readme_example())
    shutil.copytree(
        repo / "models" / "dynamic_pricing" / "dynamic_pricing",
        repo / "models" / "churn_score" / "churn_score",
    )
    lint = [
        run_in(repo, ".venv/bin/ruff", "check", "jobs/growth.py"),
        run_in(repo, ".venv/bin/ruff", "format", "--check", "jobs/growth.py"),
    ]
    assert [r.returncode for r in lint] == [0, 0], [r.stdout + r.stderr for r in lint]
    pytest_ = (".venv/bin/pytest", "-q", "-p", "no:cacheprovider")
    snapshots = run_in(repo, *pytest_, "tests/cdk/test_snapshots.py")
    assert snapshots.returncode != 0, snapshots.stdout
    recorded = run_in(repo, "make", "--no-print-directory", "snapshots")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "job 'churn-score': placed in stack Jobs-growth" in recorded.stderr
    placement = json.loads((repo / "jobs" / "stacks.json").read_text())
    assert placement["groups"]["growth"] == {"stacks": 1, "jobs": {"churn-score": 1}}
    tests = run_in(
        repo, *pytest_, "tests/cdk", "tests/dags",
        "--deselect", "tests/cdk/test_make_synth.py", "--deselect", "tests/cdk/test_readme.py",
        # These build their own apps and never read jobs/: the main run covers them.
        "--deselect", "tests/cdk/test_bad_input_corpus.py",
        "--deselect", "tests/cdk/test_quotas.py",
        "--deselect",
        "tests/cdk/test_catalog.py::test_a_thousand_jobs_in_one_group_deploy_and_airflow_policies_do_not_grow",
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]
