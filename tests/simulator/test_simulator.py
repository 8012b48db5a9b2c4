"""The local ECS simulator answers like ECS: lifecycle, limits, faults, idempotency."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from simulator.bootstrap import bootstrap_family
from simulator.fargate import CAPACITY_UNAVAILABLE, ApiLimits, FargateSimulator, Faults, Scripted
from simulator.server import LocalAws

REGION = "us-east-1"


@pytest.fixture
def ecs() -> Iterator[tuple[Any, FargateSimulator, Scripted, dict[str, Any]]]:
    behaviour = Scripted(seconds=0.5)
    simulator = FargateSimulator(
        behaviour=lambda family: behaviour,
        start_latency=0.2,
        limits=ApiLimits(read_rate=5, read_burst=5),
    )
    with LocalAws(simulator) as aws:
        network = bootstrap_family(
            aws.endpoint_url, REGION, cluster="sim", family="job", log_group="/sim/job"
        )
        # botocore's own retries would hide the throttling this test looks for.
        import boto3
        from botocore.config import Config

        no_retry = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client(
            "ecs",
            endpoint_url=aws.endpoint_url,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        yield no_retry, simulator, behaviour, network


def run(ecs: Any, network: dict[str, Any], *, spot: bool = False, token: str = "") -> Any:
    kwargs: dict[str, Any] = {"clientToken": token} if token else {}
    return ecs.run_task(
        cluster="sim",
        taskDefinition="job",
        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT" if spot else "FARGATE"}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": network["subnets"]}},
        **kwargs,
    )


def wait_stopped(ecs: Any, arn: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        task = ecs.describe_tasks(cluster="sim", tasks=[arn])["tasks"][0]
        seen.append(task["lastStatus"])
        if task["lastStatus"] == "STOPPED":
            task["seen"] = seen
            return dict(task)
        time.sleep(0.25)  # under the fixture's 5 reads per second
    raise AssertionError(f"still {seen[-1]}")


def test_lifecycle_and_exit_code(ecs: Any) -> None:
    client_, _, behaviour, network = ecs
    behaviour.exit_code = 3
    task = wait_stopped(client_, run(client_, network)["tasks"][0]["taskArn"])
    assert "RUNNING" in task["seen"] and task["seen"][0] in ("PROVISIONING", "PENDING")
    assert task["containers"][0]["exitCode"] == 3
    assert task["stopCode"] == "EssentialContainerExited"


def test_out_of_memory(ecs: Any) -> None:
    client_, _, behaviour, network = ecs
    behaviour.exit_code, behaviour.reason = (
        137,
        "OutOfMemoryError: Container killed due to memory usage",
    )
    task = wait_stopped(client_, run(client_, network)["tasks"][0]["taskArn"])
    assert task["containers"][0]["exitCode"] == 137
    assert task["containers"][0]["reason"].startswith("OutOfMemoryError")


def test_cannot_pull_the_image(ecs: Any) -> None:
    client_, _, behaviour, network = ecs
    behaviour.fail_to_start = "CannotPullContainerError: pull image manifest has been retried"
    task = wait_stopped(client_, run(client_, network)["tasks"][0]["taskArn"])
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError")
    assert "exitCode" not in task["containers"][0]


def test_spot_interruption_exits_zero_but_is_interrupted(ecs: Any) -> None:
    client_, simulator, behaviour, network = ecs
    behaviour.seconds = 30
    simulator.inject("job", Faults(spot_interruptions=1, interrupt_after=0.3))
    task = wait_stopped(client_, run(client_, network, spot=True)["tasks"][0]["taskArn"])
    assert task["stopCode"] == "SpotInterruption" and task["containers"][0]["exitCode"] == 0


def test_spot_capacity_unavailable(ecs: Any) -> None:
    client_, simulator, _, network = ecs
    simulator.inject("job", Faults(spot_capacity_failures=1))
    response = run(client_, network, spot=True)
    assert response["tasks"] == [] and response["failures"][0]["reason"] == CAPACITY_UNAVAILABLE
    assert run(client_, network, spot=True)["tasks"]


def test_client_token_is_idempotent(ecs: Any) -> None:
    client_, simulator, _, network = ecs
    first = run(client_, network, token="t-1")["tasks"][0]["taskArn"]
    assert run(client_, network, token="t-1")["tasks"][0]["taskArn"] == first
    assert len(simulator.tasks) == 1


def test_a_client_token_reused_with_other_parameters_is_refused(ecs: Any) -> None:
    """ECS: the same token with different parameters fails with ConflictException."""
    client_, simulator, _, network = ecs
    run(client_, network, token="t-2")
    with pytest.raises(ClientError) as caught:
        run(client_, network, token="t-2", spot=True)
    assert caught.value.response["Error"]["Code"] == "ConflictException"
    assert len(simulator.tasks) == 1


def test_reads_are_throttled_with_a_real_error(ecs: Any) -> None:
    client_, simulator, _, network = ecs
    arn = run(client_, network)["tasks"][0]["taskArn"]
    # A bucket of 3 refilled every 2 s: the loop outruns it however slow the machine.
    bucket = simulator.buckets["read"]
    bucket.rate, bucket.burst, bucket.tokens = 0.5, 3, 3
    with pytest.raises(ClientError) as caught:
        for _ in range(20):
            client_.describe_tasks(cluster="sim", tasks=[arn])
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert simulator.metrics.throttled["DescribeTasks"] >= 1
    assert simulator.metrics.calls["DescribeTasks"] >= 4


def test_describe_takes_at_most_100_tasks(ecs: Any) -> None:
    client_, _, _, _ = ecs
    with pytest.raises(ClientError, match="cannot be longer than 100"):
        client_.describe_tasks(cluster="sim", tasks=[f"t{i}" for i in range(101)])


def test_injected_faults_hit_the_next_calls_of_one_family_then_stop(ecs: Any) -> None:
    client_, simulator, _, network = ecs
    simulator.inject(
        "job",
        Faults(capacity_failures=1, spot_interruptions=1, interrupt_after=0.2,
               throttle=Counter({"RunTask": 1, "DescribeTasks": 1})),
    )  # fmt: skip
    with pytest.raises(ClientError, match="ThrottlingException"):
        run(client_, network)
    assert run(client_, network)["failures"] == [{"reason": CAPACITY_UNAVAILABLE}]
    first = run(client_, network, spot=True)["tasks"][0]["taskArn"]
    with pytest.raises(ClientError, match="ThrottlingException"):
        client_.describe_tasks(cluster="sim", tasks=[first])
    assert wait_stopped(client_, first)["stopCode"] == "SpotInterruption"
    second = run(client_, network, spot=True)["tasks"][0]["taskArn"]
    assert wait_stopped(client_, second)["stopCode"] == "EssentialContainerExited"


def test_started_by_longer_than_ecs_allows_is_refused(ecs: Any) -> None:
    client_, _, _, network = ecs
    with pytest.raises(ClientError, match="startedBy at most 36"):
        client_.run_task(
            cluster="sim",
            taskDefinition="job",
            startedBy="x" * 37,
            networkConfiguration={"awsvpcConfiguration": {"subnets": network["subnets"]}},
        )
