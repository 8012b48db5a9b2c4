"""`make bench`: the top-of-hour burst, the stock operator and this platform side by side.

Each path runs the same N tasks against a fresh simulator with ECS's real limits. Workers
are a thread pool calling the operators' ``execute``/``execute_complete``; the triggerer
is a separate process that gets each trigger as (class path, kwargs), as Airflow's does,
runs them all in one event loop and reports its memory. Real classes throughout:
``EcsRunTaskOperator`` (deferrable) and ``FargateChunkOperator`` with their triggers.

    python -m bench.burst [--tasks 2000] [--paths stock,platform] [--json-only]
"""

from __future__ import annotations

import os

# Before Airflow is imported anywhere (the triggerer process inherits it too).
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")

import argparse
import asyncio
import importlib
import json
import logging
import multiprocessing
import queue
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from simulator.bootstrap import airflow_connection, bootstrap_family
from simulator.fargate import ECS_READS, FargateSimulator, Scripted, SimTask
from simulator.server import LocalAws

REGION = "us-east-1"
CLUSTER = "bench"
FAMILY = "mlp-bench-location-forecast"
GROUP = "/mlp-bench/jobs/location-forecast"
CONN = "aws_bench"


# -- the triggerer process ---------------------------------------------------------------


def quiet() -> None:
    """Thousands of operators log every call; the bench prints only its table."""
    import structlog

    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def triggerer_main(inbox: Any, outbox: Any) -> None:
    """Runs every trigger it is sent in one asyncio loop; reports events and memory."""
    quiet()
    import airflow.providers.amazon.aws.triggers.ecs  # noqa: F401 (loaded before the baseline)

    import ml_platform.fargate  # noqa: F401

    async def run_one(trigger_id: int, classpath: str, kwargs: dict[str, Any]) -> None:
        module, name = classpath.rsplit(".", 1)
        trigger = getattr(importlib.import_module(module), name)(**kwargs)
        try:
            async for event in trigger.run():
                outbox.put(("event", trigger_id, event.payload, time.time()))
                return
        except Exception as error:  # a trigger that raises fails its task, as in Airflow
            outbox.put(("error", trigger_id, f"{type(error).__name__}: {error}", time.time()))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        baseline, peak = _rss_mb(), _rss_mb()
        outbox.put(("ready", -1, baseline, time.time()))
        running: set[asyncio.Task[None]] = set()
        while True:
            item = await loop.run_in_executor(None, inbox.get)
            while True:
                if item is None:
                    await asyncio.gather(*running, return_exceptions=True)
                    outbox.put(
                        ("memory", -1, {"baseline_mb": baseline, "peak_mb": peak}, time.time())
                    )
                    return
                task = loop.create_task(run_one(*item))
                running.add(task)
                task.add_done_callback(running.discard)
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
            peak = max(peak, _rss_mb())

    async def sampled() -> None:
        # Sample memory while triggers wait, not only when new ones arrive.
        async def sample() -> None:
            while True:
                await asyncio.sleep(1)
                outbox.put(("rss", -1, _rss_mb(), time.time()))

        sampler = asyncio.ensure_future(sample())
        try:
            await main()
        finally:
            sampler.cancel()

    asyncio.run(sampled())


# -- one path ----------------------------------------------------------------------------


@dataclass
class PathResult:
    path: str
    tasks: int
    launched: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_by_throttling: int = 0
    first_launch_to_last_running_s: float | None = None
    ecs_reads_per_s_mean: float = 0.0
    ecs_reads_per_s_peak: int = 0
    ecs_reads_per_s_mean_all_running: float | None = None
    max_running: int = 0
    #: Reads per second for every 100 tasks running: flat when reads grow with tasks/100.
    ecs_reads_per_s_per_100_running: float | None = None
    get_log_events_per_s_mean: float = 0.0
    get_log_events_per_s_peak: int = 0
    throttled_calls: int = 0
    worker_slot_seconds_per_task: float = 0.0
    triggerer_rss_baseline_mb: float = 0.0
    triggerer_rss_peak_mb: float = 0.0
    stop_to_finish_p50_s: float | None = None
    stop_to_finish_p95_s: float | None = None
    logs_copied: int | None = None
    unfinished_at_deadline: int = 0
    wall_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


class FakeTI:
    """What an operator reads from its task instance."""

    def __init__(self, index: int) -> None:
        self.dag_id = "location-forecast"
        self.task_id = "run"
        self.run_id = "scheduled__bench"
        self.map_index = index
        self.try_number = 1
        self.max_tries = 0  # no retries: the first try is the last

    def xcom_push(self, key: str, value: Any) -> None:
        """The bench keeps no XCom."""


def context_for(index: int) -> dict[str, Any]:
    ti = FakeTI(index)
    return {
        "ti": ti,
        "run_id": ti.run_id,
        "dag_run": SimpleNamespace(run_after=datetime(2026, 1, 1, tzinfo=UTC)),
    }


def stock_operator(index: int, network: dict[str, Any]) -> Any:
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

    return EcsRunTaskOperator(
        task_id=f"run_{index}",
        cluster=CLUSTER,
        task_definition=FAMILY,
        overrides={
            "containerOverrides": [
                {
                    "name": "model",
                    "environment": [
                        {"name": "ML_PARTITIONS", "value": json.dumps([f"loc-{index:05d}"])}
                    ],
                }
            ]
        },
        capacity_provider_strategy=[{"capacityProvider": "FARGATE", "weight": 1}],
        network_configuration={
            "awsvpcConfiguration": {
                "subnets": network["subnets"],
                "securityGroups": network["security_groups"],
            }
        },
        awslogs_group=GROUP,
        awslogs_stream_prefix="job/model",
        awslogs_region=REGION,
        container_name="model",
        deferrable=True,
        aws_conn_id=CONN,
        region_name=REGION,
        waiter_delay=6,
        waiter_max_attempts=1000,
        do_xcom_push=False,
    )


def platform_operator(index: int, network: dict[str, Any], fleet: dict[str, Any]) -> Any:
    from ml_platform.fargate import FargateChunkOperator
    from ml_platform.fleet import FleetConfig
    from ml_platform.manifest import Job, Manifest

    job = Job.model_validate(
        {
            "name": "location-forecast",
            "description": "bench",
            "team": "forecasting",
            "image": "bench",
            "task_definition_family": FAMILY,
            "container_name": "model",
            "cpu": 256,
            "memory_mib": 512,
            "logs": {"group": GROUP, "stream_prefix": "job"},
            "capacity": "on-demand",
            "schedule": None,
            "partitions": {"kind": "static", "values": ["x"]},
            "chunk_size": 1,
            "pool": "forecast",
            "pool_slots": 1,
            "retry": {
                "retries": 0,
                "delay_seconds": 0,
                "exponential_backoff": False,
                "max_delay_seconds": 0,
            },
            "execution_timeout_seconds": 3600,
            "max_active_runs": 1,
            "tags": {"team": "forecasting"},
        }
    )
    manifest = Manifest.model_validate(
        {
            "environment": "bench",
            "region": REGION,
            "cluster": CLUSTER,
            "network": {
                "subnets": network["subnets"],
                "security_groups": network["security_groups"],
            },
            "max_map_length": 100_000,
            "fleet": fleet,
            "pools": [{"name": "forecast", "slots": 10_000}],
            "jobs": [job.model_dump()],
        }
    )
    return FargateChunkOperator(
        task_id=f"run_{index}",
        job=job,
        manifest=manifest,
        chunk=[f"loc-{index:05d}"],
        aws_conn_id=CONN,
        fleet=FleetConfig(**fleet),
    )


def run_path(path: str, tasks: int, args: argparse.Namespace) -> PathResult:
    rng = random.Random(7)
    low, high = args.run_seconds
    durations = [rng.uniform(low, high) for _ in range(tasks)]
    draw = iter(durations)
    behaviour = Scripted(seconds=lambda: next(draw))
    simulator = FargateSimulator(
        behaviour=lambda family: behaviour, start_latency=args.start_latency
    )
    result = PathResult(path=path, tasks=tasks)
    fleet = {
        "launch_rate": 20.0,
        "launch_burst": 100.0,
        "read_rate": 10.0,
        "read_burst": 20.0,
        "log_rate": 8.0,
        "log_burst": 2.0,
        "poll_interval": args.poll_interval,
        "log_lines": 200,
        "log_wait_seconds": 2.0,
    }
    with LocalAws(simulator) as aws:
        os.environ[f"AIRFLOW_CONN_{CONN.upper()}"] = airflow_connection(aws.endpoint_url, REGION)
        network = bootstrap_family(
            aws.endpoint_url, REGION, cluster=CLUSTER, family=FAMILY, log_group=GROUP
        )
        simulator.metrics.calls.clear()
        simulator.metrics.timeline.clear()
        context = multiprocessing.get_context("spawn")
        inbox, outbox = context.Queue(), context.Queue()
        triggerer = context.Process(target=triggerer_main, args=(inbox, outbox), daemon=True)
        triggerer.start()
        kind, _, baseline, _ = outbox.get(timeout=120)
        assert kind == "ready"
        result.triggerer_rss_baseline_mb = result.triggerer_rss_peak_mb = baseline

        def operator_for(index: int) -> Any:
            # A worker builds a fresh operator for each run and each resumption.
            return (
                stock_operator(index, network)
                if path == "stock"
                else platform_operator(index, network, fleet)
            )

        slot_seconds = [0.0] * tasks
        finished: dict[int, float] = {}
        lock = threading.Lock()
        started = time.time()

        def start(index: int) -> None:
            t0 = time.monotonic()
            try:
                operator_for(index).execute(context_for(index))
                outcome = "no deferral"
            except BaseException as raised:  # TaskDeferred is not an Exception
                trigger = getattr(raised, "trigger", None)
                if trigger is not None:
                    classpath, kwargs = trigger.serialize()
                    inbox.put((index, classpath, kwargs))
                    outcome = ""
                else:
                    outcome = f"{type(raised).__name__}: {raised}"
            slot_seconds[index] += time.monotonic() - t0
            if outcome:
                fail(index, outcome)

        def fail(index: int, why: str) -> None:
            with lock:
                result.failed += 1
                throttled = "Throttl" in why or "Rate exceeded" in why
                result.failed_by_throttling += throttled
                key = why.split(":")[0][:60]
                result.errors[key] = result.errors.get(key, 0) + 1
                finished[index] = time.time()

        def complete(index: int, payload: dict[str, Any]) -> None:
            t0 = time.monotonic()
            try:
                operator_for(index).execute_complete(context_for(index), payload)
                with lock:
                    result.succeeded += 1
                    finished[index] = time.time()
                    if "log_lines" in payload:  # the stock trigger streams logs instead
                        result.logs_copied = (result.logs_copied or 0) + bool(payload["log_lines"])
            except Exception as error:
                fail(index, f"{type(error).__name__}: {error}")
            slot_seconds[index] += time.monotonic() - t0

        with ThreadPoolExecutor(max_workers=args.workers) as workers:
            for index in range(tasks):
                workers.submit(start, index)
            done = 0
            memory_reported = False
            deadline = time.time() + args.timeout
            while done < tasks and time.time() < deadline:
                try:
                    kind, index, payload, _ = outbox.get(timeout=5)
                except queue.Empty:
                    done = len(finished)
                    continue
                if kind == "rss":
                    result.triggerer_rss_peak_mb = max(result.triggerer_rss_peak_mb, payload)
                elif kind == "event":
                    workers.submit(complete, index, payload)
                elif kind == "error":
                    fail(index, payload)
                done = len(finished)
            workers.shutdown(wait=True)
        inbox.put(None)
        while not memory_reported:
            try:
                kind, _, payload, _ = outbox.get(timeout=60)
            except queue.Empty:
                break
            if kind == "memory":
                result.triggerer_rss_peak_mb = max(result.triggerer_rss_peak_mb, payload["peak_mb"])
                memory_reported = True
            elif kind == "rss":
                result.triggerer_rss_peak_mb = max(result.triggerer_rss_peak_mb, payload)
        triggerer.terminate()
        ended = time.time()

        result.unfinished_at_deadline = tasks - len(finished)
        measure(result, simulator, started, ended, finished, slot_seconds)
    return result


def measure(
    result: PathResult,
    simulator: FargateSimulator,
    started: float,
    ended: float,
    finished: dict[int, float],
    slot_seconds: list[float],
) -> None:
    metrics = simulator.metrics
    sim_tasks = list(simulator.tasks.values())
    result.launched = len(sim_tasks)
    result.wall_s = round(ended - started, 1)
    running_at = [t.started_at for t in sim_tasks if t.started_at]
    if sim_tasks and running_at:
        first_launch = min(t.created_at for t in sim_tasks)
        result.first_launch_to_last_running_s = round(max(running_at) - first_launch, 1)
    reads = ECS_READS
    mean, peak = metrics.rate(reads, started, ended)
    result.ecs_reads_per_s_mean, result.ecs_reads_per_s_peak = round(mean, 2), peak
    stops = [t.stopped_at for t in sim_tasks if t.stopped_at]
    if running_at and stops and len(running_at) == result.tasks and min(stops) > max(running_at):
        window_mean, _ = metrics.rate(reads, max(running_at), min(stops))
        result.ecs_reads_per_s_mean_all_running = round(window_mean, 2)
    result.max_running = metrics.max_running
    result.ecs_reads_per_s_per_100_running = reads_per_100_running(
        sim_tasks, metrics, started, ended
    )
    logs_mean, logs_peak = metrics.rate({"GetLogEvents"}, started, ended)
    result.get_log_events_per_s_mean = round(logs_mean, 2)
    result.get_log_events_per_s_peak = logs_peak
    result.throttled_calls = sum(v for k, v in metrics.throttled.items() if k != "launch")
    result.worker_slot_seconds_per_task = round(sum(slot_seconds) / result.tasks, 3)
    latencies: list[float] = []
    by_index: dict[int, SimTask] = {}
    for task in sim_tasks:
        env = task.overrides.get("containerOverrides", [{}])[0].get("environment", [])
        partitions = next((e["value"] for e in env if e["name"] == "ML_PARTITIONS"), "[]")
        by_index[int(json.loads(partitions)[0].split("-")[1])] = task
    for index, done_at in finished.items():
        found = by_index.get(index)
        if found is not None and found.stopped_at and done_at >= found.stopped_at:
            latencies.append(done_at - found.stopped_at)
    if latencies:
        latencies.sort()
        result.stop_to_finish_p50_s = round(statistics.median(latencies), 2)
        result.stop_to_finish_p95_s = round(latencies[int(0.95 * (len(latencies) - 1))], 2)


def reads_per_100_running(
    sim_tasks: list[SimTask], metrics: Any, started: float, ended: float
) -> float | None:
    """ECS reads per second divided by hundreds of tasks running, over the seconds when
    at least 100 ran: constant if reads grow with tasks/100, growing if with tasks."""
    first, last = int(started), int(ended) + 1
    change = [0] * (last - first + 2)
    for task in sim_tasks:
        if task.started_at:
            change[int(task.started_at) - first] += 1
            change[int(task.stopped_at or ended) - first + 1] -= 1
    reads = hundreds = 0.0
    running = 0
    for offset, delta in enumerate(change[:-1]):
        running += delta
        if running >= 100:
            hundreds += running / 100
            reads += sum(metrics.timeline.get(first + offset, {}).get(a, 0) for a in ECS_READS)
    return round(reads / hundreds, 3) if hundreds else None


ROWS = [
    ("tasks failed", "failed"),
    ("  of which by throttling", "failed_by_throttling"),
    ("tasks succeeded", "succeeded"),
    ("tasks unfinished at the deadline", "unfinished_at_deadline"),
    ("Fargate tasks launched", "launched"),
    ("first launch -> last RUNNING (s)", "first_launch_to_last_running_s"),
    ("ECS reads/s, mean over the run", "ecs_reads_per_s_mean"),
    ("ECS reads/s, mean while all run", "ecs_reads_per_s_mean_all_running"),
    ("ECS reads/s, peak", "ecs_reads_per_s_peak"),
    ("most tasks running at once", "max_running"),
    ("ECS reads/s per 100 tasks running", "ecs_reads_per_s_per_100_running"),
    ("GetLogEvents/s, mean", "get_log_events_per_s_mean"),
    ("GetLogEvents/s, peak", "get_log_events_per_s_peak"),
    ("throttled calls", "throttled_calls"),
    ("worker slot-seconds per task", "worker_slot_seconds_per_task"),
    ("triggerer RSS at start (MB)", "triggerer_rss_baseline_mb"),
    ("triggerer RSS peak (MB)", "triggerer_rss_peak_mb"),
    ("task stop -> Airflow task done p50 (s)", "stop_to_finish_p50_s"),
    ("task stop -> Airflow task done p95 (s)", "stop_to_finish_p95_s"),
    ("container logs copied to task log", "logs_copied"),
    ("wall time (s)", "wall_s"),
]


def table(results: list[PathResult]) -> str:
    width = max(len(label) for label, _ in ROWS) + 2
    lines = [f"{'':<{width}}" + "".join(f"{r.path:>14}" for r in results)]
    for label, attr in ROWS:
        cells = []
        for r in results:
            value = getattr(r, attr)
            shown = "-" if value is None else round(value, 1) if isinstance(value, float) else value
            cells.append(f"{shown:>14}")
        lines.append(f"{label:<{width}}" + "".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--paths", default="stock,platform")
    parser.add_argument("--workers", type=int, default=64, help="worker slots")
    parser.add_argument("--start-latency", type=float, default=5.0)
    parser.add_argument("--run-seconds", type=float, nargs=2, default=(150.0, 330.0))
    parser.add_argument("--poll-interval", type=float, default=15.0)
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per path; tasks not done by then count as unfinished "
        "(default: the launch-limited ramp plus the longest run plus 300 s)",
    )
    args = parser.parse_args(argv)
    if args.timeout is None:
        # ECS admits 100 launches, then 20/s; the stock path needs the slack.
        ramp = max(args.tasks - 100, 0) / 20
        args.timeout = ramp + args.run_seconds[1] + 300
    quiet()
    results = []
    for path in args.paths.split(","):
        print(f"running the {path} path: {args.tasks} tasks ...", flush=True)
        results.append(run_path(path, args.tasks, args))
        for key, count in sorted(results[-1].errors.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  {count:>6} x {key}", flush=True)
    print(table(results))
    print(
        json.dumps(
            {
                "tasks": args.tasks,
                "poll_interval_s": args.poll_interval,
                "start_latency_s": args.start_latency,
                "run_seconds": list(args.run_seconds),
                "paths": {
                    r.path: {k: v for k, v in r.__dict__.items() if k not in ("path", "errors")}
                    for r in results
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
