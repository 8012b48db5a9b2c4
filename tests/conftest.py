"""Whole-app fixtures, built once per session: synthesizing is the slow part."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Synthesized:
    outdir: Path
    stages: dict[str, Any]

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
    from jobs import JOB_GROUPS
    from stacks.platform_app import build_app, synth

    outdir = tmp_path_factory.mktemp("cdk.out")
    cwd = os.getcwd()
    os.chdir(REPO)  # job image folders are relative to the repository root
    try:
        app, stages = build_app(ENVIRONMENTS, JOB_GROUPS, outdir=str(outdir))
        synth(app, stages)
    finally:
        os.chdir(cwd)
    return Synthesized(outdir=outdir, stages=stages)


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
