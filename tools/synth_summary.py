"""Print what `make synth` produced: stacks and resources per environment, and the jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ml_platform.contract import S3Partitions, load_manifest


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    out = [line.format(*header), line.format(*("-" * width for width in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def summarize(outdir: Path) -> str:
    parts = []
    for manifest_path in sorted((outdir / "manifests").glob("*.json")):
        env = manifest_path.stem
        assembly = outdir / f"assembly-{env}"
        artifacts = json.loads((assembly / "manifest.json").read_text())["artifacts"]
        stacks = []
        for artifact in artifacts.values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
            name = artifact["properties"].get("stackName", artifact.get("displayName", ""))
            stacks.append([name, str(len(template["Resources"]))])
        manifest = load_manifest(manifest_path)
        jobs = []
        for job in manifest.jobs:
            if isinstance(job.partitions, S3Partitions):
                fan_out = f"s3://{job.partitions.bucket}/{job.partitions.key} / {job.chunk_size}"
            else:
                count = len(job.partitions.values)
                fan_out = f"{count} / {job.chunk_size} = {-(-count // job.chunk_size)} tasks"
            jobs.append(
                [
                    job.name,
                    job.schedule or "manual",
                    f"{job.cpu}/{job.memory_mib}",
                    fan_out,
                    job.pool,
                    job.capacity.value,
                ]
            )
        parts.append(
            f"== environment {env}\n"
            + _table(stacks, ["stack", "resources"])
            + "\n\n"
            + _table(jobs, ["job", "schedule", "cpu/MiB", "fan-out", "pool", "capacity"])
        )
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")))
