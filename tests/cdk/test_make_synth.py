"""`make synth` as a user runs it: the real Makefile and CDK CLI, in a copy of the
repository (the installed venvs and node_modules are linked, not rebuilt).

A finding, a bad job and a stray module in jobs/ each refuse the synth with one line per
problem and no traceback, and leave the last good cdk.out in place.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import copy_repository, run_in

GOOD = """from constructs_lib.job import JobImage, MlJob, Partitions
from stacks.jobs_stack import JobsStack


def declare(stack: JobsStack) -> None:
    MlJob(
        stack,
        "ChurnScore",
        platform=stack.platform,
        name="churn-score",
        team="growth",
        image=JobImage.from_model("dynamic_pricing"),
        partitions=Partitions.static(["segment-1", "segment-2"]),
    )
"""
WIDE_GRANT = GOOD.replace("    MlJob(", "    job = MlJob(") + (
    """    from aws_cdk import aws_s3 as s3

    s3.Bucket.from_bucket_name(stack, "Features", "acme-features").grant_read(job)
"""
)
BAD_SIZE = GOOD.replace('team="growth",', 'team="growth",\n        cpu=300,')


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repository(tmp_path_factory.mktemp("repo"))


def make_synth(repo: Path) -> subprocess.CompletedProcess[str]:
    return run_in(repo, "make", "--no-print-directory", "synth")


def test_a_good_synth_prints_the_summary_and_no_noise(repo: Path) -> None:
    (repo / "jobs" / "growth.py").write_text(GOOD)
    result = make_synth(repo)
    assert result.returncode == 0, result.stderr
    assert "churn-score" in result.stdout and "== environment dev" in result.stdout
    output = result.stdout + result.stderr
    for noise in ("feature flags", "Traceback", "end-of-life", "Successfully synthesized"):
        assert noise not in output, noise
    assert (repo / "cdk.out" / "manifests" / "dev.json").is_file()


def refused(repo: Path, module: str, text: str) -> str:
    """Write a job group, run make synth; it must fail and leave cdk.out as it was."""
    before = (repo / "cdk.out" / "manifests" / "dev.json").read_text()
    (repo / "jobs" / module).write_text(text)
    try:
        result = make_synth(repo)
    finally:
        (repo / "jobs" / module).unlink()
        (repo / "jobs" / "growth.py").write_text(GOOD)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "synth refused; the last good synth is still in cdk.out/" in result.stderr
    assert (repo / "cdk.out" / "manifests" / "dev.json").read_text() == before
    return result.stderr


def test_an_unacknowledged_finding_refuses_the_synth(repo: Path) -> None:
    err = refused(repo, "growth.py", WIDE_GRANT)
    assert "cdk-nag refused the synth" in err
    assert "AwsSolutions-IAM5[Action::s3:GetObject*] on dev/Jobs-growth/ChurnScore/TaskRole" in err
    assert 'to accept it: acknowledge(<construct>, "IAM5", action="s3:GetObject*"' in err
    assert (repo / "cdk.out.next" / "validation-report.json").is_file()


def test_a_bad_job_is_one_line_per_problem(repo: Path) -> None:
    err = refused(repo, "growth.py", BAD_SIZE)
    assert "error: job 'churn-score' in environment 'dev' is invalid:" in err
    assert "  - field 'cpu': 300 is not a Fargate CPU size; allowed: [256, 512" in err


def test_a_module_that_is_not_a_job_group_is_refused_by_name(repo: Path) -> None:
    err = refused(repo, "helpers.py", "LOCATIONS = ['a']\n")
    assert "error: jobs/helpers.py is not a job group: define `def declare(" in err
