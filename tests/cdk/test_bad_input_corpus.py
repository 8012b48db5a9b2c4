"""The bad-input corpus: malformed jobs, pools and environments, each refused through the
real app build before any template is written, naming the job or environment, the field
and what is allowed. A coverage test keeps the corpus in step with the declarations."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ecs as ecs

from config import (
    ENVIRONMENTS,
    AirflowDatabase,
    AirflowUi,
    Capacity,
    ConfigError,
    EnvironmentConfig,
    Pool,
    RemovalPolicy,
    SelfHostedAirflowConfig,
    ServiceSize,
)
from constructs_lib.job import JobConfigError, JobImage, MlJob, Partitions
from stacks.jobs_stack import JobsStack
from stacks.platform_app import build_app, synth

DEV = ENVIRONMENTS["dev"]
JOB = "corpus-job"


@dataclass(frozen=True)
class Bad:
    covers: str
    """The declaration field this entry gets wrong (``network.cidr``, ``pools.slots``)."""
    allowed: str
    """What the error must say is allowed."""
    job: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    names: str = ""
    """The field as the error names it, when it differs from ``covers``."""


def net(**kw: Any) -> dict[str, Any]:
    return {"network": replace(DEV.network, **kw)}


def air(**kw: Any) -> dict[str, Any]:
    return {"airflow": replace(DEV.airflow, **kw)}


def hosted(**kw: Any) -> dict[str, Any]:
    """dev on the self-hosted backend, one field changed."""
    return {"airflow": replace(SelfHostedAirflowConfig(), **kw)}


def database(**kw: Any) -> dict[str, Any]:
    return hosted(database=replace(AirflowDatabase(), **kw))


def ui(**kw: Any) -> dict[str, Any]:
    return hosted(ui=replace(AirflowUi(), **kw))


def budget(**kw: Any) -> dict[str, Any]:
    return {"ecs_budget": replace(DEV.ecs_budget, **kw)}


def compute(**kw: Any) -> dict[str, Any]:
    return {"compute": replace(DEV.compute, **kw)}


def monitoring(**kw: Any) -> dict[str, Any]:
    return {"monitoring": replace(DEV.monitoring, **kw)}


def pools(*extra: Pool) -> dict[str, Any]:
    return {"pools": (*DEV.pools, *extra)}


LOG_DAYS = "allowed: (1, 3, 5, 7, 14"
JOBS = [
    Bad("name", "lowercase letters, digits and single hyphens", job={"name": "Bad_Name"}),
    Bad("image", "JobImage.from_model", job={"image": "models/dynamic_pricing"}),
    Bad("image", "no Dockerfile in 'tests'", job={"image": JobImage.from_directory("tests")}),
    Bad("image", "no model package 'models/nope/nope'", job={"image": JobImage.from_model("nope")}),
    Bad("team", "name the owning team", job={"team": ""}),
    Bad("team", "must be 0-256 of letters", job={"team": "pricing|ops"}),
    Bad("description", "one line of at most 256", job={"description": "two\nlines"}),
    Bad("command", "list of strings", job={"command": "--horizon 24"}),
    Bad("cpu", "256, 512, 1024, 2048, 4096, 8192, 16384", job={"cpu": 300}),
    Bad("memory_mib", "[512, 1024, 2048]", job={"cpu": 256, "memory_mib": 4096}),
    Bad("ephemeral_storage_gib", "21-200", job={"ephemeral_storage_gib": 10}),
    Bad("cpu_architecture", "ecs.CpuArchitecture.X86_64 or .ARM64",
        job={"cpu_architecture": "arm64"}),
    Bad("environment", "pass it in 'secrets'", job={"environment": {"DB_PASSWORD": "x"}}),
    Bad("environment", "is set by the platform", job={"environment": {"ML_PARTITIONS": "x"}}),
    Bad("secrets", "must be an ecs.Secret", job={"secrets": {"DB_URL": "postgres://x"}}),
    Bad("schedule", "'@hourly'", job={"schedule": "every hour"}),
    Bad("schedule", "the minute field '61' is not valid (allowed: 0-59)",
        job={"schedule": "61 * * * *"}),
    Bad("partitions", "Partitions.static", job={"partitions": ["a", "b"]}),
    Bad("partitions", "at least one", job={"partitions": Partitions.static([])}),
    Bad("chunk_size", "must be an integer >= 1", job={"chunk_size": 0}),
    Bad("chunk_size", "'auto' needs a start_window", job={"chunk_size": "auto"}),
    Bad("start_window", "must be 1 s to 60 min", job={"start_window": cdk.Duration.hours(2)}),
    Bad("start_window", "a cdk.Duration or None", job={"start_window": 60}),
    Bad("chunk_size", "raise chunk_size",
        job={"partitions": Partitions.static([f"p{i}" for i in range(5000)])}),
    Bad("pool", "declared: ['forecast', 'pricing', 'batch']", job={"pool": "gpu"}),
    Bad("pool_slots", "must be 1-20", job={"pool": "pricing", "pool_slots": 21}),
    Bad("retries", "must be 0-10", job={"retries": 11}),
    Bad("retry_delay", "a cdk.Duration", job={"retry_delay": 300}),
    Bad("retry_exponential_backoff", "True or False", job={"retry_exponential_backoff": "yes"}),
    Bad("max_retry_delay", "at least retry_delay",
        job={"retry_delay": cdk.Duration.minutes(10), "max_retry_delay": cdk.Duration.minutes(1)}),
    Bad("execution_timeout", "at least 60 s",
        job={"execution_timeout": cdk.Duration.seconds(10)}),
    Bad("max_active_runs", "must be 1-16", job={"max_active_runs": 0}),
    Bad("launch_weight", "above 0 and at most 100", job={"launch_weight": 0}),
    Bad("expected_chunk_time", "cannot be expected to outlast its timeout",
        job={"expected_chunk_time": cdk.Duration.hours(2)}),
    Bad("expected_chunk_time", "a cdk.Duration or None", job={"expected_chunk_time": 300}),
    Bad("max_start_delay", "must be 0 s to 60 min", job={"max_start_delay": cdk.Duration.hours(3)}),
    Bad("max_start_delay", "a cdk.Duration or None", job={"max_start_delay": "5m"}),
    Bad("capacity", "'on-demand', 'spot', 'spot-with-fallback'", job={"capacity": "cheap"}),
    # Rules ECS would only apply at RunTask or RegisterTaskDefinition.
    Bad("capacity", "allowed for ARM64: 'on-demand'",
        job={"capacity": Capacity.SPOT, "cpu_architecture": ecs.CpuArchitecture.ARM64}),
    Bad("chunk_size", "ECS allows 8192",
        job={"partitions": Partitions.static([f"store-{i:04d}-" + "x" * 200 for i in range(40)]),
             "chunk_size": 40}),
    Bad("tags", "ECS allows 50 per task", job={"tags": {f"k{i}": "v" for i in range(45)}}),
    Bad("environment", "ECS allows 65536",
        job={"environment": {f"SETTING_{i}": "x" * 1000 for i in range(70)}}),
    Bad("cost_center", "must be 0-256 of letters", job={"cost_center": "cc|2001"}),
    Bad("tags", "not starting with 'aws:'", job={"tags": {"aws:owner": "x"}}),
    Bad("tags", "must be 0-256", job={"tags": {"note": "x" * 300}}),
]  # fmt: skip

ENVS = [
    Bad("name", "2-12 lowercase letters/digits", env={"name": "Prod!"}),
    Bad("account", "set both or neither", env={"account": "123456789012"},
        names="account'/'region"),
    Bad("account", "must be 12 digits", env={"account": "123", "region": "eu-west-1"}),
    Bad("region", "not an AWS region", env={"account": "123456789012", "region": "mars-1"}),
    Bad("network.vpc_id", "vpc-xxxxxxxx", env=net(vpc_id="vpc-1")),
    Bad("network.vpc_id", "needs 'account' and 'region'", env=net(vpc_id="vpc-0123456789abcdef0")),
    Bad("network.cidr", "/16 to /24", env=net(cidr="10.0.0.0/8")),
    Bad("network.max_azs", "MWAA needs two AZs", env=net(max_azs=1)),
    Bad("network.nat_gateways", "must be 0-2", env=net(nat_gateways=3)),
    Bad("network.interface_endpoints", "cannot pull images", env=net(interface_endpoints=False)),
    Bad("network.flow_log_retention_days", LOG_DAYS, env=net(flow_log_retention_days=2)),
    Bad("compute.default_capacity", "'spot-with-fallback'", env=compute(default_capacity="cheap")),
    Bad("monitoring.alarm_emails", "is not an email address",
        env=monitoring(alarm_emails=("on-call",))),
    Bad("monitoring.run_time_alarm_factor", "above 1 and at most 100",
        env=monitoring(run_time_alarm_factor=1)),
    Bad("monitoring.throttled_calls_per_minute", "whole number >= 1",
        env=monitoring(throttled_calls_per_minute=0)),
    Bad("compute.enhanced_container_insights", "True or False",
        env=compute(enhanced_container_insights="yes")),
    Bad("airflow.version", "not in the MWAA version table", env=air(version="2.10.3")),
    Bad("airflow.environment_class", "mw1.micro", env=air(environment_class="mw1.huge")),
    Bad("airflow.min_workers", "1 <= min <= max <= 25", env=air(min_workers=5, max_workers=2),
        names="airflow.min_workers'/'max_workers"),
    Bad("airflow.max_workers", "1 <= min <= max <= 25", env=air(max_workers=30),
        names="airflow.min_workers'/'max_workers"),
    Bad("airflow.schedulers", "must be 2-5", env=air(schedulers=1)),
    Bad("airflow.schedulers", "mw1.micro runs exactly 1",
        env=air(environment_class="mw1.micro", schedulers=2)),
    Bad("airflow.webserver_access", "WebserverAccess.PRIVATE", env=air(webserver_access="public")),
    Bad("airflow.max_map_length", "must be 1-100000", env=air(max_map_length=0)),
    Bad("airflow.triggerer_capacity", "must be 1-10000", env=air(triggerer_capacity=0)),
    Bad("airflow.weekly_maintenance_window_start", "'SUN:03:00'",
        env=air(weekly_maintenance_window_start="Sunday 3am")),
    Bad("airflow.log_level", "CRITICAL, ERROR, WARNING, INFO, DEBUG", env=air(log_level="LOUD")),
    Bad("airflow", "MwaaConfig or SelfHostedAirflowConfig", env={"airflow": "mwaa"}),
    Bad("self_hosted.version", "has no pinned runtime", env=hosted(version="2.10.3"),
        names="airflow.version"),
    Bad("self_hosted.max_map_length", "must be 1-100000", env=hosted(max_map_length=0),
        names="airflow.max_map_length"),
    Bad("self_hosted.triggerer_capacity", "must be 1-10000", env=hosted(triggerer_capacity=0),
        names="airflow.triggerer_capacity"),
    Bad("self_hosted.min_triggerers", "1 <= min <= max <= 20", env=hosted(min_triggerers=0),
        names="airflow.min_triggerers'/'max_triggerers"),
    Bad("self_hosted.max_triggerers", "hold up to 80 deferred tasks but 1 triggerers x "
        "capacity 10 watch only 10",
        env=hosted(min_triggerers=1, max_triggerers=1, triggerer_capacity=10),
        names="airflow.max_triggerers"),
    Bad("self_hosted.triggerer_cpu_target_percent", "must be 20-90",
        env=hosted(triggerer_cpu_target_percent=99), names="airflow.triggerer_cpu_target_percent"),
    Bad("self_hosted.schedulers", "must be 1-4", env=hosted(schedulers=0),
        names="airflow.schedulers"),
    Bad("self_hosted.api_servers", "must be 1-10", env=hosted(api_servers=0),
        names="airflow.api_servers"),
    Bad("self_hosted.parallelism", "must be 1-256", env=hosted(parallelism=0),
        names="airflow.parallelism"),
    Bad("self_hosted.api_server_size", "not a Fargate size",
        env=hosted(api_server_size=ServiceSize(1000, 2048)), names="airflow.api_server_size"),
    Bad("self_hosted.scheduler_size", "not a Fargate size",
        env=hosted(scheduler_size=ServiceSize(2048, 1024)), names="airflow.scheduler_size"),
    Bad("self_hosted.dag_processor_size", "not a Fargate size",
        env=hosted(dag_processor_size=ServiceSize(256, 4096)), names="airflow.dag_processor_size"),
    Bad("self_hosted.triggerer_size", "not a Fargate size",
        env=hosted(triggerer_size=ServiceSize(512, 512)), names="airflow.triggerer_size"),
    Bad("self_hosted.admin_username", "2-64 lowercase letters", env=hosted(admin_username="Root!"),
        names="airflow.admin_username"),
    Bad("self_hosted.log_level", "CRITICAL, ERROR", env=hosted(log_level="LOUD"),
        names="airflow.log_level"),
    Bad("self_hosted.database.instance_class", "t4g.micro", env=database(instance_class="big"),
        names="airflow.database.instance_class"),
    Bad("self_hosted.database.postgres_version", "such as '16.13'",
        env=database(postgres_version="9.6.1"), names="airflow.database.postgres_version"),
    Bad("self_hosted.database.allocated_storage_gib", "must be 20-1000",
        env=database(allocated_storage_gib=5), names="airflow.database.allocated_storage_gib"),
    Bad("self_hosted.database.backup_retention_days", "must be 1-35",
        env=database(backup_retention_days=0), names="airflow.database.backup_retention_days"),
    Bad("self_hosted.database.multi_az", "needs multi_az=True",
        env={**database(multi_az=False), "removal_policy": RemovalPolicy.RETAIN},
        names="airflow.database"),
    Bad("self_hosted.database.deletion_protection", "deletion_protection=True",
        env={**database(deletion_protection=False), "removal_policy": RemovalPolicy.RETAIN},
        names="airflow.database"),
    Bad("self_hosted.ui.certificate_parameter", "starting with '/'",
        env=ui(certificate_parameter="arn"), names="airflow.ui.certificate_parameter"),
    Bad("self_hosted.ui.domain_name", "is not a DNS name", env=ui(domain_name="not a name"),
        names="airflow.ui.domain_name"),
    Bad("self_hosted.ui.internet_facing", "network.nat_gateways >= 1",
        env=ui(internet_facing=True, allowed_cidrs=("203.0.113.0/24",)),
        names="airflow.ui.internet_facing"),
    Bad("self_hosted.ui.allowed_cidrs", "opens the UI to every address",
        env=ui(allowed_cidrs=("0.0.0.0/0",)), names="airflow.ui.allowed_cidrs"),
    Bad("ecs_budget.launch_rate", "less than or equal to 20", env=budget(launch_rate=50)),
    Bad("ecs_budget.launch_burst", "less than or equal to 100", env=budget(launch_burst=500)),
    Bad("ecs_budget.read_rate", "greater than 0", env=budget(read_rate=0)),
    Bad("ecs_budget.read_burst", "greater than or equal to 1", env=budget(read_burst=0)),
    Bad("ecs_budget.log_rate", "less than or equal to 5", env=budget(log_rate=6)),
    Bad("ecs_budget.log_burst", "less than or equal to 5", env=budget(log_burst=20)),
    Bad("ecs_budget.stop_rate", "less than or equal to 20", env=budget(stop_rate=100)),
    Bad("ecs_budget.stop_burst", "greater than or equal to 1", env=budget(stop_burst=0)),
    Bad("ecs_budget.poll_interval", "greater than or equal to 1", env=budget(poll_interval=0.5)),
    Bad("ecs_budget.log_lines", "greater than or equal to 1", env=budget(log_lines=0)),
    Bad("ecs_budget.log_wait_seconds", "less than or equal to 60",
        env=budget(log_wait_seconds=600)),
    Bad("ecs_budget.launch_deadline_seconds", "greater than or equal to 60",
        env=budget(launch_deadline_seconds=5)),
    Bad("log_retention_days", LOG_DAYS, env={"log_retention_days": 10}),
    Bad("removal_policy", "RemovalPolicy.DESTROY", env={"removal_policy": "delete"}),
    Bad("pools", "declare at least one pool", env={"pools": ()}),
    Bad("pools", "declared twice", env={"pools": DEV.pools + DEV.pools[:1]}),
    Bad("pools.name", "^[A-Za-z0-9_.-]{1,50}$", env=pools(Pool("b a d", 1)), names="name"),
    Bad("pools.slots", "less than or equal to 10000", env=pools(Pool("gpu", 10_001)),
        names="slots"),
    Bad("pools.description", "at most 200 characters", env=pools(Pool("gpu", 1, "x" * 201)),
        names="description"),
    Bad("pools.include_deferred", "Input should be True",
        env=pools(Pool("gpu", 1, include_deferred=False)),  # type: ignore[arg-type]
        names="include_deferred"),
    Bad("default_pool", "declared: ['forecast', 'pricing', 'batch']", env={"default_pool": "gpu"}),
    Bad("tags", "not starting with 'aws:'", env={"tags": {"aws:x": "y"}}),
]  # fmt: skip


def declare_one(overrides: dict[str, Any]) -> Any:
    def declare(stack: JobsStack) -> None:
        props: dict[str, Any] = {
            "name": JOB,
            "team": "tests",
            "image": JobImage.from_model("dynamic_pricing"),
            "schedule": "@hourly",
            "partitions": Partitions.static(["a", "b"]),
        }
        MlJob(stack, "Job", platform=stack.platform, **(props | overrides))

    return declare


def build_and_synth(bad: Bad, outdir: Path) -> None:
    """What `cdk synth` runs (app.py), with one bad declaration."""
    environment = replace(DEV, **bad.env)
    app, stages = build_app(
        {environment.name: environment}, {"corpus": declare_one(bad.job)}, outdir=str(outdir)
    )
    synth(app, stages)


@pytest.mark.parametrize(
    "bad", JOBS + ENVS, ids=lambda bad: f"{'job' if bad.job else 'env'}-{bad.covers}"
)
def test_bad_input_is_refused_before_any_template_is_written(bad: Bad, tmp_path: Path) -> None:
    outdir = tmp_path / "cdk.out"
    with pytest.raises((ConfigError, JobConfigError)) as caught:
        build_and_synth(bad, outdir)
    message = str(caught.value)
    if bad.job:
        name = bad.job.get("name", JOB)
        assert f"job {name!r} in environment 'dev' is invalid" in message, message
    else:
        assert f"environment {bad.env.get('name', 'dev')!r} is invalid" in message, message
    assert f"field '{bad.names or bad.covers}'" in message, message
    assert bad.allowed in message, message
    assert not [p for p in outdir.rglob("*") if p.is_file()], "something was written"


def test_the_corpus_covers_every_declared_field() -> None:
    job_fields = set(inspect.signature(MlJob.__init__).parameters) - {
        "self", "scope", "id", "platform"
    }  # fmt: skip
    nested = {"network", "compute", "airflow", "ecs_budget", "monitoring"}
    env_fields = {f.name for f in dataclasses.fields(EnvironmentConfig)} - nested
    for name in nested:
        kind = type(getattr(DEV, name))
        env_fields |= {f"{name}.{f.name}" for f in dataclasses.fields(kind)}
    env_fields |= {f"pools.{f.name}" for f in dataclasses.fields(Pool)}
    # The other backend's fields, and those of its nested settings.
    env_fields |= {"airflow"} | {
        f"self_hosted.{f.name}"
        for f in dataclasses.fields(SelfHostedAirflowConfig)
        if f.name not in ("database", "ui")
    }
    for name, kind in (("database", AirflowDatabase), ("ui", AirflowUi)):
        env_fields |= {f"self_hosted.{name}.{f.name}" for f in dataclasses.fields(kind)}
    assert job_fields - {bad.covers for bad in JOBS} == set()
    assert env_fields - {bad.covers for bad in ENVS} == set()
    assert len(JOBS) + len(ENVS) >= 30


def test_a_good_declaration_synthesizes(tmp_path: Path) -> None:
    """The corpus's baseline is valid, so each entry fails for its own reason."""
    build_and_synth(Bad("", "", job={"cpu_architecture": ecs.CpuArchitecture.ARM64}), tmp_path)
    assert (tmp_path / "manifests" / "dev.json").is_file()
