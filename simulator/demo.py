"""`make demo`: the example jobs, end to end on 127.0.0.1, no AWS account needed.

Synthesized templates and manifest -> a local AWS endpoint with a simulated Fargate ->
a real Airflow 3 (MWAA's runtime and layout) that runs each example DAG once -> a table
per job, printed as the job finishes.

The demo stops following a job at its first failed chunk: it prints the failure as the
Airflow task log shows it (exit code, reason, the container's last lines), goes on with
the other jobs and exits 1 naming the job. Retries are capped for the
demo (``--retries``, 0 by default) so that a broken model shows at once.

    make demo [JOB=dynamic-pricing] [PARTITIONS=3 | PARTITIONS=market-001,market-002]
              [BACKEND=self-hosted]

``BACKEND=self-hosted`` runs the same DAGs on the self-hosted backend instead: the
Airflow image's components as containers against PostgreSQL (``simulator.selfhosted``),
for the environment that deploys it (prod, unless ``--env`` says otherwise).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.fargate import SimTask
from simulator.platform import LocalPlatform

RUN_ID = "demo-1"


def demo_manifest(
    jobs: list[str], partitions: str, retries: int
) -> Callable[[dict[str, Any]], None]:
    """Keep the chosen jobs; cut their partitions (a count, or the values themselves);
    cap their retries so that a failure shows at once."""

    def customize(manifest: dict[str, Any]) -> None:
        manifest["jobs"] = [job for job in manifest["jobs"] if not jobs or job["name"] in jobs]
        for job in manifest["jobs"]:
            if partitions.isdigit():
                if job["partitions"]["kind"] == "static":
                    job["partitions"]["values"] = job["partitions"]["values"][: int(partitions)]
            else:
                values = [value for value in partitions.split(",") if value]
                job["partitions"] = {"kind": "static", "values": values}
            job["retry"] = {
                "retries": min(retries, job["retry"]["retries"]),
                "delay_seconds": 1,
                "exponential_backoff": False,
                "max_delay_seconds": 1,
            }

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
        f"{'chunk':>5}  {'try':>3}  {'state':<8}  {'fargate s':>9}  {'exit':>4}  "
        f"{'image (container)':<17}  partitions",
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
        # The image the task's container ran, as the engine reports it.
        image = getattr(found.container, "image_id", "") if found else ""
        lines.append(
            f"{ti['map_index']:>5}  {ti['try_number']:>3}  {ti['state']:<8}  {ran}  "
            f"{found.exit_code if found else '-':>4}  {image[:12] or '-':<17}  "
            f"{', '.join(partitions)[:60]}"
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
    note = platform.airflow.dag_run(name, RUN_ID).get("note")
    if note:
        lines.append("DAG run note: " + " | ".join(note.split("\n\n")))
    return "\n".join(lines)


def first_failure(platform: LocalPlatform, name: str) -> tuple[str, str] | None:
    """The first failed chunk of ``name``'s run, as (which chunk, the message the user
    reads in its task log), or None."""
    assert platform.airflow is not None
    for ti in platform.airflow.task_instances(name, RUN_ID):
        if ti["task_id"] == "run" and ti["state"] == "failed":
            message = platform.airflow.failure_message(
                name, RUN_ID, "run", ti["map_index"], ti["try_number"]
            )
            return f"chunk {ti['map_index']}, try {ti['try_number']}", message
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument(
        "--backend",
        choices=LocalPlatform.BACKENDS,
        default="mwaa",
        help="mwaa: MWAA's runtime as local processes (default); self-hosted: the "
        "self-hosted image's containers",
    )
    parser.add_argument(
        "--env", default=None, help="environment (default: dev; prod for --backend self-hosted)"
    )
    parser.add_argument(
        "--job", action="append", default=[], help="run only this job (repeatable; default: all)"
    )
    parser.add_argument(
        "--partitions",
        default="6",
        help="a number: the first N partitions of each job; else comma-separated values "
        "that replace the job's partitions (default: 6)",
    )
    parser.add_argument(
        "--retries", type=int, default=0, help="retries per chunk at most (default: 0)"
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
    args.env = args.env or ("prod" if args.backend == "self-hosted" else "dev")
    if not (args.cdk_out / "manifests" / f"{args.env}.json").is_file():
        print(
            f"no {args.cdk_out}/manifests/{args.env}.json: run `make synth` first", file=sys.stderr
        )
        return 2
    synthesized = json.loads((args.cdk_out / "manifests" / f"{args.env}.json").read_text())
    known = [job["name"] for job in synthesized["jobs"]]
    unknown = sorted(set(args.job) - set(known))
    if unknown:
        print(f"demo: no job {unknown} in environment {args.env!r}; jobs: {known}", file=sys.stderr)
        return 2
    started = time.monotonic()
    how = (
        "the self-hosted Airflow image's containers (init, then api-server, scheduler, "
        "dag-processor, triggerer) against PostgreSQL"
        if args.backend == "self-hosted"
        else "Airflow (api-server, scheduler, dag-processor, triggerer)"
    )
    print(
        f"starting the local AWS endpoint and {how} for {args.env!r}; retries capped at "
        f"{args.retries} for the demo ...",
        flush=True,
    )
    with LocalPlatform(
        args.cdk_out,
        args.env,
        customize=demo_manifest(args.job, args.partitions, args.retries),
        start_latency=args.start_latency,
        min_run_seconds=args.run_seconds,
        backend=args.backend,
    ) as platform:
        airflow = platform.airflow
        assert airflow is not None
        print(f"ready in {time.monotonic() - started:.0f} s; Airflow home {platform.home}")
        jobs = {job["name"]: job for job in platform.manifest["jobs"]}
        t0 = time.monotonic()
        for name in jobs:
            airflow.trigger(name, RUN_ID)
        failed: dict[str, tuple[str, str]] = {}
        pending = dict(jobs)
        while pending:
            for name, job in list(pending.items()):
                (run,) = airflow.query(
                    "select state from dag_run where dag_id=%s and run_id=%s", name, RUN_ID
                )
                failure = first_failure(platform, name)
                finished = run["state"] in ("success", "failed")
                if failure is None and not finished:
                    continue
                state = str(run["state"]) if finished else "stopped at its first failed chunk,"
                print()
                print(report(platform, job, state, time.monotonic() - t0), flush=True)
                if failure:
                    failed[name] = failure
                    where, message = failure
                    print(f"first failure, {where}, as its task log shows it:")
                    print("\n".join(f"  {line}" for line in message.splitlines()), flush=True)
                del pending[name]
            time.sleep(1)
        calls = platform.simulator.metrics.calls
        print(
            f"\nsimulated ECS calls: {json.dumps(calls)}; most tasks running at once: "
            f"{platform.simulator.metrics.max_running}"
        )
    if failed:
        for name, (where, message) in failed.items():
            head = message.splitlines()[0] if message else "no message in the task log"
            print(f"demo: job {name!r} failed ({where}): {head}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
