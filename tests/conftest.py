"""Whole-app fixtures, built once per session: synthesizing is the slow part."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO = Path(__file__).resolve().parents[1]
#: The repository's example jobs; tests about them hold when a user adds jobs.
EXAMPLE_JOBS = ("location-forecast", "dynamic-pricing", "anomaly-detector")


@dataclass
class Synthesized:
    outdir: Path
    stages: dict[str, Any]
    #: Each job's stack, as jobs/stacks.json records it (and where new jobs went).
    placement: Any = None

    def template(self, env: str, stack: str) -> dict[str, Any]:
        """A stack's template by environment and construct id ("Network", "Jobs-pricing")."""
        stage = self.stages[env]
        target = stage.node.find_child(stack)
        artifact = target.artifact_id
        return json.loads(
            (self.outdir / f"assembly-{env}" / f"{artifact}.template.json").read_text()
        )

    def templates(self) -> Iterator[Path]:
        yield from sorted(self.outdir.glob("assembly-*/*.template.json"))

    def manifest(self, env: str) -> dict[str, Any]:
        return json.loads((self.outdir / "manifests" / f"{env}.json").read_text())


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The real app: every environment in config/, every job group in jobs/."""
    from config import ENVIRONMENTS
    from constructs_lib.job_placement import StackPlacement
    from jobs import JOB_GROUPS, PLACEMENT_FILE
    from stacks.platform_app import build_app, synth

    outdir = tmp_path_factory.mktemp("cdk.out")
    placement = StackPlacement.load(PLACEMENT_FILE)  # read, never written by a test
    cwd = os.getcwd()
    os.chdir(REPO)  # job image folders are relative to the repository root
    try:
        app, stages = build_app(ENVIRONMENTS, JOB_GROUPS, placement=placement, outdir=str(outdir))
        synth(app, stages)
    finally:
        os.chdir(cwd)
    return Synthesized(outdir=outdir, stages=stages, placement=placement)


@dataclass
class PlatformBench:
    """A network + cluster to declare test jobs on, without the example job groups."""

    app: Any
    platform: Any
    _count: int = 0

    def jobs_stack(self) -> Any:
        from stacks.jobs_stack import JobsStack

        self._count += 1
        return JobsStack(
            self.app, f"TestJobs{self._count}", platform=self.platform, group=f"t{self._count}"
        )


def make_bench(config: Any = None) -> PlatformBench:
    import aws_cdk as cdk

    from config import ENVIRONMENTS
    from stacks.compute_stack import ComputeStack
    from stacks.network_stack import NetworkStack
    from stacks.platform_stage import job_platform

    config = config or ENVIRONMENTS["dev"]
    app = cdk.App()
    network = NetworkStack(app, "Network", config=config)
    compute = ComputeStack(app, "Compute", config=config, vpc=network.network.vpc)
    return PlatformBench(app=app, platform=job_platform(config, network, compute))


@pytest.fixture(scope="module")
def bench() -> PlatformBench:
    return make_bench()


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    # Job image folders are relative to the repository root, as in `cdk synth`.
    monkeypatch.chdir(REPO)


#: Installed, ignored by git: linked into a copy so that make finds them up to date.
INSTALLED = [".venv", "node_modules", ".tools", "runtime/mwaa-3.3.1/.venv", "tools/checkov/.venv"]


def copy_repository(destination: Path) -> Path:
    """The working tree as git sees it (tracked and new files, mtimes kept, so make sees
    nothing to rebuild), with the installed venvs and node_modules linked in."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    for name in INSTALLED:
        os.symlink(REPO / name, destination / name)
    return destination


def run_in(repo: Path, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A command in a repository copy, as a user's shell would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    return subprocess.run(
        list(command), cwd=repo, env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
