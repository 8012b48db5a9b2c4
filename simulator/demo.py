"""`make demo`: the example jobs, end to end on 127.0.0.1, no AWS account needed.

Synthesized templates and manifest -> a local AWS endpoint with a simulated Fargate ->
a real Airflow 3 that runs each example DAG once -> a table per job.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from simulator.fargate import SimTask
from simulator.platform import LocalPlatform

RUN_ID = "demo-1"


def cap_partitions(count: int) -> Any:
    def customize(manifest: dict[str, Any]) -> None:
        for job in manifest["jobs"]:
            if job["partitions"]["kind"] == "static":
                job["partitions"]["values"] = job["partitions"]["values"][:count]

    return customize


def _events(log: str) -> list[str]:
    events = []
    for line in log.splitlines():
        try:
            events.append(str(json.loads(line).get("event", "")))
        except json.JSONDecodeError:
            events.append(line)
    return events


def report(platform: LocalPlatform, job: dict[str, Any], state: str, seconds: float) -> str:
    assert platform.airflow is not None
    name = job["name"]
    tasks: dict[tuple[int, int], SimTask] = {}
    for task in platform.simulator.tasks.values():
        tags = {t["key"]: t["value"] for t in task.tags}
        if tags.get("dag") == name and tags.get("run") == RUN_ID:
            tasks[(int(tags["chunk"]), int(tags["try"]))] = task
    lines = [
        f"== {name}: run {RUN_ID} {state} in {seconds:.0f} s "
        f"(pool {job['pool']}, {job['capacity']}, chunk size {job['chunk_size']})",
        f"{'chunk':>5}  {'try':>3}  {'state':<8}  {'fargate s':>9}  {'exit':>4}  partitions",
    ]
    for ti in platform.airflow.task_instances(name, RUN_ID):
        if ti["task_id"] != "run":
            continue
        found = tasks.get((ti["map_index"], ti["try_number"]))
        ran = (
            f"{found.stopped_at - found.started_at:9.1f}"
            if found and found.started_at and found.stopped_at
            else f"{'-':>9}"
        )
        partitions = (
            json.loads(
                next(
                    e["value"]
                    for e in found.overrides["containerOverrides"][0]["environment"]
                    if e["name"] == "ML_PARTITIONS"
                )
            )
            if found
            else []
        )
        lines.append(
            f"{ti['map_index']:>5}  {ti['try_number']:>3}  {ti['state']:<8}  {ran}  "
            f"{found.exit_code if found else '-':>4}  {', '.join(partitions)[:60]}"
        )
    model_lines = [
        e
        for e in _events(platform.airflow.task_log(name, RUN_ID, "run", 0))
        if e.startswith("[model]")
    ]
    lines.append("log excerpt, chunk 0 (CloudWatch stream, as copied into the Airflow task log):")
    lines += ["  " + re.sub(r"\s+", " ", line)[:150] for line in model_lines[:4]]
    summary = [
        e
        for e in _events(platform.airflow.task_log(name, RUN_ID, "summarize"))
        if e.startswith("job ")
    ]
    lines += [f"summary: {s}" for s in summary]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--env", default="dev")
    parser.add_argument(
        "--partitions",
        type=int,
        default=6,
        help="partitions per job (the examples have up to 2,000)",
    )
    parser.add_argument(
        "--start-latency",
        type=float,
        default=6.0,
        help="seconds from RunTask to RUNNING (>= 6, see LocalPlatform)",
    )
    parser.add_argument(
        "--run-seconds", type=float, default=2.0, help="each task stays RUNNING at least this long"
    )
    args = parser.parse_args(argv)
    if not (args.cdk_out / "manifests" / f"{args.env}.json").is_file():
        print(
            f"no {args.cdk_out}/manifests/{args.env}.json: run `make synth` first", file=sys.stderr
        )
        return 2
    started = time.monotonic()
    print(
        "starting the local AWS endpoint and Airflow (api-server, scheduler, "
        "dag-processor, triggerer) ...",
        flush=True,
    )
    with LocalPlatform(
        args.cdk_out,
        args.env,
        customize=cap_partitions(args.partitions),
        start_latency=args.start_latency,
        min_run_seconds=args.run_seconds,
    ) as platform:
        assert platform.airflow is not None
        print(
            f"ready in {time.monotonic() - started:.0f} s; Airflow home {platform.home}", flush=True
        )
        jobs = platform.manifest["jobs"]
        t0 = time.monotonic()
        for job in jobs:
            platform.airflow.trigger(job["name"], RUN_ID)
        states = {}
        for job in jobs:
            states[job["name"]] = platform.airflow.wait_for_run(job["name"], RUN_ID)
        seconds = time.monotonic() - t0
        print()
        for job in jobs:
            print(report(platform, job, states[job["name"]], seconds))
            print()
        calls = platform.simulator.metrics.calls
        print(
            f"simulated ECS calls: {json.dumps(calls)}; most tasks running at once: "
            f"{platform.simulator.metrics.max_running}"
        )
    return 0 if all(state == "success" for state in states.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
