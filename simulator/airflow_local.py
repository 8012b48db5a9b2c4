"""A real, local Airflow 3: api-server, scheduler, dag-processor and triggerer processes
with the LocalExecutor and SQLite, pointed at the local AWS endpoint.

Used by ``make demo`` and the end-to-end tests: the platform's DAGs run exactly as on
MWAA (same DAG file, same manifest shape, deferral in a triggerer, pools with
``include_deferred``), only against 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from ml_platform.manifest import parse_manifest
from ml_platform.pools import import_document
from simulator.bootstrap import airflow_connection

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalAirflow:
    """:param home: a fresh AIRFLOW_HOME; :param manifest: the resolved local manifest."""

    def __init__(
        self,
        home: Path,
        manifest: dict[str, Any],
        *,
        endpoint_url: str,
        region: str,
        poll_seconds: float = 2.0,
        parallelism: int = 16,
    ) -> None:
        self.home = home
        self.manifest = manifest
        self.endpoint_url = endpoint_url
        self.region = region
        self.port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW_", "AIRFLOW__", "ML_PLATFORM_"))
        }
        self.env = {
            **inherited,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(manifest["max_map_length"]),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
            "simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__CAPACITY": "1000",
            # A killed triggerer's triggers move to a live one after this many seconds.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW_CONN_AWS_DEFAULT": airflow_connection(endpoint_url, region),
            "ML_PLATFORM_MANIFEST": str(home / "manifest.json"),
            "ML_PLATFORM_POLL_SECONDS": str(poll_seconds),
            # As on MWAA, the dags folder is on sys.path of every component.
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO / "dags"), os.environ.get("PYTHONPATH")])
            ),
            "NO_PROXY": "127.0.0.1,localhost",
        }

    # -- life cycle -----------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> LocalAirflow:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "manifest.json").write_text(json.dumps(self.manifest, indent=2))
        pools = parse_manifest(self.manifest).pools
        (self.home / "pools.json").write_text(json.dumps(import_document(pools)))
        self.airflow("db", "migrate")
        self.airflow("pools", "import", str(self.home / "pools.json"))
        self.processes = [self._spawn(component) for component in COMPONENTS]
        return self

    def _spawn(self, component: str) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{component}.log", "ab")  # noqa: SIM115 (closed by the process)
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), component],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, component: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill one component (SIGKILL: no clean-up runs, as when a host dies)."""
        process = self.processes[COMPONENTS.index(component)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=60)

    def revive(self, component: str) -> None:
        self.processes[COMPONENTS.index(component)] = self._spawn(component)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the public REST API (``/api/v2``) as an admin."""
        base = f"http://127.0.0.1:{self.port}"
        with urllib.request.urlopen(f"{base}/auth/token", timeout=30) as reply:
            token = json.loads(reply.read())["access_token"]
        request = urllib.request.Request(
            f"{base}/api/v2{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.loads(reply.read() or b"null")

    def fail_try_as_lost(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
        """End the current try the way Airflow ends a try whose process vanished.

        The scheduler's heartbeat-timeout path ends in ``TaskInstance.handle_failure``;
        this runs that same call (up for retry while tries are left), nothing else.
        """
        script = (
            "import sys\n"
            "from sqlalchemy import select\n"
            "from airflow.models.dagbag import DBDagBag\n"
            "from airflow.models.taskinstance import TaskInstance as TI\n"
            "from airflow.utils.session import create_session\n"
            "dag_id, run_id, task_id, map_index = sys.argv[1:5]\n"
            "with create_session() as session:\n"
            "    ti = session.scalars(select(TI).where(TI.dag_id == dag_id, TI.run_id == run_id,"
            " TI.task_id == task_id, TI.map_index == int(map_index))).one()\n"
            "    dag = DBDagBag(load_op_links=False).get_dag_for_run(ti.dag_run, session=session)\n"
            "    ti.task = dag.get_task(task_id)\n"
            "    ti.handle_failure('the process running this try was lost', session=session)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script, dag_id, run_id, task_id, str(map_index)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"could not fail the try:\n{result.stderr[-3000:]}")

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes = []

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests and the demo ask ------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "airflow.db", timeout=30)

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._db() as db:
                try:
                    found = {row[0] for row in db.execute("select dag_id from dag")}
                except sqlite3.OperationalError:
                    found = set()
            if set(dag_ids) <= found:
                return
            self._check_alive()
            time.sleep(1)
        raise TimeoutError(
            f"DAGs {dag_ids} not parsed in {timeout} s; see {self.home}/dag-processor.log"
        )

    def trigger(self, dag_id: str, run_id: str) -> str:
        self.airflow("dags", "unpause", dag_id)
        self.airflow("dags", "trigger", dag_id, "--run-id", run_id)
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._db() as db:
                row = db.execute(
                    "select state from dag_run where dag_id=? and run_id=?", (dag_id, run_id)
                ).fetchone()
            if row and row[0] in ("success", "failed"):
                return str(row[0])
            self._check_alive()
            time.sleep(1)
        raise TimeoutError(f"{dag_id} {run_id} did not finish in {timeout} s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        with self._db() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "select task_id, map_index, state, try_number, pool, start_date, end_date "
                "from task_instance where dag_id=? and run_id=? order by task_id, map_index",
                (dag_id, run_id),
            ).fetchall()
        return [dict(row) for row in rows]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, attempt: int = 1
    ) -> str:
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        path = folder / f"attempt={attempt}.log"
        return path.read_text() if path.exists() else ""

    def _check_alive(self) -> None:
        for component, process in zip(COMPONENTS, self.processes, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"airflow {component} exited; see {self.home}/{component}.log")
