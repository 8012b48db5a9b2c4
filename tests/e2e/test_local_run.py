"""End to end on 127.0.0.1: synth -> manifest -> a real Airflow run -> simulated Fargate.

One DAG run of the dynamic-pricing job, cut to 3 chunks of 2 partitions, with a pool of
2 slots and one retry; its third chunk holds a partition the model refuses, so that
chunk's container exits 1 on both tries.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.config import Config

from constructs_lib.handlers.airflow_pools import index as pools_handler
from simulator.bootstrap import client
from simulator.platform import LocalPlatform
from tests.conftest import Synthesized

JOB = "dynamic-pricing"
PARTITIONS = ["market-001", "market-002", "market-003", "market-004", "market-005",
              "market-bad "]  # fmt: skip
RUN_ID = "e2e-1"


def shrink(manifest: dict[str, Any]) -> None:
    job = next(j for j in manifest["jobs"] if j["name"] == JOB)
    job["partitions"]["values"] = PARTITIONS
    job["chunk_size"] = 2
    job["retry"] = {
        "retries": 1,
        "delay_seconds": 1,
        "exponential_backoff": False,
        "max_delay_seconds": 1,
    }
    next(p for p in manifest["pools"] if p["name"] == job["pool"])["slots"] = 2


@pytest.fixture(scope="module")
def finished_run(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("airflow")
    with LocalPlatform(synthesized.outdir, "dev", home=home, customize=shrink) as platform:
        state = platform.run(JOB, RUN_ID)
        yield platform, state


def tags(request: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in request["tags"]}


def test_the_run_fails_because_one_chunk_failed(finished_run: Any) -> None:
    platform, state = finished_run
    assert state == "failed"
    instances = {
        (ti["task_id"], ti["map_index"]): ti for ti in platform.airflow.task_instances(JOB, RUN_ID)
    }
    assert instances[("resolve_partitions", -1)]["state"] == "success"
    assert [instances[("run", i)]["state"] for i in range(3)] == ["success", "success", "failed"]
    assert instances[("summarize", -1)]["state"] == "failed"


def test_each_run_task_call_carries_the_manifest(finished_run: Any) -> None:
    platform, _ = finished_run
    manifest = platform.manifest
    job = next(j for j in manifest["jobs"] if j["name"] == JOB)
    requests = platform.simulator.metrics.run_requests
    assert requests
    chunks = set()
    for request in requests:
        assert request["cluster"] == "mlp-dev"
        assert request["taskDefinition"] == "mlp-dev-dynamic-pricing"
        network = request["networkConfiguration"]["awsvpcConfiguration"]
        assert network == {
            "subnets": manifest["network"]["subnets"],
            "securityGroups": manifest["network"]["security_groups"],
            "assignPublicIp": "DISABLED",
        }
        # The job asks for on-demand capacity.
        assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1}]
        assert request["propagateTags"] == "TASK_DEFINITION"
        override = request["overrides"]["containerOverrides"][0]
        assert override["name"] == "model"
        env = {e["name"]: e["value"] for e in override["environment"]}
        chunk = json.loads(env["ML_PARTITIONS"])
        chunks.add(tuple(chunk))
        found = tags(request)
        assert found["dag"] == JOB and found["run"] == RUN_ID
        assert PARTITIONS[int(found["chunk"]) * 2 : int(found["chunk"]) * 2 + 2] == chunk
        assert found["team"] == "pricing" and found["cost-center"] == "cc-2001"
        assert found["environment"] == "dev"
        assert len(request["clientToken"]) <= 64
        assert job["tags"].items() <= found.items()
    assert chunks == {tuple(PARTITIONS[i : i + 2]) for i in (0, 2, 4)}


def test_the_failing_chunk_is_retried_as_the_manifest_says(finished_run: Any) -> None:
    platform, _ = finished_run
    launches = [tags(r) for r in platform.simulator.metrics.run_requests]
    assert sorted((t["chunk"], t["try"]) for t in launches) == [
        ("0", "1"),
        ("1", "1"),
        ("2", "1"),
        ("2", "2"),
    ]
    failed = {
        ti["map_index"]: ti
        for ti in platform.airflow.task_instances(JOB, RUN_ID)
        if ti["task_id"] == "run"
    }[2]
    assert failed["try_number"] == 2
    log = platform.airflow.task_log(JOB, RUN_ID, "run", 2, attempt=2)
    assert "chunk failed: exit code 1" in log
    assert "market=market-005" in log  # the container's last lines are in the message


def test_container_log_lines_appear_in_the_airflow_task_log(finished_run: Any) -> None:
    platform, _ = finished_run
    log = platform.airflow.task_log(JOB, RUN_ID, "run", 0)
    assert "[model] market=market-001" in log
    assert "[model] market=market-002" in log
    assert "[model] done partitions=2 failed=0" in log
    # And where the whole stream is: a link into the CloudWatch console.
    (job,) = [j for j in platform.manifest["jobs"] if j["name"] == JOB]
    group = job["logs"]["group"].replace("/", "$252F")
    assert f"#logsV2:log-groups/log-group/{group}/log-events/job$252Fmodel$252F" in log
    # Read by one batched FilterLogEvents per stop moment, never GetLogEvents.
    assert platform.simulator.metrics.calls["GetLogEvents"] == 0
    assert platform.simulator.metrics.calls["FilterLogEvents"] >= 1


def test_the_pool_holds_deferred_tasks_and_is_never_exceeded(finished_run: Any) -> None:
    platform, _ = finished_run
    (pool,) = platform.airflow.query(
        "select slots, include_deferred from slot_pool where pool='pricing'"
    )
    # Created through the deploy-time handler and MWAA's InvokeRestApi, as on deploy.
    assert (pool["slots"], pool["include_deferred"]) == (2, True)
    # Three chunks, two slots: two ran at once, never three.
    assert platform.simulator.metrics.max_running == 2


def test_the_summary_counts_chunks(finished_run: Any) -> None:
    platform, _ = finished_run
    log = platform.airflow.task_log(JOB, RUN_ID, "summarize")
    assert "job dynamic-pricing: 3 chunks (6 partitions): 2 succeeded, 1 failed" in log
    assert "1 of 3 chunks failed" in log


def test_the_run_reports_its_cost_in_the_log_the_note_and_cloudwatch(finished_run: Any) -> None:
    """Every chunk that ran is priced, the failed one (both tries ran) included; the
    note reaches the DAG run through MWAA's InvokeRestApi; one metric write per run."""
    platform, _ = finished_run
    log = platform.airflow.task_log(JOB, RUN_ID, "summarize")
    assert "job dynamic-pricing: Fargate cost $" in log
    note = platform.airflow.dag_run(JOB, RUN_ID)["note"]
    assert note.startswith("**2/3 chunks succeeded** (6 partitions), 1 failed.")
    # 256 CPU units, 512 MiB on demand: 0.0123425 USD an hour; each chunk ran for well
    # under a minute, so each is billed Fargate's minimum of 60 s: 3 x 0.00020571.
    assert "Fargate cost: **$0.0006**" in note and "180 task-seconds billed" in note
    chunk_log = platform.airflow.task_log(JOB, RUN_ID, "run", 0)
    assert "Fargate cost of this chunk: $0.000206 (60 s billed, X86_64, FARGATE)" in chunk_log
    assert platform.simulator.metrics.calls["PutMetricData"] >= 1
    cloudwatch = client("cloudwatch", platform.aws.endpoint_url, "us-east-1")
    names = {
        m["MetricName"]
        for m in cloudwatch.list_metrics(Namespace="MLPlatform/dev")["Metrics"]
        if {"Name": "Job", "Value": JOB} in m["Dimensions"]
    }
    assert {"ChunksFailed", "ChunksSucceeded", "RunCostUSD", "StartDelaySeconds"} <= names


# -- the deploy-time pools handler, against this real Airflow through InvokeRestApi ------


def pools_event(environment: str, pools: list[dict[str, Any]]) -> dict[str, Any]:
    """What CloudFormation sends the handler (the template's Custom::AirflowPools)."""
    return {
        "RequestType": "Update",
        "ResourceProperties": {"EnvironmentName": environment, "Pools": json.dumps(pools)},
    }


def mwaa_client(platform: LocalPlatform) -> Any:
    return client(
        "mwaa", platform.aws.endpoint_url, "us-east-1", config=Config(inject_host_prefix=False)
    )


def test_the_pools_handler_overwrites_and_reads_back(finished_run: Any) -> None:
    platform, _ = finished_run
    name = platform.airflow.environment_name
    pools = [
        {"name": "pricing", "slots": 7, "description": "resized", "include_deferred": True},
        {"name": "gpu", "slots": 3, "description": "", "include_deferred": True},
    ]
    answer = pools_handler.apply(pools_event(name, pools), mwaa_client(platform))
    assert answer == {"PhysicalResourceId": f"{name}-pools", "Data": {"Pools": "pricing,gpu"}}
    found = {
        row["pool"]: (row["slots"], row["description"], row["include_deferred"])
        for row in platform.airflow.query("select pool, slots, description, include_deferred "
                                          "from slot_pool")
    }  # fmt: skip
    assert found["pricing"] == (7, "resized", True)
    assert found["gpu"] == (3, "", True)


def test_a_pool_airflow_did_not_take_fails_the_deploy_naming_it(finished_run: Any) -> None:
    """Airflow's bulk PATCH answers 200 even when an item is not applied: only the read-back
    tells. Here the REST answer is the real one, but one entity never reaches Airflow."""
    platform, _ = finished_run
    airflow = platform.airflow

    def drops_the_last_entity(method: str, path: str, query: Any, body: Any) -> Any:
        if method == "PATCH":
            body = json.loads(json.dumps(body))
            body["actions"][0]["entities"].pop()
        return airflow.rest(method, path, query, body)

    platform.aws.serve_airflow("lossy", drops_the_last_entity)
    pools = [
        {"name": "batch", "slots": 4, "description": "", "include_deferred": True},
        {"name": "never-created", "slots": 2, "description": "", "include_deferred": True},
    ]
    with pytest.raises(pools_handler.PoolsNotApplied, match="pool 'never-created' is missing"):
        pools_handler.apply(pools_event("lossy", pools), mwaa_client(platform))


def test_a_pool_airflow_refuses_fails_the_deploy_with_airflows_reason(finished_run: Any) -> None:
    platform, _ = finished_run
    name = platform.airflow.environment_name
    pools = [{"name": "x" * 300, "slots": 1, "description": "", "include_deferred": True}]
    with pytest.raises(pools_handler.PoolsNotApplied, match=r"PATCH /pools on .*422"):
        pools_handler.apply(pools_event(name, pools), mwaa_client(platform))
