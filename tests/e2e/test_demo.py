"""`make demo` with a model that fails: it says which job and chunk, shows the container's
message and lines, and exits 1, without waiting out the job's retries."""

from __future__ import annotations

import time

import pytest

from simulator import demo
from tests.conftest import Synthesized


def test_a_failing_job_is_reported_at_once_and_named(
    synthesized: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code = demo.main(
        [
            "--cdk-out", str(synthesized.outdir),
            "--job", "dynamic-pricing",
            # The model refuses a partition id with surrounding whitespace.
            "--partitions", "market-001,market-bad ,market-003",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1
    assert "retries capped at 0 for the demo" in out
    assert "== dynamic-pricing: run demo-1" in out
    assert "first failure, chunk 1, try 1, as its task log shows it:" in out
    assert "chunk failed: exit code 1" in out
    assert "PartitionError: partition id has surrounding whitespace" in out
    assert "demo: job 'dynamic-pricing' failed (chunk 1, try 1): job 'dynamic-pricing'" in err
    assert "Traceback" not in out + err
    assert time.monotonic() - started < 240  # the job's own 3 retries would take minutes


def test_an_unknown_job_is_refused_naming_the_jobs(
    synthesized: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo.main(["--cdk-out", str(synthesized.outdir), "--job", "churn"])
    assert code == 2
    assert "no job ['churn'] in environment 'dev'; jobs: ['location-forecast'" in (
        capsys.readouterr().err
    )
