"""The triggerer's fleet against the simulator: batching, pacing, backoff, idempotent
launches, restarts, spot fallback and bounded log reads, over real HTTP and aiobotocore."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from ml_platform import fleet as fleet_module
from ml_platform.contract import EcsBudget
from ml_platform.fargate import FargateJobTrigger, client_token, started_by
from ml_platform.fleet import Fleet, LaunchFailed
from simulator.bootstrap import client
from simulator.fargate import Faults
from tests.fleet.conftest import CLUSTER, CONN, FAMILY, GROUP, REGION, Bench


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def launch_all(fleet: Fleet, bench: Bench, count: int, **kwargs: Any) -> list[dict]:
    return await asyncio.gather(
        *(
            fleet.launch(
                bench.request(f"p{i}", **kwargs),
                aws_conn_id=CONN,
                region=REGION,
                spot_fallback=False,
            )
            for i in range(count)
        )
    )


def test_status_checks_are_batched_100_arns_a_call(bench: Bench) -> None:
    bench.behaviour.seconds = 3.0

    async def scenario() -> list[dict[str, Any]]:
        fleet = Fleet.get(EcsBudget(poll_interval=1.0, read_rate=50, read_burst=50))
        tasks = await launch_all(fleet, bench, 250)
        stopped = await asyncio.gather(
            *(
                fleet.wait_stopped(t["taskArn"], cluster=CLUSTER, aws_conn_id=CONN, region=REGION)
                for t in tasks
            )
        )
        await fleet.close()
        return stopped

    stopped = run(scenario())
    assert len(stopped) == 250 and all(t["lastStatus"] == "STOPPED" for t in stopped)
    sizes = bench.simulator.metrics.describe_sizes
    assert max(sizes) == 100 and all(size <= 100 for size in sizes)
    # 250 tasks watched for ~4 s at one sweep a second: 3 calls a sweep, not 250.
    assert len(sizes) <= 3 * 8


def test_launches_are_paced_inside_the_launch_limit(bench: Bench) -> None:
    async def scenario() -> float:
        fleet = Fleet.get(EcsBudget(launch_rate=20, launch_burst=100))
        started = time.monotonic()
        await launch_all(fleet, bench, 160)
        await fleet.close()
        return time.monotonic() - started

    elapsed = run(scenario())
    # At exactly ECS's rate the server's bucket drains a little later than ours, so a few
    # launches are throttled (and retried); unpaced, 60 of these 160 would be refused.
    throttled = bench.simulator.metrics.throttled
    assert throttled["RunTask"] + throttled["launch"] <= 20
    assert len(bench.simulator.tasks) == 160
    assert elapsed >= (160 - 100) / 20 * 0.9  # the bucket, not luck, kept it under


def test_throttled_reads_back_off_and_every_task_is_still_seen(bench: Bench) -> None:
    bench.simulator.buckets["read"].rate = 2
    bench.simulator.buckets["read"].burst = bench.simulator.buckets["read"].tokens = 2

    async def scenario() -> list[dict[str, Any]]:
        # A fleet that over-asks: the simulator throttles it; it must back off, not fail.
        fleet = Fleet.get(EcsBudget(poll_interval=0.2, read_rate=100, read_burst=100))
        tasks = await launch_all(fleet, bench, 30)
        stopped = await asyncio.wait_for(
            asyncio.gather(
                *(
                    fleet.wait_stopped(
                        t["taskArn"], cluster=CLUSTER, aws_conn_id=CONN, region=REGION
                    )
                    for t in tasks
                )
            ),
            timeout=60,
        )
        await fleet.close()
        return stopped

    stopped = run(scenario())
    assert len(stopped) == 30 and all(t["lastStatus"] == "STOPPED" for t in stopped)
    assert bench.simulator.metrics.throttled["DescribeTasks"] > 0


def test_throttled_launches_are_retried_not_failed(bench: Bench) -> None:
    bench.simulator.buckets["RunTask"].rate = 5
    bench.simulator.buckets["RunTask"].burst = bench.simulator.buckets["RunTask"].tokens = 5

    async def scenario() -> list[dict[str, Any]]:
        fleet = Fleet.get(EcsBudget(launch_rate=100, launch_burst=100))
        tasks = await launch_all(fleet, bench, 20)
        await fleet.close()
        return tasks

    tasks = run(scenario())
    assert len({t["taskArn"] for t in tasks}) == 20
    assert bench.simulator.metrics.throttled["RunTask"] > 0


def test_a_repeated_launch_starts_no_second_task(bench: Bench) -> None:
    async def scenario() -> tuple[dict, dict]:
        fleet = Fleet.get(EcsBudget())
        first = await fleet.launch(
            bench.request("same"), aws_conn_id=CONN, region=REGION, spot_fallback=False
        )
        again = await fleet.launch(
            bench.request("same"), aws_conn_id=CONN, region=REGION, spot_fallback=False
        )
        await fleet.close()
        return first, again

    first, again = run(scenario())
    assert first["taskArn"] == again["taskArn"]
    assert len(bench.simulator.tasks) == 1


def test_spot_without_capacity_falls_back_to_on_demand(bench: Bench) -> None:
    bench.simulator.inject(FAMILY, Faults(spot_capacity_failures=1))

    async def scenario() -> dict[str, Any]:
        fleet = Fleet.get(EcsBudget())
        task = await fleet.launch(
            bench.request("spotty", spot=True), aws_conn_id=CONN, region=REGION, spot_fallback=True
        )
        await fleet.close()
        return task

    assert run(scenario())["capacityProviderName"] == "FARGATE"


def test_capacity_unavailable_is_retried_on_spot_when_no_fallback(bench: Bench) -> None:
    faults = Faults(spot_capacity_failures=2)
    bench.simulator.inject(FAMILY, faults)

    async def scenario() -> dict[str, Any]:
        fleet = Fleet.get(EcsBudget())
        task = await fleet.launch(
            bench.request("patient", spot=True),
            aws_conn_id=CONN,
            region=REGION,
            spot_fallback=False,
        )
        await fleet.close()
        return task

    assert run(scenario())["capacityProviderName"] == "FARGATE_SPOT"
    assert faults.spot_capacity_failures == 0


def test_a_refused_launch_fails_with_the_reason(bench: Bench) -> None:
    async def scenario() -> None:
        fleet = Fleet.get(EcsBudget())
        request = bench.request("nowhere") | {"taskDefinition": "no-such-family"}
        try:
            await fleet.launch(request, aws_conn_id=CONN, region=REGION, spot_fallback=False)
        finally:
            await fleet.close()

    with pytest.raises(LaunchFailed, match="Unable to describe task definition"):
        run(scenario())


FAST_POLL = EcsBudget(poll_interval=0.5)


def trigger(
    bench: Bench,
    name: str,
    try_number: int = 1,
    deadline: str | None = None,
    budget: EcsBudget = FAST_POLL,
) -> FargateJobTrigger:
    return FargateJobTrigger(
        request=bench.request(name, try_number=try_number),
        region=REGION,
        aws_conn_id=CONN,
        fleet=budget.to_dict(),
        try_number=try_number,
        log_group=GROUP,
        log_stream_prefix="job",
        spot_fallback=False,
        deadline=deadline,
    )


async def first_event(job_trigger: FargateJobTrigger, *, close: bool = True) -> dict[str, Any]:
    async for event in job_trigger.run():
        if close:  # the process's shared clients; a real triggerer keeps them open
            await Fleet.get(EcsBudget()).close()
        return dict(event.payload)
    raise AssertionError("no event")


def test_a_trigger_survives_a_triggerer_restart(bench: Bench) -> None:
    bench.behaviour.seconds = 2.0
    classpath, kwargs = trigger(bench, "restart").serialize()
    assert classpath == "ml_platform.fargate.FargateJobTrigger"

    async def die_midway() -> None:
        task = asyncio.ensure_future(first_event(FargateJobTrigger(**kwargs)))
        await asyncio.sleep(1.0)  # launched and waiting
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(die_midway())
    assert len(bench.simulator.tasks) == 1
    event = run(first_event(FargateJobTrigger(**json.loads(json.dumps(kwargs)))))
    assert event["status"] == "stopped" and event["exit_code"] == 0
    assert len(bench.simulator.tasks) == 1  # the restarted trigger found its task


def test_a_retry_after_success_adopts_instead_of_launching(bench: Bench) -> None:
    first = run(first_event(trigger(bench, "done-once")))
    assert first["exit_code"] == 0
    retry = run(first_event(trigger(bench, "done-once", try_number=2)))
    assert retry["status"] == "stopped" and retry["task_arn"] == first["task_arn"]
    assert len(bench.simulator.tasks) == 1


def test_logs_are_read_once_and_bounded(bench: Bench) -> None:
    event = run(first_event(trigger(bench, "chatty")))
    assert event["log_lines"] == ['start partitions=["chatty"]', "done exit_code=0"]
    assert bench.simulator.metrics.calls["FilterLogEvents"] == 1
    assert bench.simulator.metrics.calls["GetLogEvents"] == 0

    async def starved() -> list[str] | None:
        fleet = Fleet.get(EcsBudget(log_rate=0.01, log_burst=1))
        fleet.log_reads.tokens = 0
        lines = await fleet.tail(
            GROUP, event["log_stream"], aws_conn_id=CONN, region=REGION, wait=0.2
        )
        await fleet.close()
        return lines

    assert run(starved()) is None  # a success does not wait past its budget


def test_a_trigger_running_twice_starts_one_task(bench: Bench) -> None:
    _, kwargs = trigger(bench, "twice").serialize()

    async def both() -> list[dict[str, Any]]:
        events = await asyncio.gather(
            first_event(FargateJobTrigger(**kwargs), close=False),
            first_event(FargateJobTrigger(**kwargs), close=False),
        )
        await Fleet.get(EcsBudget()).close()
        return list(events)

    one, two = run(both())
    assert one["task_arn"] == two["task_arn"] and one["exit_code"] == two["exit_code"] == 0
    assert len(bench.simulator.tasks) == 1


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def running(bench: Bench) -> list[str]:
    bench.simulator.advance()
    return [t.arn for t in bench.simulator.tasks.values() if t.last_status != "STOPPED"]


def test_a_task_past_its_deadline_is_stopped_and_reported(bench: Bench) -> None:
    bench.behaviour.seconds = 60.0
    event = run(first_event(trigger(bench, "slow", deadline=in_seconds(1.5))))
    assert event["status"] == "timed_out"
    assert event["stopped"] == [event["task_arn"]]
    assert running(bench) == []
    (task,) = bench.simulator.tasks.values()
    assert task.stop_code == "UserInitiated" and "execution timeout" in task.stopped_reason


def test_a_deadline_that_passed_during_a_restart_stops_the_task_found_by_listing(
    bench: Bench,
) -> None:
    bench.behaviour.seconds = 60.0
    _, kwargs = trigger(bench, "late", deadline=in_seconds(1.0)).serialize()

    async def die_after_launch() -> None:
        task = asyncio.ensure_future(first_event(FargateJobTrigger(**kwargs)))
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(die_after_launch())
    assert len(running(bench)) == 1
    time.sleep(0.6)
    event = run(first_event(FargateJobTrigger(**kwargs)))  # the deadline has passed
    assert event["status"] == "timed_out" and len(event["stopped"]) == 1
    assert running(bench) == []


def test_on_kill_stops_the_task_of_a_cleared_or_failed_try(bench: Bench) -> None:
    bench.behaviour.seconds = 60.0

    async def kill_midway() -> None:
        job = trigger(bench, "killed")
        waiting = asyncio.ensure_future(first_event(job, close=False))
        while not running(bench):
            await asyncio.sleep(0.1)
        waiting.cancel()  # what the triggerer does, then it awaits on_kill
        await asyncio.gather(waiting, return_exceptions=True)
        await job.on_kill()
        await Fleet.get(EcsBudget()).close()

    run(kill_midway())
    assert running(bench) == []
    (task,) = bench.simulator.tasks.values()
    assert "cleared or marked" in task.stopped_reason


async def deferred_then_killed(
    bench: Bench, name: str, task_instance: Any, *, recancel: bool = False
) -> None:
    """What the triggerer does to a running trigger it no longer owns: cancel it, then
    await on_kill (cancelled again by the next sync when ``recancel``)."""
    job = trigger(bench, name)
    job.task_instance = task_instance
    waiting = asyncio.ensure_future(first_event(job, close=False))
    while not running(bench):
        await asyncio.sleep(0.1)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    killing = asyncio.ensure_future(job.on_kill())
    if recancel:
        await asyncio.sleep(0.2)
        killing.cancel()
    await asyncio.gather(killing, return_exceptions=True)
    while recancel and running(bench):  # the stop still happens, after the cancel
        await asyncio.sleep(0.1)
    await Fleet.get(EcsBudget()).close()


@pytest.mark.parametrize(
    ("airflow_says", "keeps_running"),
    [
        ((True, 1), True),  # still deferred on this try: the trigger moved (#73454)
        ((True, 2), False),  # cleared, and the next try has deferred already
        ((False, 1), False),  # cleared, marked or timed out
        (RuntimeError("supervisor gone"), False),  # no answer: stop, as before
    ],
)
def test_on_kill_tells_a_moved_trigger_from_a_cleared_try(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, airflow_says: Any, keeps_running: bool
) -> None:
    """The triggerer's answer (state and try marker) is what the fault matrix gets from a
    real Airflow; here it is given, to pin down the decision for each answer."""

    def lookup(ti: Any) -> tuple[bool, Any]:
        assert (ti.dag_id, ti.task_id, ti.map_index) == ("job", "run", 3)
        if isinstance(airflow_says, Exception):
            raise airflow_says
        return airflow_says  # type: ignore[no-any-return]

    monkeypatch.setattr("ml_platform.fargate._deferred_and_marker", lookup)
    bench.behaviour.seconds = 60.0

    ti = SimpleNamespace(dag_id="job", task_id="run", run_id="r", map_index=3)
    run(deferred_then_killed(bench, "moved", ti))
    assert bool(running(bench)) is keeps_running


def test_on_kill_finishes_when_airflow_cancels_it_midway(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.3 cancels a trigger again on every sync until it is gone, and so cancels
    an on_kill still waiting for its answer; the stop must happen all the same."""

    def slow_answer(ti: Any) -> tuple[bool, Any]:
        time.sleep(1.0)
        return False, 1  # cleared

    monkeypatch.setattr("ml_platform.fargate._deferred_and_marker", slow_answer)
    bench.behaviour.seconds = 60.0

    ti = SimpleNamespace(dag_id="d", task_id="run", run_id="r", map_index=0)
    run(asyncio.wait_for(deferred_then_killed(bench, "recancelled", ti, recancel=True), 30))
    (task,) = bench.simulator.tasks.values()
    assert "cleared or marked" in task.stopped_reason


def test_on_kill_before_the_arn_is_known_stops_only_this_try(bench: Bench) -> None:
    bench.behaviour.seconds = 60.0

    async def launch(try_number: int) -> str:
        task = await Fleet.get(EcsBudget()).launch(
            bench.request("lost", try_number=try_number),
            aws_conn_id=CONN,
            region=REGION,
            spot_fallback=False,
        )
        return str(task["taskArn"])

    async def scenario() -> tuple[str, str]:
        first, second = await launch(1), await launch(2)
        # Try 2's trigger was killed before it recorded its launch: found by listing.
        await trigger(bench, "lost", try_number=2).on_kill()
        await Fleet.get(EcsBudget()).close()
        return first, second

    first, second = run(scenario())
    assert running(bench) == [first]
    assert bench.simulator.tasks[second].stop_code == "UserInitiated"


async def _cancel_after(bench: Bench, job: FargateJobTrigger, seconds: float) -> None:
    """Cancel the trigger once it has launched and at least ``seconds`` have passed."""
    waiting = asyncio.ensure_future(first_event(job, close=False))
    await asyncio.sleep(seconds)
    while not running(bench):  # a loaded machine may launch late
        await asyncio.sleep(0.1)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await Fleet.get(EcsBudget()).close()


def test_airflows_backstop_timeout_stops_the_task(bench: Bench) -> None:
    bench.behaviour.seconds = 60.0
    job = trigger(bench, "backstop")
    job.timeout_after = datetime.now(UTC) + timedelta(seconds=0.5)  # set by the triggerer
    run(_cancel_after(bench, job, 1.0))  # the triggerer cancels a timed-out trigger
    assert running(bench) == []


def test_a_cancelled_trigger_without_timeout_leaves_its_task_running(bench: Bench) -> None:
    """A triggerer restart cancels too; the task must run on for the restarted trigger."""
    bench.behaviour.seconds = 60.0
    run(_cancel_after(bench, trigger(bench, "restarting"), 1.0))
    assert len(running(bench)) == 1


def test_a_retry_does_not_adopt_a_task_that_is_being_stopped(bench: Bench) -> None:
    bench.behaviour.seconds = 60.0
    run(_cancel_after(bench, trigger(bench, "stopping"), 0.5))
    (task,) = bench.simulator.tasks.values()
    task.desired_status = "STOPPED"  # StopTask sent; ECS has not stopped it yet

    async def find() -> dict[str, Any] | None:
        fleet = Fleet.get(EcsBudget())
        found = await fleet.find_earlier(
            started_by("stopping"), cluster=CLUSTER, aws_conn_id=CONN, region=REGION
        )
        await fleet.close()
        return found

    assert run(find()) is None


def test_started_by_and_client_token_fit_ecs_limits() -> None:
    long = ["x" * 250, "task", "manual__2026-11-24T08:00:00+00:00", 4095, 7]
    assert len(started_by(*long)) == 36 and len(client_token(*long)) == 64
    assert started_by(*long) != started_by(*long[:-1], 8)


def test_a_mass_kill_stops_every_task_paced_even_after_on_kill_gives_up(bench: Bench) -> None:
    bench.behaviour.seconds = 60.0
    count = 60

    async def scenario() -> float:
        budget = EcsBudget(stop_rate=20, stop_burst=10, poll_interval=0.5)
        fleet = Fleet.get(budget)
        triggers = [trigger(bench, f"p{i}", budget=budget) for i in range(count)]
        waiting = [asyncio.ensure_future(first_event(t, close=False)) for t in triggers]
        while len(running(bench)) < count:
            await asyncio.sleep(0.2)
        for task in waiting:  # a user clears the whole run: every trigger is cancelled
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        started = time.monotonic()
        # Airflow bounds on_kill; here each gives up after 0.5 s, long before its turn.
        await asyncio.gather(
            *(asyncio.wait_for(t.on_kill(), 0.5) for t in triggers), return_exceptions=True
        )
        while running(bench) and time.monotonic() - started < 30:
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        await fleet.close()
        return elapsed

    elapsed = run(scenario())
    assert running(bench) == []
    assert elapsed >= (count - 10) / 20 * 0.9  # paced, not fired all at once


def write_stream(bench: Bench, stream: str, lines: list[str]) -> None:
    logs = client("logs", bench.aws.endpoint_url, REGION)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


def tail_all(streams: list[str], *, wait: float | None, before: Any = None) -> list[Any]:
    async def go() -> list[Any]:
        fleet = Fleet.get(EcsBudget())
        tails = [
            asyncio.create_task(
                fleet.tail(GROUP, stream, aws_conn_id=CONN, region=REGION, wait=wait)
            )
            for stream in streams
        ]
        if before is not None:
            await before()
        lines = await asyncio.gather(*tails)
        await fleet.close()
        return lines

    return run(go())


def test_the_logs_of_many_stopped_tasks_are_read_100_streams_a_call(bench: Bench) -> None:
    streams = [f"job/model/task-{i:03d}" for i in range(150)]
    for stream in streams:
        write_stream(bench, stream, [f"{stream} line {n}" for n in range(3)])
    bench.simulator.metrics.calls.clear()
    lines = tail_all(streams, wait=30)
    assert lines == [[f"{stream} line {n}" for n in range(3)] for stream in streams]
    # 150 streams: 2 calls of at most 100 names, not 150 GetLogEvents.
    assert bench.simulator.metrics.calls["FilterLogEvents"] == 2
    assert bench.simulator.metrics.calls["GetLogEvents"] == 0


def test_a_stream_not_written_yet_is_read_when_it_appears(bench: Bench) -> None:
    async def later() -> None:
        await asyncio.sleep(1.5)  # CloudWatch ingests after the task has stopped
        await asyncio.to_thread(write_stream, bench, "job/model/late", ["written late"])

    (lines,) = tail_all(["job/model/late"], wait=None, before=later)
    assert lines == ["written late"]
    assert bench.simulator.metrics.calls["FilterLogEvents"] >= 2  # asked again


def test_a_stream_that_never_appears_ends_empty_for_a_failure(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_module, "LOG_MISSING_SECONDS", 1.0)
    (lines,) = tail_all(["job/model/never"], wait=None)
    assert lines == []


def test_a_throttled_log_read_is_retried(bench: Bench) -> None:
    write_stream(bench, "job/model/throttled", ["still copied"])
    bench.simulator.log_groups[GROUP] = FAMILY  # known once a task of the family ran
    bench.simulator.inject(FAMILY, Faults(throttle=Counter({"FilterLogEvents": 2})))
    (lines,) = tail_all(["job/model/throttled"], wait=None)
    assert lines == ["still copied"]
    assert bench.simulator.metrics.throttled["FilterLogEvents"] == 2
