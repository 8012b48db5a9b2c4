"""The model images, built from the very assets `cdk deploy` would publish, run as
containers: their real entrypoints, real memory limits, real signals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from simulator.bootstrap import client, model_behaviours
from simulator.containers import OOM_REASON, Engine
from simulator.fargate import FargateSimulator, Faults, ModelContainer
from simulator.server import LocalAws
from tests.conftest import Synthesized

REGION = "us-east-1"
FORECAST = "mlp-dev-location-forecast"
#: A chunk the forecast takes ~15 s for: long enough to stop it while it runs.
LONG_CHUNK = [f"loc-{n:04d}" for n in range(1, 2001)]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.detect()


@pytest.fixture(scope="module")
def containers(synthesized: Synthesized, engine: Engine) -> dict[str, ModelContainer]:
    """Every example job's image, built from its staged asset in the synthesized app."""
    behaviours = model_behaviours(
        synthesized.manifest("dev"), synthesized.outdir, "dev", engine=engine
    )
    assert all(isinstance(b, ModelContainer) for b in behaviours.values())
    return behaviours  # type: ignore[return-value]


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with LocalAws(FargateSimulator(behaviour=lambda family: None)) as local:  # type: ignore[arg-type,return-value]
        yield local


def test_each_job_image_runs_its_entrypoint_over_two_partitions_and_writes_to_s3(
    containers: dict[str, ModelContainer], engine: Engine, aws: LocalAws
) -> None:
    s3 = client("s3", aws.endpoint_url, REGION)
    s3.create_bucket(Bucket="results")
    for family, container in containers.items():
        lines: list[str] = []
        running = engine.run(
            container.image,
            command=[],
            environment={
                "ML_PARTITIONS": json.dumps(["p-1", "p-2"]),
                "ML_OUTPUT_URI": f"s3://results/{family}/",
                # What the task role gives on Fargate; here the local endpoint's keys.
                "AWS_ENDPOINT_URL": aws.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
            },
            cpu_units=container.cpu_units,
            memory_mib=container.memory_mib,
            emit=lines.append,
        )
        assert running.wait(120) == 0, (family, lines)
        assert lines[-1].startswith("done partitions=2 failed=0"), lines
        (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket="results", Prefix=family)["Contents"]]
        rows = s3.get_object(Bucket="results", Key=key)["Body"].read().decode().splitlines()
        assert [json.loads(r)["partition"] for r in rows] == ["p-1", "p-2"]
        assert {json.loads(r)["status"] for r in rows} == {"ok"}
        # The container ran the image that was built, and is gone once done.
        assert running.image_id == container.image
        assert engine("container", "exists", running.name, check=False).returncode != 0


def test_the_image_runs_as_the_unprivileged_user(
    containers: dict[str, ModelContainer], engine: Engine
) -> None:
    image = containers[FORECAST].image
    user = engine("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == "10001"


def test_a_container_over_its_memory_limit_ends_as_an_oom_kill(
    containers: dict[str, ModelContainer], engine: Engine
) -> None:
    lines: list[str] = []
    running = engine.run(
        containers[FORECAST].image,
        command=["--partitions", ",".join(LONG_CHUNK[:400])],
        environment={},
        cpu_units=256,
        memory_mib=10,
        emit=lines.append,
    )
    assert running.wait(120) == 137
    assert running.reason == OOM_REASON
    # Killed mid-run: it had forecast some locations, not all.
    assert any(line.startswith("location=") for line in lines)
    assert not any(line.startswith("done ") for line in lines)


def run_forecast(aws: LocalAws, *, spot: bool = False) -> str:
    ecs = client("ecs", aws.endpoint_url, REGION)
    network = _network(aws)
    task = ecs.run_task(
        cluster="sim",
        taskDefinition=FORECAST,
        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT" if spot else "FARGATE"}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": network}},
        overrides={
            "containerOverrides": [
                {
                    "name": "model",
                    "environment": [
                        {"name": "ML_PARTITIONS", "value": json.dumps(LONG_CHUNK)},
                        {"name": "ML_LOGICAL_DATE", "value": "2024-05-01T00:00:00Z"},
                    ],
                }
            ]
        },
    )["tasks"][0]
    return str(task["taskArn"])


def _network(aws: LocalAws) -> list[str]:
    from simulator.bootstrap import bootstrap_family

    return list(
        bootstrap_family(
            aws.endpoint_url, REGION, cluster="sim", family=FORECAST, log_group="/sim/forecast"
        )["subnets"]
    )


def wait_for(aws: LocalAws, arn: str, status: str, timeout: float = 60) -> dict[str, Any]:
    ecs = client("ecs", aws.endpoint_url, REGION)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = ecs.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0]
        if task["lastStatus"] == status:
            return dict(task)
        time.sleep(0.3)
    raise AssertionError(f"task not {status} after {timeout} s: {task}")


def test_stop_task_sends_sigterm_and_the_task_stops_with_the_containers_exit(
    containers: dict[str, ModelContainer],
) -> None:
    forecast = containers[FORECAST]
    simulator = FargateSimulator(behaviour=lambda family: forecast, start_latency=0.2)
    with LocalAws(simulator) as aws:
        arn = run_forecast(aws)
        wait_for(aws, arn, "RUNNING")
        time.sleep(2)  # the model is forecasting
        client("ecs", aws.endpoint_url, REGION).stop_task(cluster="sim", task=arn, reason="test")
        stopped = wait_for(aws, arn, "STOPPED", timeout=30)
    # SIGTERM ends the model at once (exit 143), well before the 30 s SIGKILL.
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["containers"][0]["exitCode"] == 143
    assert stopped["stoppedAt"].timestamp() - stopped["startedAt"].timestamp() < 20


def test_a_spot_reclaim_sends_sigterm_with_its_notice(
    containers: dict[str, ModelContainer],
) -> None:
    forecast = containers[FORECAST]
    simulator = FargateSimulator(
        behaviour=lambda family: forecast, start_latency=0.2, spot_notice=5
    )
    simulator.inject(FORECAST, Faults(spot_interruptions=1, interrupt_after=2))
    with LocalAws(simulator) as aws:
        arn = run_forecast(aws, spot=True)
        stopped = wait_for(aws, arn, "STOPPED", timeout=40)
    assert stopped["stopCode"] == "SpotInterruption"
    assert stopped["containers"][0]["exitCode"] == 143


def test_secrets_reach_the_container_and_a_missing_one_fails_the_start(
    containers: dict[str, ModelContainer],
) -> None:
    forecast = containers[FORECAST]
    simulator = FargateSimulator(behaviour=lambda family: forecast, start_latency=0.2)
    with LocalAws(simulator) as aws:
        network = _network(aws)
        secret = client("secretsmanager", aws.endpoint_url, REGION).create_secret(
            Name="mlp/forecast/date", SecretString="2024-05-01T06:00:00Z"
        )["ARN"]
        ecs = client("ecs", aws.endpoint_url, REGION)
        for family, reference in (("with-secret", secret), ("missing", secret + "-gone")):
            ecs.register_task_definition(
                family=family,
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="256",
                memory="512",
                containerDefinitions=[
                    {
                        "name": "model",
                        "image": "model",
                        "command": ["--partitions", "loc-0001"],
                        "secrets": [{"name": "ML_LOGICAL_DATE", "valueFrom": reference}],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": "/sim/forecast",
                                "awslogs-stream-prefix": family,
                            },
                        },
                    }
                ],
            )
        arns = {
            family: ecs.run_task(
                cluster="sim",
                taskDefinition=family,
                networkConfiguration={"awsvpcConfiguration": {"subnets": network}},
            )["tasks"][0]["taskArn"]
            for family in ("with-secret", "missing")
        }
        failed = wait_for(aws, arns["missing"], "STOPPED")
        done = wait_for(aws, arns["with-secret"], "STOPPED")
        logs = client("logs", aws.endpoint_url, REGION)
        stream = f"with-secret/model/{arns['with-secret'].rsplit('/', 1)[-1]}"
        events = logs.get_log_events(logGroupName="/sim/forecast", logStreamName=stream)
    assert failed["stopCode"] == "TaskFailedToStart"
    assert failed["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets")
    assert done["containers"][0]["exitCode"] == 0
    # The secret's value is the model's logical date: its first log line says so.
    assert "origin=2024-05-01T06:00:00Z" in events["events"][0]["message"]


def test_no_container_is_left_behind(engine: Engine) -> None:
    # Named ml-platform-task-*, removed once their exit is read (StopTask and OOM included).
    left = engine("ps", "-a", "--filter", "name=ml-platform-task", "--format", "{{.Names}}")
    assert left.stdout.split() == []
