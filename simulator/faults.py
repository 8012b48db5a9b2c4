"""`make faults`: every failure the platform must survive, through a real Airflow.

Each case is one job (one DAG, one chunk) cloned from the dev manifest's pricing job,
with its own task definition family, so the simulator can inject that case's fault
alone. All cases run in one local platform: the quiet ones together, then the ones
that kill the triggerers, then the one that freezes a triggerer. For each case the matrix
records the final Airflow state, the tries, how many Fargate tasks were started, how many
still run at the end (must be 0), and the message the user sees.

Airflow runs as on MWAA with two schedulers: two triggerers (``LocalAirflow``), so the
phases that disturb triggerers (1: both killed; 2: one frozen until its triggers move)
run the way a production environment would live through them.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.airflow_local import LocalAirflow
from simulator.bootstrap import bootstrap, client, model_behaviours
from simulator.fargate import (
    ContainerBehaviour,
    FargateSimulator,
    Faults,
    ModelContainer,
    Scripted,
    SimTask,
)
from simulator.platform import local_airflow
from simulator.server import LocalAws

REGION = "us-east-1"
RUN_ID = "faults-1"
BASE_JOB = "dynamic-pricing"
POOL = "faults"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp-faults:2026-11-24"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mlp/faults/db-AbCdEf"
START_LATENCY = 6.0  # see LocalPlatform: Airflow 3.3 needs >= ~6 s here


@dataclass(frozen=True)
class Case:
    name: str
    """The job and DAG id."""
    what: str
    """The fault, as the matrix prints it."""
    container: ContainerBehaviour
    faults: Faults = field(default_factory=Faults)
    capacity: str = "on-demand"
    retries: int = 1
    timeout_seconds: int = 600
    #: What a person or the machine does mid-run: see ``Matrix._act``.
    action: str = ""
    #: 0: runs with the other quiet cases; 1: runs while the triggerers are killed;
    #: 2: runs while its triggerer is frozen until its trigger moves to the other one.
    phase: int = 0
    expect_state: str = "success"
    expect_started: int = 1
    expect_message: str = ""
    expect_tries: int = 1
    #: The container's lines must be in the Airflow task log.
    expect_logs: bool = False
    #: How the first Fargate task must have ended (empty: not checked).
    expect_stop: str = ""
    #: Partitions, all in one chunk.
    partitions: int = 1


#: A chunk of this many locations outgrows OOM_MIB after about 300 (a real OOM kill).
OOM_PARTITIONS = 400
OOM_MIB = 10


def cases(out_of_memory: ContainerBehaviour) -> list[Case]:
    """:param out_of_memory: the location forecast's real image with too little memory."""
    ok = Scripted(seconds=8)
    long = Scripted(seconds=45)
    return [
        Case("capacity", "capacity unavailable at launch (2 times)", ok,
             Faults(capacity_failures=2)),
        Case("spot-fallback", "no spot capacity, spot-with-fallback", ok,
             Faults(spot_capacity_failures=1), capacity="spot-with-fallback"),
        Case("runtask-throttled", "RunTask throttled (3 times)", ok,
             Faults(throttle=Counter({"RunTask": 3}))),
        Case("describe-throttled", "DescribeTasks throttled (3 times)", ok,
             Faults(throttle=Counter({"DescribeTasks": 3}))),
        # A success waits 2 s at most for its log lines: one throttled read still fits.
        Case("logs-throttled", "FilterLogEvents throttled", ok,
             Faults(throttle=Counter({"FilterLogEvents": 1})), expect_logs=True),
        Case("spot-interrupted", "spot interruption, container exits 0", ok,
             Faults(spot_interruptions=1, interrupt_after=3), capacity="spot",
             expect_started=2, expect_tries=2, expect_message="Spot capacity was reclaimed"),
        Case("out-of-memory", f"real OOM kill: {OOM_PARTITIONS} locations in {OOM_MIB} MiB",
             out_of_memory, retries=2, partitions=OOM_PARTITIONS, expect_state="failed",
             expect_message="Raise memory_mib"),
        Case("cannot-pull", "CannotPullContainerError",
             Scripted(fail_to_start="CannotPullContainerError: pull image manifest has been "
                      f"retried 5 time(s): failed to resolve ref {IMAGE}: not found"),
             retries=0, expect_state="failed", expect_message=f"could not pull the image {IMAGE}"),
        Case("resource-init", "ResourceInitializationError (secret)",
             Scripted(fail_to_start="ResourceInitializationError: unable to pull secrets or "
                      "registry auth: execution resource retrieval failed: unable to retrieve "
                      f"secret from asm: failed to fetch secret {SECRET} from secrets manager: "
                      "AccessDeniedException"),
             retries=0, expect_state="failed", expect_message=f"secret: {SECRET}"),
        Case("nonzero-exit", "container exits 3",
             Scripted(seconds=4, exit_code=3, lines=(
                 "fitting elasticity for market p-1", "Traceback (most recent call last):",
                 "ValueError: price elasticity is undefined for market p-1")),
             expect_state="failed", expect_started=2, expect_tries=2,
             expect_message="ValueError: price elasticity is undefined"),
        Case("timeout", "execution timeout while deferred", Scripted(seconds=600),
             retries=0, timeout_seconds=60, expect_state="failed",
             expect_message="exceeded its execution timeout of 60 s"),
        Case("cleared", "deferred task cleared by a user", long, action="clear",
             expect_started=2, expect_tries=2),
        Case("marked-failed", "deferred task marked failed by a user", Scripted(seconds=600),
             action="mark-failed", expect_state="failed"),
        Case("triggerer-restart", "triggerers killed mid-run, restarted", long,
             action="kill-triggerer", phase=1),
        Case("lost-after-runtask", "try lost after RunTask (task still running)", long,
             action="lose-running", phase=1, expect_tries=2),
        Case("retry-after-success", "try lost after the task succeeded", Scripted(seconds=10),
             action="lose-after-success", phase=1, expect_tries=2),
        # Airflow 3.3 calls on_kill on the frozen triggerer once it resumes (#73454).
        Case("redistributed", "triggerer frozen; its trigger moves",
             Scripted(seconds=100), action="freeze-triggerer", phase=2,
             expect_stop="EssentialContainerExited"),
    ]  # fmt: skip


@dataclass
class Row:
    case: Case
    state: str = "?"
    tries: int = 0
    started: int = 0
    still_running: int = 0
    last_stop: str = ""
    capacity: str = ""
    logs_copied: bool = False
    message: str = ""
    #: Triggerer jobs that ran the trigger, in order (phase 2 checks that it moved).
    owners: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def out_of_memory_container(cdk_out: Path) -> ContainerBehaviour:
    """The dev location forecast's image, built from its asset, with a 10 MiB limit."""
    forecast = model_behaviours(
        {"jobs": [{"task_definition_family": "mlp-dev-location-forecast"}]}, cdk_out, "dev"
    )["mlp-dev-location-forecast"]
    assert isinstance(forecast, ModelContainer)
    return dataclasses.replace(forecast, cpu_units=256, memory_mib=OOM_MIB)


def family(case: Case) -> str:
    return f"mlp-faults-{case.name}"


class Matrix:
    """Runs the cases against one local platform; ``rows`` holds the results."""

    def __init__(self, cdk_out: Path, *, home: Path | None = None) -> None:
        self.cdk_out = cdk_out
        self.home = home or Path(tempfile.mkdtemp(prefix="ml-platform-faults-"))
        self.cases = cases(out_of_memory_container(cdk_out))
        by_family = {family(c): c.container for c in self.cases}
        self.simulator = FargateSimulator(
            behaviour=by_family.__getitem__, start_latency=START_LATENCY, region=REGION
        )
        self.aws = LocalAws(self.simulator)
        self.airflow: LocalAirflow | None = None
        self.rows: list[Row] = []
        self._owners: dict[str, list[int]] = {}

    # -- set-up ---------------------------------------------------------------------------

    def _manifest(self) -> dict[str, Any]:
        manifest = bootstrap(self.cdk_out, "dev", self.aws.endpoint_url, REGION)
        base = next(j for j in manifest["jobs"] if j["name"] == BASE_JOB)
        ecs = client("ecs", self.aws.endpoint_url, REGION)
        logs = client("logs", self.aws.endpoint_url, REGION)
        definition = ecs.describe_task_definition(taskDefinition=base["task_definition_family"])
        definition = definition["taskDefinition"]
        jobs = []
        for case in self.cases:
            group = f"/mlp-dev/faults/{case.name}"
            logs.create_log_group(logGroupName=group)
            container = dict(definition["containerDefinitions"][0])
            container["logConfiguration"] = {
                "logDriver": "awslogs",
                "options": {"awslogs-group": group, "awslogs-stream-prefix": "job",
                            "awslogs-region": REGION},
            }  # fmt: skip
            ecs.register_task_definition(
                family=family(case),
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu=definition["cpu"],
                memory=definition["memory"],
                containerDefinitions=[container],
            )
            self.simulator.inject(family(case), case.faults)
            jobs.append(
                {
                    **base,
                    "name": case.name,
                    "description": case.what,
                    "image": IMAGE,
                    "task_definition_family": family(case),
                    "logs": {"group": group, "stream_prefix": "job"},
                    "capacity": case.capacity,
                    "schedule": None,
                    "partitions": {
                        "kind": "static",
                        "values": [f"p-{n}" for n in range(1, case.partitions + 1)],
                    },
                    "chunk_size": case.partitions,
                    "pool": POOL,
                    "retry": {
                        "retries": case.retries,
                        "delay_seconds": 2,
                        "exponential_backoff": False,
                        "max_delay_seconds": 2,
                    },
                    "execution_timeout_seconds": case.timeout_seconds,
                }
            )
        manifest["jobs"] = jobs
        manifest["pools"].append(
            {
                "name": POOL,
                "slots": len(jobs),
                "description": "fault matrix",
                "include_deferred": True,
            }
        )
        return manifest

    def run(self, log: Callable[[str], None] = print) -> list[Row]:
        self.aws.start()
        try:
            self.airflow = local_airflow(
                self.cdk_out, "dev", self.aws, self.home, self._manifest(), triggerers=2
            )
            self.airflow.start()
            self.airflow.wait_for_dags([c.name for c in self.cases])
            for phase in (0, 1, 2):
                batch = [c for c in self.cases if c.phase == phase]
                log(f"phase {phase}: {', '.join(c.name for c in batch)}")
                self._run_phase(batch)
            time.sleep(3)  # a stop sent in the last instant still lands
            self.rows = [self._row(case) for case in self.cases]
            return self.rows
        finally:
            if self.airflow is not None:
                self.airflow.stop()
            self.aws.stop()

    # -- running --------------------------------------------------------------------------

    def _tasks(self, case: Case) -> list[SimTask]:
        self.simulator.advance()
        return sorted(
            (t for t in self.simulator.tasks.values() if family(case) in t.task_definition_arn),
            key=lambda t: t.created_at,
        )

    def _running(self, case: Case) -> bool:
        tasks = self._tasks(case)
        return bool(tasks) and tasks[-1].last_status == "RUNNING"

    def _run_phase(self, batch: list[Case]) -> None:
        assert self.airflow is not None
        if batch[0].phase == 2:
            self._redistribute(batch)  # triggers the cases itself
        else:
            for case in batch:
                self.airflow.trigger(case.name, RUN_ID)
        pending = {c.name: c for c in batch if c.action}
        if batch[0].phase == 1:
            self._disrupt(batch)
        if batch[0].phase > 0:
            pending.clear()
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            for name, case in list(pending.items()):
                if self._running(case):
                    self._act(case)
                    del pending[name]
            time.sleep(1)
        for case in batch:
            self.airflow.wait_for_run(
                case.name, RUN_ID, timeout=max(deadline - time.monotonic(), 60)
            )

    def _act(self, case: Case) -> None:
        assert self.airflow is not None
        if case.action == "clear":  # what the UI's Clear button sends
            self.airflow.api(
                "POST",
                f"/dags/{case.name}/clearTaskInstances",
                {"dry_run": False, "dag_run_id": RUN_ID, "task_ids": ["run"],
                 "only_failed": False, "reset_dag_runs": True},
            )  # fmt: skip
        elif case.action == "mark-failed":
            self.airflow.api(
                "PATCH",
                f"/dags/{case.name}/dagRuns/{RUN_ID}/taskInstances/run/0",
                {"new_state": "failed"},
            )

    def _wait_running(self, batch: list[Case], deadline: float) -> None:
        while not all(self._running(c) for c in batch):
            if time.monotonic() > deadline:
                raise TimeoutError(f"tasks of {[c.name for c in batch]} did not start")
            time.sleep(0.5)

    def _triggerers(self) -> list[str]:
        assert self.airflow is not None
        return [c for c in self.airflow.components if c.startswith("triggerer")]

    def _disrupt(self, batch: list[Case]) -> None:
        """Kill every triggerer while every case runs; end the lost tries; bring them back."""
        assert self.airflow is not None
        deadline = time.monotonic() + 300
        self._wait_running(batch, deadline)
        for triggerer in self._triggerers():
            self.airflow.kill(triggerer)
        for case in batch:
            if case.action == "lose-after-success":
                while self._tasks(case)[-1].last_status != "STOPPED":
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{case.name}: the task did not finish")
                    time.sleep(0.5)
            if case.action.startswith("lose"):
                self.airflow.fail_try_as_lost(case.name, RUN_ID, "run", 0)
        for triggerer in self._triggerers():
            self.airflow.revive(triggerer)

    def _redistribute(self, batch: list[Case]) -> None:
        """Freeze the triggerer that runs each case's trigger (SIGSTOP) until Airflow hands
        the trigger to the other one, then let it run again (SIGCONT)."""
        airflow = self.airflow
        assert airflow is not None
        first, second = self._triggerers()[:2]
        deadline = time.monotonic() + 300
        # Only the first triggerer runs while the cases defer: it owns their triggers.
        airflow.kill(second, signal.SIGTERM)
        for case in batch:
            airflow.trigger(case.name, RUN_ID)
        self._wait_running(batch, deadline)
        owners = {c.name: self._owners.setdefault(c.name, []) for c in batch}
        for case in batch:
            owners[case.name].append(self._owner(case, deadline))
        airflow.revive(second)
        while len(airflow.live_triggerer_jobs()) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("the second triggerer did not start")
            time.sleep(0.5)
        airflow.send_signal(first, signal.SIGSTOP)
        try:
            for case in batch:
                while (owner := self._owner(case, deadline)) == owners[case.name][0]:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{case.name}: the trigger did not move")
                    time.sleep(0.5)
                owners[case.name].append(owner)
        finally:
            airflow.send_signal(first, signal.SIGCONT)

    def _owner(self, case: Case, deadline: float) -> int:
        assert self.airflow is not None
        while (owner := self.airflow.trigger_owner(case.name, RUN_ID, "run", 0)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{case.name}: no triggerer took the trigger")
            time.sleep(0.5)
        return owner

    # -- results --------------------------------------------------------------------------

    def _row(self, case: Case) -> Row:
        assert self.airflow is not None
        row = Row(case)
        instances = {
            ti["task_id"]: ti
            for ti in self.airflow.task_instances(case.name, RUN_ID)
            if ti["map_index"] in (-1, 0)
        }
        run = instances.get("run", {})
        row.state = str(run.get("state"))
        row.tries = int(run.get("try_number") or 0)
        tasks = self._tasks(case)
        row.started = len(tasks)
        row.still_running = sum(t.last_status != "STOPPED" for t in tasks)
        row.last_stop = tasks[0].stop_code if tasks else ""
        row.capacity = tasks[-1].capacity_provider if tasks else ""
        row.message = self.airflow.failure_message(case.name, RUN_ID, "run", 0, row.tries)
        final_log = self.airflow.task_log(case.name, RUN_ID, "run", 0, attempt=max(row.tries, 1))
        row.logs_copied = "[model] done exit_code=" in final_log
        expected = {
            "state": (case.expect_state, row.state),
            "tries": (case.expect_tries, row.tries),
            "started": (case.expect_started, row.started),
            "still running": (0, row.still_running),
        }
        for what, (want, got) in expected.items():
            if want != got:
                row.problems.append(f"{what}: expected {want}, got {got}")
        if case.expect_logs and not row.logs_copied:
            row.problems.append("the container's lines are not in the task log")
        if case.expect_message and case.expect_message not in row.message:
            row.problems.append(f"message lacks {case.expect_message!r}")
        if case.expect_stop and row.last_stop != case.expect_stop:
            row.problems.append(f"first task ended {row.last_stop!r}, not {case.expect_stop!r}")
        row.owners = self._owners.get(case.name, [])
        if case.phase == 2 and len(set(row.owners)) < 2:
            row.problems.append(f"the trigger never moved between triggerers: {row.owners}")
        # A fault that was never hit proves nothing.
        faults = case.faults
        unused = [api for api, left in faults.throttle.items() if left] + [
            name
            for name, left in (("capacity_failures", faults.capacity_failures),
                               ("spot_capacity_failures", faults.spot_capacity_failures),
                               ("spot_interruptions", faults.spot_interruptions))
            if left
        ]  # fmt: skip
        if unused:
            row.problems.append(f"injected faults never hit: {unused}")
        return row


def gist(message: str) -> str:
    """One line of the message: the advice, else the container's error line, else the head."""
    lines = [line for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and lines[1] != "last log lines:":
        return lines[1]
    errors = [line for line in lines[2:] if "Error" in line or "Exception" in line]
    return (errors or lines or ["-"])[-1]


def table(rows: list[Row]) -> str:
    head = (
        f"{'case':<20} {'fault':<44} {'state':<7} {'tries':>5} {'started':>7} "
        f"{'running':>7}  {'first task ended':<24} {'capacity':<12} message"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        mark = "" if row.ok else "   <-- " + "; ".join(row.problems)
        lines.append(
            f"{row.case.name:<20} {row.case.what:<44} {row.state:<7} {row.tries:>5} "
            f"{row.started:>7} {row.still_running:>7}  {row.last_stop:<24} {row.capacity:<12} "
            f"{gist(row.message)}{mark}"
        )
    orphans = sum(r.still_running for r in rows)
    extra = sum(max(r.started - r.case.expect_started, 0) for r in rows)
    lines.append(
        f"{len(rows)} cases, {sum(r.ok for r in rows)} as expected; "
        f"orphaned Fargate tasks: {orphans}; launches beyond those expected: {extra}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    args = parser.parse_args(argv)
    if not (args.cdk_out / "manifests" / "dev.json").exists():
        print("run 'make synth' first", file=sys.stderr)
        return 2
    matrix = Matrix(args.cdk_out)
    rows = matrix.run()
    print(table(rows))
    print("\nFailure messages as the Airflow task log shows them:")
    for row in rows:
        if row.message:
            print(f"\n[{row.case.name}]\n  " + "\n  ".join(row.message.splitlines()[:8]))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
