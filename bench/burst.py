"""`make bench`: the top-of-hour burst, the stock operator and this platform side by side.

Each path runs the same N tasks against a fresh simulator with ECS's real limits. The
Airflow side runs on the MWAA parity runtime, laid out like MWAA (``ml_platform`` from
the plugins folder only): a worker process, a thread pool calling the operators'
``execute``/``execute_complete``, and a triggerer process that gets each trigger as
(class path, kwargs), as Airflow's does, runs them all in one event loop and reports its
memory (``bench/airflow_host.py``). Real classes throughout: ``EcsRunTaskOperator``
(deferrable) and ``FargateChunkOperator`` with their triggers.

    .venv/bin/python -m bench.burst [--tasks 2000] [--paths stock,platform]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import ENVIRONMENTS
from config.prices import fargate_prices
from constructs_lib.plugins_bundle import build_plugins_zip
from ml_platform.contract import EcsBudget, parse_manifest
from simulator.airflow_local import REPO, mwaa_environment, parity_runtime
from simulator.bootstrap import airflow_connection, bootstrap_family
from simulator.fargate import ECS_READS, FargateSimulator, Scripted, SimTask
from simulator.server import LocalAws

REGION = "us-east-1"
CLUSTER = "bench"
FAMILY = "mlp-bench-location-forecast"
GROUP = "/mlp-bench/jobs/location-forecast"
CONN = "aws_bench"
HOST = Path(__file__).resolve().with_name("airflow_host.py")
AIRFLOW_VERSION = ENVIRONMENTS["dev"].airflow.version


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
    #: GetLogEvents (stock) or FilterLogEvents (platform) calls.
    log_reads_per_s_mean: float = 0.0
    log_reads_per_s_peak: int = 0
    throttled_calls: int = 0
    #: Throttled calls per API; "launch" is Fargate's task-launch limit behind RunTask.
    throttled_by_api: dict[str, int] = field(default_factory=dict)
    #: CloudWatch PutMetricData calls (the fleet's; the bench runs no summarize task).
    metric_writes: int = 0
    worker_slot_seconds_per_task: float = 0.0
    triggerer_rss_baseline_mb: float = 0.0
    triggerer_rss_peak_mb: float = 0.0
    stop_to_finish_p50_s: float | None = None
    stop_to_finish_p95_s: float | None = None
    logs_copied: int | None = None
    #: Succeeded tasks whose container lines reached their task log, as a share.
    logs_copied_share: float | None = None
    #: Per job (the mixed burst): seconds from the burst's start to its first and last
    #: RunTask and RUNNING, and the synth-time plan's last launch.
    jobs: dict[str, dict[str, float | None]] = field(default_factory=dict)
    unfinished_at_deadline: int = 0
    wall_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


class Host:
    """One Airflow-side process (``bench/airflow_host.py``) on the MWAA parity runtime."""

    def __init__(self, role: str, env: dict[str, str], inbox: queue.Queue[Any], log: Path) -> None:
        runtime = parity_runtime(AIRFLOW_VERSION)
        self.role = role
        self._lock = threading.Lock()
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [str(runtime.venv / "bin" / "python"), "-P", str(HOST), role],
            env=env,
            cwd=env["AIRFLOW_HOME"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, args=(inbox,), daemon=True)
        self._reader.start()

    def _read(self, inbox: queue.Queue[Any]) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            inbox.put((self.role, json.loads(line), time.time()))
        inbox.put((self.role, {"exited": self.process.wait()}, time.time()))

    def send(self, **message: Any) -> None:
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


#: The mixed burst's second job: 120 pricing chunks, enqueued at :00 with the forecast's.
PRICING = "dynamic-pricing"
FORECAST = "location-forecast"


def scheduler_order(chunks: list[int]) -> list[int]:
    """The bench's task indices in the order Airflow's scheduler queues them.

    Airflow 3.3.1 picks scheduled task instances ``ORDER BY -priority_weight,
    logical_date, map_index`` (``_executable_task_instances_to_queued`` in
    ``airflow/jobs/scheduler_job_runner.py``). The jobs' runs share the hour's logical
    date and the factory gives every job the same DAG shape, so the same priority
    weight: their chunks interleave by map index, the forecast first within each.
    """
    offsets = [sum(chunks[:job]) for job in range(len(chunks))]
    keyed = [
        (map_index, job, offsets[job] + map_index)
        for job, count in enumerate(chunks)
        for map_index in range(count)
    ]
    return [index for _, _, index in sorted(keyed)]


def platform_manifest(
    network: dict[str, Any], budget: EcsBudget, jobs: tuple[str, ...] = (FORECAST,)
) -> dict[str, Any]:
    """The jobs, as the platform's manifest would carry them."""
    job = {
        "name": FORECAST,
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
        "retry": {"retries": 0, "delay_seconds": 0, "exponential_backoff": False,
                  "max_delay_seconds": 0},
        "execution_timeout_seconds": 3600,
        "max_active_runs": 1,
        "tags": {"team": "forecasting"},
    }  # fmt: skip
    manifest = {
        "environment": "bench",
        "region": REGION,
        "cluster": CLUSTER,
        "network": {"subnets": network["subnets"], "security_groups": network["security_groups"]},
        "max_map_length": 100_000,
        "fleet": budget.to_dict(),
        "prices": fargate_prices(REGION),
        "observability": {"namespace": "MLPlatform/bench"},
        "pools": [{"name": "forecast", "slots": 10_000}],
        "jobs": [{**job, "name": name, "tags": {"team": name}} for name in jobs],
    }
    parse_manifest(manifest, source="bench manifest")
    return manifest


def run_path(path: str, tasks: int, args: argparse.Namespace) -> PathResult:
    """``stock`` and ``platform``: ``tasks`` forecast chunks; ``mixed``: those, then the
    pricing job's ``args.pricing`` chunks, enqueued at once (the platform's path)."""
    jobs = (FORECAST, PRICING) if path == "mixed" else (FORECAST,)
    chunks = [tasks, args.pricing] if path == "mixed" else [tasks]
    tasks = sum(chunks)
    rng = random.Random(7)
    low, high = args.run_seconds
    durations = [rng.uniform(low, high) for _ in range(tasks)]
    draw = iter(durations)
    behaviour = Scripted(seconds=lambda: next(draw))
    simulator = FargateSimulator(
        behaviour=lambda family: behaviour, start_latency=args.start_latency
    )
    result = PathResult(path=path, tasks=tasks)
    # One triggerer's share: the environment's reads, with the burst the platform allows.
    budget = EcsBudget(read_rate=10.0, read_burst=20.0, poll_interval=args.poll_interval)
    home = Path(tempfile.mkdtemp(prefix=f"ml-platform-bench-{path}-"))
    with LocalAws(simulator) as aws:
        network = bootstrap_family(
            aws.endpoint_url, REGION, cluster=CLUSTER, family=FAMILY, log_group=GROUP
        )
        env = {
            **mwaa_environment(home, build_plugins_zip(REPO / "plugins")),
            f"AIRFLOW_CONN_{CONN.upper()}": airflow_connection(aws.endpoint_url, REGION),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        }
        simulator.metrics.calls.clear()
        simulator.metrics.timeline.clear()
        inbox: queue.Queue[Any] = queue.Queue()
        triggerer = Host("triggerer", env, inbox, home / "triggerer.log")
        worker = Host("worker", env, inbox, home / "worker.log")
        worker.send(
            path=path, workers=args.workers, conn=CONN, region=REGION, cluster=CLUSTER,
            family=FAMILY, group=GROUP, network=network,
            manifest=platform_manifest(network, budget, jobs), chunks=chunks,
        )  # fmt: skip
        ready: set[str] = set()
        while ready != {"worker", "triggerer"}:
            role, message, _ = inbox.get(timeout=180)
            if "exited" in message:
                raise RuntimeError(f"the {role} host exited; see {home}/{role}.log")
            if role == "triggerer":
                result.triggerer_rss_baseline_mb = result.triggerer_rss_peak_mb = message["ready"]
            ready.add(role)

        slot_seconds = [0.0] * tasks
        finished: dict[int, float] = {}
        copied: dict[int, bool] = {}
        started = time.time()

        def fail(index: int, why: str, at: float) -> None:
            result.failed += 1
            result.failed_by_throttling += "Throttl" in why or "Rate exceeded" in why
            key = why.split(":")[0][:60]
            result.errors[key] = result.errors.get(key, 0) + 1
            finished[index] = at

        deferred_at: dict[int, float] = {}
        for index in scheduler_order(chunks):
            worker.send(start=index)
        deadline = time.time() + args.timeout
        while len(finished) < tasks and time.time() < deadline:
            try:
                role, message, at = inbox.get(timeout=5)
            except queue.Empty:
                continue
            if "exited" in message:
                raise RuntimeError(f"the {role} host exited; see {home}/{role}.log")
            if role == "worker":  # every worker answer names its task first
                slot_seconds[next(iter(message.values()))] += message["slot_s"]
            if "deferred" in message:
                deferred_at.setdefault(message["deferred"], at)
                triggerer.send(
                    run=message["deferred"],
                    classpath=message["classpath"],
                    kwargs=message["kwargs"],
                )
            elif "event" in message:
                worker.send(complete=message["event"], payload=message["payload"])
            elif "succeeded" in message:
                result.succeeded += 1
                finished[message["succeeded"]] = at
                if message["logs"] is not None:
                    result.logs_copied = (result.logs_copied or 0) + message["logs"]
                    copied[message["succeeded"]] = bool(message["logs"])
            elif "failed" in message:
                fail(message["failed"], message["why"], at)
            elif "error" in message:
                fail(message["error"], message["why"], at)
            elif "rss" in message:
                result.triggerer_rss_peak_mb = max(result.triggerer_rss_peak_mb, message["rss"])
        worker.close()
        triggerer.close()
        while not inbox.empty():
            _, message, _ = inbox.get()
            if "memory" in message:
                result.triggerer_rss_peak_mb = max(
                    result.triggerer_rss_peak_mb, message["memory"]["peak_mb"]
                )
        ended = time.time()
        result.unfinished_at_deadline = tasks - len(finished)
        measure(result, simulator, started, ended, finished, slot_seconds)
        if copied:
            result.logs_copied_share = round(sum(copied.values()) / len(copied), 4)
        result.jobs = per_job(
            simulator, started, budget, dict(zip(jobs, chunks, strict=True)), deferred_at
        )
    shutil.rmtree(home, ignore_errors=True)
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
    logs_mean, logs_peak = metrics.rate({"GetLogEvents", "FilterLogEvents"}, started, ended)
    result.log_reads_per_s_mean = round(logs_mean, 2)
    result.log_reads_per_s_peak = logs_peak
    result.throttled_calls = sum(v for k, v in metrics.throttled.items() if k != "launch")
    result.throttled_by_api = dict(sorted(metrics.throttled.items()))
    result.metric_writes = metrics.calls.get("PutMetricData", 0)
    result.worker_slot_seconds_per_task = round(sum(slot_seconds) / result.tasks, 3)
    latencies: list[float] = []
    by_index: dict[int, SimTask] = {}
    for task in sim_tasks:
        env = task.overrides.get("containerOverrides", [{}])[0].get("environment", [])
        partitions = next((e["value"] for e in env if e["name"] == "ML_PARTITIONS"), "[]")
        by_index[int(json.loads(partitions)[0].rsplit("-", 1)[1])] = task
    for index, done_at in finished.items():
        found = by_index.get(index)
        if found is not None and found.stopped_at and done_at >= found.stopped_at:
            latencies.append(done_at - found.stopped_at)
    if latencies:
        latencies.sort()
        result.stop_to_finish_p50_s = round(statistics.median(latencies), 2)
        result.stop_to_finish_p95_s = round(latencies[int(0.95 * (len(latencies) - 1))], 2)


def per_job(
    simulator: FargateSimulator,
    started: float,
    budget: EcsBudget,
    chunks: dict[str, int],
    deferred_at: dict[int, float],
) -> dict[str, dict[str, float | None]]:
    """Seconds from the burst's start to each job's last chunk handed to the triggerer,
    its first and last launch and RUNNING, beside the synth-time plan's last launch
    (constructs_lib/launch_plan.py)."""
    from constructs_lib.launch_plan import last_launches

    planned = last_launches(
        {job: (count, 1.0) for job, count in chunks.items()},
        rate=budget.launch_rate,
        burst=budget.launch_burst,
    )
    out: dict[str, dict[str, float | None]] = {}
    offset = 0
    for job, count in chunks.items():
        handed = [
            deferred_at[i] - started for i in range(offset, offset + count) if i in deferred_at
        ]
        offset += count
        tasks = []
        for task in simulator.tasks.values():
            env = task.overrides.get("containerOverrides", [{}])[0].get("environment", [])
            partitions = next((e["value"] for e in env if e["name"] == "ML_PARTITIONS"), "[]")
            prefix = json.loads(partitions)[0].rsplit("-", 1)[0]
            if prefix == job or (job == FORECAST and prefix == "loc"):  # stock: "loc-"
                tasks.append(task)
        launches = [t.created_at - started for t in tasks]
        running = [t.started_at - started for t in tasks if t.started_at]

        def rounded(values: list[float], pick: Any) -> float | None:
            return round(pick(values), 1) if values else None

        out[job] = {
            "last_deferred_s": rounded(handed, max),
            "first_launch_s": rounded(launches, min),
            "last_launch_s": rounded(launches, max),
            "first_running_s": rounded(running, min),
            "last_running_s": rounded(running, max),
            "planned_last_launch_s": round(planned[job], 1),
        }
    return out


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
    ("log reads/s, mean (Get/FilterLogEvents)", "log_reads_per_s_mean"),
    ("log reads/s, peak", "log_reads_per_s_peak"),
    ("throttled calls", "throttled_calls"),
    ("CloudWatch metric writes (fleet)", "metric_writes"),
    ("worker slot-seconds per task", "worker_slot_seconds_per_task"),
    ("triggerer RSS at start (MB)", "triggerer_rss_baseline_mb"),
    ("triggerer RSS peak (MB)", "triggerer_rss_peak_mb"),
    ("task stop -> Airflow task done p50 (s)", "stop_to_finish_p50_s"),
    ("task stop -> Airflow task done p95 (s)", "stop_to_finish_p95_s"),
    ("container logs copied to task log", "logs_copied"),
    ("  share of succeeded tasks", "logs_copied_share"),
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
    parser.add_argument("--paths", default="stock,platform,mixed")
    parser.add_argument("--pricing", type=int, default=120, help="the mixed burst's pricing chunks")
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
    results = []
    for path in args.paths.split(","):
        print(f"running the {path} path: {args.tasks} tasks ...", flush=True)
        results.append(run_path(path, args.tasks, args))
        for key, count in sorted(results[-1].errors.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  {count:>6} x {key}", flush=True)
    print(table(results))
    for r in results:
        for job, figures in r.jobs.items():
            shown = ", ".join(f"{k} {v}" for k, v in figures.items())
            print(f"{r.path} / {job}: {shown}")
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
