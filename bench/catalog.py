"""`make bench-catalog`: an environment with 1,000 jobs, as 10 groups and as 1 group.

Each job is an ordinary ``MlJob`` (one of the example models' images, its own sizes,
schedule and partitions), declared through the same ``build_app`` + ``synth`` that
``app.py`` runs, cdk-nag and the quota checks included. Each layout runs in a fresh
process, so its peak RSS is its own. Beside it, a hand-written CDK app with the same
resources (the same L2 constructs per job, the same stacks, the same cdk-nag packs) and
none of the platform: the baseline the platform's synth time is held to.

    .venv/bin/python -m bench.catalog [--jobs 1000] [--groups 10,1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = ("location_forecast", "dynamic_pricing", "anomaly_detector")
SIZES = ((256, 512), (512, 1024), (1024, 2048), (2048, 4096))
SCHEDULES = ("@hourly", "0 */3 * * *", "15 * * * *", "@daily")
#: Airflow's role policies, per statement: what grows with the catalog if anything does.
AIRFLOW_ROLE = "MwaaExecutionRole"


def catalog_groups(jobs: int, groups: int) -> dict[str, Callable[[Any], None]]:
    """``groups`` job groups holding ``jobs`` jobs between them, as jobs/ would declare."""
    from aws_cdk import Duration

    from constructs_lib.job import JobImage, MlJob, Partitions

    def group(number: int) -> Callable[[Any], None]:
        def declare(stack: Any) -> None:
            for index in range(number, jobs, groups):
                cpu, memory = SIZES[index % len(SIZES)]
                MlJob(
                    stack,
                    f"Model{index:04d}",
                    platform=stack.platform,
                    name=f"model-{index:04d}",
                    description=f"generated model {index}",
                    team=f"team-{number:02d}",
                    image=JobImage.from_model(MODELS[index % len(MODELS)]),
                    cpu=cpu,
                    memory_mib=memory,
                    schedule=SCHEDULES[index % len(SCHEDULES)],
                    partitions=Partitions.static([f"p-{p:03d}" for p in range(1 + index % 50)]),
                    chunk_size=1 + index % 5,
                    retries=index % 4,
                    execution_timeout=Duration.minutes(10 + index % 50),
                )

        return declare

    return {f"g{number:02d}": group(number) for number in range(groups)}


# -- figures of one synthesized assembly --------------------------------------------------


def assembly_figures(outdir: Path) -> dict[str, Any]:
    templates = sorted(outdir.glob("assembly-*/*.template.json"))
    largest_resources = max(templates, key=lambda p: len(json.loads(p.read_text())["Resources"]))
    largest_bytes = max(templates, key=lambda p: p.stat().st_size)
    airflow = json.loads(next(p for p in templates if "Airflow" in p.name).read_text())
    role_policies = [
        r
        for r in airflow["Resources"].values()
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        and AIRFLOW_ROLE in json.dumps(r["Properties"].get("Roles", []))
    ]
    return {
        "stacks": len(templates),
        "job_stacks": sum("Jobs" in p.name for p in templates),
        "largest_stack_resources": len(json.loads(largest_resources.read_text())["Resources"]),
        "largest_stack_resources_name": largest_resources.stem.removesuffix(".template"),
        "largest_stack_kib": round(largest_bytes.stat().st_size / 1024, 1),
        "largest_stack_kib_name": largest_bytes.stem.removesuffix(".template"),
        "airflow_role_policy_bytes": sum(
            len(json.dumps(p["Properties"]["PolicyDocument"], separators=(",", ":")))
            for p in role_policies
        ),
        "airflow_role_managed_policies": sum(
            p["Type"] == "AWS::IAM::ManagedPolicy" for p in role_policies
        ),
    }


# -- one measured synth, in its own process -----------------------------------------------


def synth_platform(jobs: int, groups: int, outdir: Path) -> dict[str, Any]:
    from config import ENVIRONMENTS
    from stacks.platform_app import build_app, synth

    app, stages = build_app(
        {"dev": ENVIRONMENTS["dev"]}, catalog_groups(jobs, groups), outdir=str(outdir)
    )
    synth(app, stages)
    manifest = outdir / "manifests" / "dev.json"
    return {"manifest": str(manifest), **assembly_figures(outdir)}


def handwritten_groups(jobs: int, groups: int) -> dict[str, Callable[[Any], None]]:
    """The same jobs as ``catalog_groups`` without ``MlJob``: the L2 constructs it makes,
    with the same properties, tags and cdk-nag acknowledgements, written out by hand into
    the same stacks. No checks, no manifest entry, no grants to Airflow."""
    import aws_cdk as cdk
    from aws_cdk import aws_ecr_assets as ecr_assets
    from aws_cdk import aws_ecs as ecs
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_logs as logs
    from constructs import Construct

    from constructs_lib import defaults
    from constructs_lib.acknowledgements import NIST, ONE_ROLE_POLICY, acknowledge
    from constructs_lib.image_build import ImageBuild

    def group(number: int) -> Callable[[Any], None]:
        def declare(stack: Any) -> None:
            platform = stack.platform
            env = platform.environment
            for index in range(number, jobs, groups):
                name = f"model-{index:04d}"
                cpu, memory = SIZES[index % len(SIZES)]
                job = Construct(stack.home_of(name), f"Model{index:04d}")
                log_group = logs.LogGroup(
                    job,
                    "Logs",
                    log_group_name=f"{platform.log_group_prefix}{name}",
                    retention=defaults.retention(env.log_retention_days),
                    encryption_key=platform.log_key,
                    removal_policy=defaults.removal(env.removal_policy),
                )
                task_role, execution_role = (
                    iam.Role(
                        job,
                        kind,
                        assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                        path=platform.role_path,
                        description=f"{name}: {kind}",
                    )
                    for kind in ("TaskRole", "ExecutionRole")
                )
                definition = ecs.FargateTaskDefinition(
                    job,
                    "TaskDefinition",
                    family=f"{env.prefix}-{name}",
                    cpu=cpu,
                    memory_limit_mib=memory,
                    runtime_platform=ecs.RuntimePlatform(
                        cpu_architecture=ecs.CpuArchitecture.X86_64,
                        operating_system_family=ecs.OperatingSystemFamily.LINUX,
                    ),
                    task_role=task_role,
                    execution_role=execution_role,
                )
                definition.add_container(
                    "Model",
                    container_name=defaults.CONTAINER_NAME,
                    image=ecs.ContainerImage.from_asset(
                        str(REPO / "models"),
                        file="Dockerfile",
                        build_args={"MODEL": MODELS[index % len(MODELS)]},
                        exclude=list(ImageBuild.model(MODELS[index % len(MODELS)]).exclude),
                        ignore_mode=cdk.IgnoreMode.DOCKER,
                        platform=ecr_assets.Platform.LINUX_AMD64,
                    ),
                    memory_limit_mib=memory,
                    environment={"ML_JOB_NAME": name, "ML_ENVIRONMENT": env.name},
                    logging=ecs.LogDrivers.aws_logs(
                        stream_prefix=defaults.LOG_STREAM_PREFIX, log_group=log_group
                    ),
                )
                for key, value in {"team": f"team-{number:02d}", "job": name}.items():
                    cdk.Tags.of(job).add(key, value)
                acknowledge(job, "IAMNoInlinePolicy", ONE_ROLE_POLICY, pack=NIST)
                acknowledge(definition, "ECS2", "Plain variables are non-secret settings.")
                acknowledge(execution_role, "IAM5", resource="*", reason="ecr auth token.")

        return declare

    return {f"g{number:02d}": group(number) for number in range(groups)}


def synth_handwritten(jobs: int, groups: int, outdir: Path) -> dict[str, Any]:
    """The same app, stacks and checks, with the jobs written by hand."""
    from config import ENVIRONMENTS
    from stacks.platform_app import build_app, synth

    app, stages = build_app(
        {"dev": ENVIRONMENTS["dev"]}, handwritten_groups(jobs, groups), outdir=str(outdir)
    )
    synth(app, stages)
    return assembly_figures(outdir)


def child(kind: str, jobs: int, groups: int) -> None:
    """Run one synth in this process; print its figures as a JSON line."""
    os.chdir(REPO)  # job image folders are relative to the repository root
    outdir = Path(tempfile.mkdtemp(prefix=f"mlp-catalog-{kind}-"))
    started = time.perf_counter()
    figures = (synth_platform if kind == "platform" else synth_handwritten)(jobs, groups, outdir)
    print(json.dumps({"synth_s": round(time.perf_counter() - started, 1), **figures}))


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and its descendants (Python and jsii's Node)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0]) if "VmRSS:" in status else 0
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def measure(kind: str, jobs: int, groups: int) -> dict[str, Any]:
    """One synth in a fresh process, its tree's resident memory sampled every 0.1 s."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.catalog", "--child", kind, "--jobs", str(jobs),
         "--groups", str(groups)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_kib(process.pid))
        time.sleep(0.1)
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{kind} synth of {jobs} jobs in {groups} group(s) failed:\n{err}")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mib": peak // 1024}


def parse_seconds(manifest: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "tools.parse_time", str(manifest), "--repeat", "3", "--json"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(json.loads(out.strip().splitlines()[-1])["median_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--groups", default="10,1", help="layouts to measure, comma-separated")
    parser.add_argument("--child", choices=("platform", "handwritten"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.jobs, int(args.groups))
        return
    reference = measure("platform", 3, 1)["airflow_role_policy_bytes"]
    rows = []
    for groups in (int(g) for g in args.groups.split(",")):
        platform = measure("platform", args.jobs, groups)
        baseline = measure("handwritten", args.jobs, groups)
        rows.append(
            {
                "jobs": args.jobs,
                "groups": groups,
                **{k: v for k, v in platform.items() if k != "manifest"},
                "handwritten_synth_s": baseline["synth_s"],
                "handwritten_peak_rss_mib": baseline["peak_rss_mib"],
                "synth_vs_handwritten": round(platform["synth_s"] / baseline["synth_s"], 2),
                "dag_parse_s": parse_seconds(Path(platform["manifest"])),
            }
        )
    columns = [
        ("groups", "groups"), ("stacks", "stacks"), ("synth_s", "synth s"),
        ("handwritten_synth_s", "hand-written s"), ("synth_vs_handwritten", "ratio"),
        ("peak_rss_mib", "peak RSS MiB"), ("largest_stack_resources", "max resources"),
        ("largest_stack_kib", "max KiB"), ("airflow_role_policy_bytes", "Airflow policy B"),
        ("airflow_role_managed_policies", "managed policies"), ("dag_parse_s", "DAG parse s"),
    ]  # fmt: skip
    widths = [max(len(title), *(len(str(r[key])) for r in rows)) for key, title in columns]
    print(
        f"{args.jobs} jobs, environment dev (targets: < 500 resources, < 1024 KiB, ratio <= "
        "1.25, peak RSS <= 4096 MiB, DAG parse <= 2 s, Airflow policy as with 3 jobs)"
    )
    print("  ".join(t.ljust(w) for (_, t), w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(row[k]).ljust(w) for (k, _), w in zip(columns, widths, strict=True)))
    print(f"Airflow role policy with 3 jobs: {reference} B")
    print(json.dumps({"catalog": rows, "airflow_role_policy_bytes_3_jobs": reference}))


if __name__ == "__main__":
    main()
