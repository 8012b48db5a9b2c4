"""Print what `make synth` produced, per environment: stacks and their resources; each
job's schedule (UTC), size, fan-out, pool, capacity, retries and timeout; and each pool's
slots beside the jobs that share them; and the monthly cost estimate (``tools.job_costs``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ml_platform.contract import Manifest, S3Partitions, load_manifest
from tools import job_costs


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    out = [line.format(*header), line.format(*("-" * width for width in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


JOB_COLUMNS = ["job", "schedule (UTC)", "cpu/MiB", "partitions", "per task", "tasks/run",
               "pool", "capacity", "retries", "timeout/task"]  # fmt: skip


def _launch_plan(path: Path) -> str:
    """Busy minutes (UTC), those with the same launches on one row."""
    if not path.is_file():
        return ""
    rows: dict[tuple[int, str], list[str]] = {}
    for minute in json.loads(path.read_text()):
        latest = ", ".join(
            f"{job} ~{seconds:g} s" for job, seconds in minute["last_launch_seconds"].items()
        )
        rows.setdefault((minute["launches"], latest), []).append(minute["minute_utc"])
    table = [
        [", ".join(clocks) if len(clocks) <= 4 else f"{', '.join(clocks[:3])} +{len(clocks) - 3}",
         f"{launches:,}", latest]
        for (launches, latest), clocks in rows.items()
    ]  # fmt: skip
    header = ["busy minute (UTC)", "launches", "last chunk launched after"]
    return "\n\n" + _table(table, header) if table else ""


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _jobs(manifest: Manifest) -> tuple[list[list[str]], dict[str, list[str]]]:
    """One row per job, and each pool's jobs with the tasks a run gives it."""
    rows: list[list[str]] = []
    sharing: dict[str, list[str]] = {pool.name: [] for pool in manifest.pools}
    for job in manifest.jobs:
        if isinstance(job.partitions, S3Partitions):
            partitions, tasks = f"s3://{job.partitions.bucket}/{job.partitions.key}", "at run"
        else:
            count = len(job.partitions.values)
            partitions, tasks = str(count), str(-(-count // job.chunk_size))
        retry = job.retry
        rows.append(
            [
                job.name,
                job.schedule or "manual",
                f"{job.cpu}/{job.memory_mib}",
                partitions,
                str(job.chunk_size),
                tasks,
                job.pool,
                job.capacity.value,
                f"{retry.retries} x from {_minutes(retry.delay_seconds)}",
                _minutes(job.execution_timeout_seconds),
            ]
        )
        sharing[job.pool].append(f"{job.name} ({tasks} tasks/run, {job.pool_slots} slot each)")
    return rows, sharing


def summarize(outdir: Path) -> str:
    parts = []
    for manifest_path in sorted((outdir / "manifests").glob("*.json")):
        env = manifest_path.stem
        assembly = outdir / f"assembly-{env}"
        artifacts = json.loads((assembly / "manifest.json").read_text())["artifacts"]
        stacks = []
        alarms = 0
        for artifact in artifacts.values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
            name = artifact["properties"].get("stackName", artifact.get("displayName", ""))
            stacks.append([name, str(len(template["Resources"]))])
            alarms += sum(
                r["Type"] == "AWS::CloudWatch::Alarm" for r in template["Resources"].values()
            )
        manifest = load_manifest(manifest_path)
        jobs, sharing = _jobs(manifest)
        pools = [
            [pool.name, str(pool.slots), "; ".join(sharing[pool.name]) or "-"]
            for pool in manifest.pools
        ]
        parts.append(
            f"== environment {env}\n"
            + _table(stacks, ["stack", "resources"])
            + "\n\n"
            + _table(jobs, JOB_COLUMNS)
            + "\n\n"
            + _table(pools, ["pool", "slots", "shared by (a deferred task holds its slot)"])
            + _launch_plan(outdir / "launch-plans" / f"{env}.json")
            + "\n\nmonthly estimate\n"
            + job_costs.table(manifest, job_costs.airflow_month(env), alarms)
        )
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")))
