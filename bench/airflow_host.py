"""The Airflow side of `make bench`, run by the MWAA parity runtime as MWAA would run it.

    <parity python> -P bench/airflow_host.py worker|triggerer

``-P`` keeps this file's folder off ``sys.path``; ``ml_platform`` comes from the plugins
folder that ``airflow.settings`` adds, as on MWAA. It speaks JSON lines: commands on
stdin, results on stdout (``bench.burst`` drives both roles).

- **worker**: a thread pool, one fresh operator per call as a worker builds one:
  ``{"start": i}`` runs ``execute`` (answers ``deferred`` with the trigger's class path and
  kwargs, or ``failed``); ``{"complete": i, "payload": ...}`` runs ``execute_complete``
  (answers ``succeeded`` or ``failed``). Each answer carries the slot-seconds it used.
- **triggerer**: ``{"run": i, "classpath": ..., "kwargs": ...}`` builds the trigger from
  its serialized form, as Airflow's triggerer does, and runs it in one event loop with
  all the others; answers ``event`` or ``error``, and its memory (``rss``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import airflow.settings  # noqa: F401  (puts the plugins folder on sys.path, as on MWAA)
import structlog
from airflow._shared.module_loading import import_string

_out_lock = threading.Lock()


def say(**message: Any) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps(message, default=str) + "\n")
        sys.stdout.flush()


def quiet() -> None:
    """Thousands of operators log every call; the bench prints only its table."""
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- worker -----------------------------------------------------------------------------


class FakeTI:
    """What an operator reads from its task instance."""

    def __init__(self, index: int, dag_id: str = "location-forecast") -> None:
        self.dag_id = dag_id
        self.task_id = "run"
        self.run_id = "scheduled__bench"
        self.map_index = index
        self.try_number = 1
        self.max_tries = 0  # no retries: the first try is the last

    def xcom_push(self, key: str, value: Any) -> None:
        """The bench keeps no XCom."""


def chunk_of(index: int, setup: dict[str, Any]) -> tuple[int, int]:
    """(job in the manifest, map index) of the bench's ``index``-th task: the jobs' chunks
    are numbered one job after the other (``setup["chunks"]``: chunks per job)."""
    for job, count in enumerate(setup.get("chunks") or [10**9]):
        if index < count:
            return job, index
        index -= count
    raise IndexError(index)


def context_for(index: int, setup: dict[str, Any] | None = None) -> dict[str, Any]:
    ti = FakeTI(index)
    if setup is not None and setup.get("chunks"):
        job, map_index = chunk_of(index, setup)
        ti = FakeTI(map_index, setup["manifest"]["jobs"][job]["name"])
    return {
        "ti": ti,
        "run_id": ti.run_id,
        "dag_run": SimpleNamespace(run_after=datetime(2026, 1, 1, tzinfo=UTC)),
    }


def stock_operator(index: int, setup: dict[str, Any]) -> Any:
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

    return EcsRunTaskOperator(
        task_id=f"run_{index}",
        cluster=setup["cluster"],
        task_definition=setup["family"],
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
                "subnets": setup["network"]["subnets"],
                "securityGroups": setup["network"]["security_groups"],
            }
        },
        awslogs_group=setup["group"],
        awslogs_stream_prefix="job/model",
        awslogs_region=setup["region"],
        container_name="model",
        deferrable=True,
        aws_conn_id=setup["conn"],
        region_name=setup["region"],
        waiter_delay=6,
        waiter_max_attempts=1000,
        do_xcom_push=False,
    )


def platform_operator(index: int, setup: dict[str, Any]) -> Any:
    from ml_platform.contract import Manifest
    from ml_platform.fargate import FargateChunkOperator

    manifest = Manifest.model_validate(setup["manifest"])
    job, _ = chunk_of(index, setup)
    return FargateChunkOperator(
        task_id=f"run_{index}",
        job=manifest.jobs[job],
        manifest=manifest,
        chunk=[f"{manifest.jobs[job].name}-{index:05d}"],
        aws_conn_id=setup["conn"],
    )


def worker(setup: dict[str, Any]) -> None:
    build = stock_operator if setup["path"] == "stock" else platform_operator

    def start(index: int) -> None:
        t0 = time.monotonic()
        try:
            build(index, setup).execute(context_for(index, setup))
            answer: dict[str, Any] = {"failed": index, "why": "no deferral"}
        except BaseException as raised:  # TaskDeferred is not an Exception
            trigger = getattr(raised, "trigger", None)
            if trigger is not None:
                classpath, kwargs = trigger.serialize()
                answer = {"deferred": index, "classpath": classpath, "kwargs": kwargs}
            else:
                answer = {"failed": index, "why": f"{type(raised).__name__}: {raised}"}
        say(**answer, slot_s=time.monotonic() - t0)

    def complete(index: int, payload: dict[str, Any]) -> None:
        t0 = time.monotonic()
        try:
            build(index, setup).execute_complete(context_for(index, setup), payload)
            # The stock trigger streams logs instead of handing lines over.
            logs = bool(payload["log_lines"]) if "log_lines" in payload else None
            answer: dict[str, Any] = {"succeeded": index, "logs": logs}
        except Exception as error:
            answer = {"failed": index, "why": f"{type(error).__name__}: {error}"}
        say(**answer, slot_s=time.monotonic() - t0)

    with ThreadPoolExecutor(max_workers=setup["workers"]) as pool:
        say(ready=rss_mb())
        for line in sys.stdin:
            command = json.loads(line)
            if "start" in command:
                pool.submit(start, command["start"])
            elif "complete" in command:
                pool.submit(complete, command["complete"], command["payload"])
            else:
                break


# -- triggerer --------------------------------------------------------------------------


def triggerer() -> None:
    import airflow.providers.amazon.aws.triggers.ecs  # noqa: F401  (before the baseline)

    import ml_platform.fargate  # noqa: F401

    async def run_one(index: int, classpath: str, kwargs: dict[str, Any]) -> None:
        trigger = import_string(classpath)(**kwargs)
        try:
            async for event in trigger.run():
                say(event=index, payload=event.payload)
                return
        except Exception as error:  # a trigger that raises fails its task, as in Airflow
            say(error=index, why=f"{type(error).__name__}: {error}")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        baseline = peak = rss_mb()
        say(ready=baseline)

        async def sample() -> None:  # memory while triggers wait, not only on arrivals
            while True:
                await asyncio.sleep(1)
                say(rss=rss_mb())

        sampler = asyncio.ensure_future(sample())
        running: set[asyncio.Task[None]] = set()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command = json.loads(line) if line else {}
            if "run" not in command:
                break
            task = loop.create_task(
                run_one(command["run"], command["classpath"], command["kwargs"])
            )
            running.add(task)
            task.add_done_callback(running.discard)
            peak = max(peak, rss_mb())
        sampler.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        say(memory={"baseline_mb": baseline, "peak_mb": max(peak, rss_mb())})

    asyncio.run(main())


if __name__ == "__main__":
    quiet()
    role = sys.argv[1]
    if role == "worker":
        worker(json.loads(sys.stdin.readline()))
    elif role == "triggerer":
        triggerer()
    else:
        raise SystemExit(f"role must be worker or triggerer, not {role!r}")
