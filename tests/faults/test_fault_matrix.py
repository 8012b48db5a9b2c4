"""The fault matrix (`make faults`) as tests: each case through a real Airflow 3 on the
MWAA parity runtime (two triggerers, PostgreSQL), the real operator and trigger, and the
simulated Fargate. The platform runs once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.fargate import Scripted
from simulator.faults import Matrix, Row, cases
from tests.conftest import Synthesized

# The names only: the matrix itself runs the real out-of-memory container.
CASES = [case.name for case in cases(out_of_memory=Scripted())]


@pytest.fixture(scope="module")
def rows(
    synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Row]]:
    matrix = Matrix(synthesized.outdir, home=tmp_path_factory.mktemp("faults"))
    yield {row.case.name: row for row in matrix.run(log=lambda line: None)}


@pytest.mark.parametrize("name", CASES)
def test_each_fault_ends_as_expected_with_nothing_left_running(
    rows: dict[str, Row], name: str
) -> None:
    row = rows[name]
    assert row.problems == [], f"{name}: {row.problems}\n{row.message}"
    assert row.still_running == 0


def test_user_actions_and_timeouts_stop_the_fargate_task(rows: dict[str, Row]) -> None:
    for name in ("timeout", "cleared", "marked-failed"):
        assert rows[name].last_stop == "UserInitiated", name


def test_lost_tries_adopt_instead_of_launching_again(rows: dict[str, Row]) -> None:
    for name in ("triggerer-restart", "lost-after-runtask", "retry-after-success"):
        assert rows[name].started == 1 and rows[name].state == "success", name
    assert rows["retry-after-success"].tries == 2


def test_out_of_memory_is_not_retried_and_names_the_size(rows: dict[str, Row]) -> None:
    row = rows["out-of-memory"]
    assert row.tries == 1 and row.case.retries == 2
    assert "the task has 512 MiB (256 CPU units)" in row.message


def test_spot_without_capacity_ran_on_demand(rows: dict[str, Row]) -> None:
    assert rows["spot-fallback"].capacity == "FARGATE"
    assert rows["spot-interrupted"].last_stop == "SpotInterruption"


def test_a_trigger_that_moved_leaves_its_task_to_the_new_triggerer(rows: dict[str, Row]) -> None:
    row = rows["redistributed"]
    assert len(set(row.owners)) == 2, row.owners  # it did move
    assert (row.state, row.started, row.tries) == ("success", 1, 1)
    assert row.last_stop == "EssentialContainerExited"  # ran to its end, not stopped
