"""End to end on the self-hosted backend: the real image's components as containers.

The synthesized prod environment (self-hosted) on 127.0.0.1: its Airflow image built as
``cdk deploy`` builds it, ``init`` (migrate, admin user, pools) run as the deploy's
one-off task, then api-server, scheduler, dag-processor and a triggerer as containers
against a real PostgreSQL, with the local AWS endpoint and the Fargate simulator running
the job's model container. One run of the dynamic-pricing job, cut to 2 chunks, goes from
trigger to success. What differs from AWS is listed in ``simulator/selfhosted.py``.

Started once per module; the second ``init`` and the failing one run while the DAG
runs, as a redeploy's init runs while the services serve.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg2
import pytest

from simulator.airflow_local import free_port
from simulator.platform import LocalPlatform
from simulator.selfhosted import SelfHostedAirflow
from tests.conftest import Synthesized

ENV = "prod"
JOB = "dynamic-pricing"
PARTITIONS = ["market-001", "market-002", "market-003", "market-004"]
RUN_ID = "self-hosted-1"


def shrink(manifest: dict[str, Any]) -> None:
    manifest["jobs"] = [j for j in manifest["jobs"] if j["name"] == JOB]
    job = manifest["jobs"][0]
    job["partitions"] = {"kind": "static", "values": PARTITIONS}
    job["chunk_size"] = 2
    job["retry"] = {
        "retries": 0,
        "delay_seconds": 1,
        "exponential_backoff": False,
        "max_delay_seconds": 1,
    }


@pytest.fixture(scope="module")
def deployed(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("self-hosted")
    with LocalPlatform(
        synthesized.outdir, ENV, home=home, customize=shrink, backend="self-hosted"
    ) as platform:
        airflow = platform.airflow
        assert isinstance(airflow, SelfHostedAirflow)
        newer = schema_of_a_newer_airflow(airflow)
        with ThreadPoolExecutor(3) as pool:
            again = pool.submit(airflow.init)
            unreachable = pool.submit(airflow.init, {"AIRFLOW_DB_PORT": str(free_port())})
            rollback = pool.submit(airflow.init, {"AIRFLOW_DB_NAME": newer})
            state = platform.run(JOB, RUN_ID, timeout=300)
            inits = {
                "again": again.result(),
                "unreachable": unreachable.result(),
                "rollback": rollback.result(),
            }
        yield platform, airflow, state, inits


#: An Alembic revision no Airflow 3.3.1 migration knows: the schema a newer Airflow left.
NEWER_REVISION = "f0f0f0f0f0f0"


def schema_of_a_newer_airflow(airflow: SelfHostedAirflow) -> str:
    """A database whose schema version is newer than the image's Airflow (what a
    rolled-back deploy's init finds after the new version migrated)."""
    name = "newer_airflow"
    admin = psycopg2.connect(airflow.database.dsn)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"create database {name}")
    admin.close()
    newer = psycopg2.connect(airflow.database.dsn.replace("dbname=airflow", f"dbname={name}"))
    with newer, newer.cursor() as cursor:
        cursor.execute("create table alembic_version (version_num varchar(32) primary key)")
        cursor.execute("insert into alembic_version values (%s)", (NEWER_REVISION,))
    newer.close()
    return name


def test_an_example_dag_runs_from_trigger_to_success_through_the_containers(deployed: Any) -> None:
    platform, airflow, state, _ = deployed
    assert state == "success"
    instances = {(t["task_id"], t["map_index"]): t for t in airflow.task_instances(JOB, RUN_ID)}
    assert {key: t["state"] for key, t in instances.items()} == {
        ("resolve_partitions", -1): "success",
        ("run", 0): "success",
        ("run", 1): "success",
        ("summarize", -1): "success",
    }
    assert instances[("run", 0)]["pool"] == "pricing"
    # Each chunk launched once on the local ECS, and ran the job's model container.
    launched = platform.simulator.metrics.run_requests
    assert len(launched) == 2
    assert {r["cluster"] for r in launched} == {f"mlp-{ENV}"}
    log = airflow.task_log(JOB, RUN_ID, "run", 0)
    assert "[model] market=market-001" in log
    assert "job dynamic-pricing: 2 chunks (4 partitions): 2 succeeded" in airflow.task_log(
        JOB, RUN_ID, "summarize"
    )


def test_the_run_writes_its_report_as_the_dag_runs_note(deployed: Any) -> None:
    """Through the api-server, as the User-role account init created (the Task SDK has no
    way to set a note); the account may edit runs but not pools."""
    _, airflow, _, _ = deployed
    run = airflow.dag_run(JOB, RUN_ID)
    assert run["note"].startswith("**2/2 chunks succeeded** (4 partitions), 0 failed.")
    assert "Fargate cost: **$" in run["note"]
    users = {u["username"]: u for u in airflow.rest("GET", "/auth/fab/v1/users")[1]["users"]}
    assert [r["name"] for r in users["ml-platform-notes"]["roles"]] == ["User"]


def test_the_api_server_reports_every_component_healthy(deployed: Any) -> None:
    _, airflow, _, _ = deployed
    health = airflow.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health


def test_each_component_passes_the_images_health_check(deployed: Any) -> None:
    _, airflow, _, _ = deployed
    for component in ("api-server", "scheduler", "dag-processor", "triggerer"):
        done = airflow.health_check(component)
        assert done.returncode == 0, f"{component}: {done.stdout}{done.stderr}"


def test_the_admin_from_the_secret_logs_in_through_fab(deployed: Any) -> None:
    _, airflow, _, _ = deployed
    username, password = airflow.admin
    status, answer = airflow.login(username, password)
    assert status == 201 and answer["access_token"]
    assert airflow.login(username, password + "x")[0] == 401
    # FAB's own API knows the user and its role: FAB is the auth manager in use.
    status, user = airflow.rest("GET", f"/auth/fab/v1/users/{username}")
    assert status == 200, user
    assert [role["name"] for role in user["roles"]] == ["Admin"]
    # SimpleAuthManager would hand anyone a token on GET /auth/token (all admins) and
    # keep its users in a generated passwords file; FAB does neither.
    assert airflow.rest("GET", "/auth/token")[0] in (404, 405)
    found = airflow.exec("api-server", "sh", "-c", "ls /opt/airflow/*.generated 2>&1; true")
    assert "simple_auth_manager" not in found.stdout


def test_the_pools_of_the_manifest_exist_and_hold_deferred_tasks(deployed: Any) -> None:
    platform, airflow, _, _ = deployed
    found = {
        row["pool"]: (row["slots"], row["include_deferred"])
        for row in airflow.query("select pool, slots, include_deferred from slot_pool")
    }
    wanted = {p["name"]: (p["slots"], True) for p in platform.manifest["pools"]}
    assert wanted and all(p["include_deferred"] for p in platform.manifest["pools"])
    assert {name: found.get(name) for name in wanted} == wanted


def test_init_run_again_changes_nothing_and_succeeds(deployed: Any) -> None:
    platform, airflow, _, inits = deployed
    again = inits["again"]
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already exists" in again.stdout
    assert "init: done" in again.stdout
    # The admin and the notes account, each once.
    users = airflow.query("select username from ab_user order by username")
    assert [u["username"] for u in users] == ["admin", "ml-platform-notes"]
    pools = airflow.query("select pool from slot_pool")
    assert len(pools) == len(platform.manifest["pools"]) + 1  # and default_pool
    assert airflow.login(*airflow.admin)[0] == 201


def test_init_with_an_unreachable_database_fails_saying_why(deployed: Any) -> None:
    _, _, _, inits = deployed
    failed = inits["unreachable"]
    assert failed.returncode != 0
    assert "init failed: `airflow db check` failed (exit 1)" in failed.stderr
    assert "Connection refused" in failed.stderr
    assert json.dumps(failed.stderr).count("init failed") == 1


def test_a_rolled_back_init_leaves_a_newer_schema_alone(deployed: Any) -> None:
    """CloudFormation's rollback runs the previous version's init; it must succeed without
    touching what the newer Airflow migrated, or the rollback itself would fail."""
    platform, airflow, _, inits = deployed
    rollback = inits["rollback"]
    assert rollback.returncode == 0, rollback.stderr[-2000:]
    assert f"schema {NEWER_REVISION} newer" in rollback.stdout
    assert "nothing migrated" in rollback.stdout and "db migrate" not in rollback.stdout
    newer = psycopg2.connect(airflow.database.dsn.replace("dbname=airflow", "dbname=newer_airflow"))
    with newer, newer.cursor() as cursor:
        cursor.execute(
            "select table_name from information_schema.tables where table_schema = 'public'"
        )
        assert [row[0] for row in cursor.fetchall()] == ["alembic_version"]
    newer.close()
    del platform


def test_every_container_filled_the_manifest_with_its_deploy_time_values(deployed: Any) -> None:
    """The image bakes the synthesized placeholders; each container's entrypoint fills them
    in from ML_PLATFORM_DEPLOY_VALUES, as ECS passes them."""
    platform, airflow, _, _ = deployed
    for component in airflow.components:
        shown = airflow.exec(component, "cat", "/opt/airflow/dags/manifest.json")
        assert shown.returncode == 0, shown.stderr
        manifest = json.loads(shown.stdout)
        assert "${" not in shown.stdout, component
        assert manifest["network"] == platform.manifest["network"], component
        assert manifest["region"] == platform.manifest["region"], component
