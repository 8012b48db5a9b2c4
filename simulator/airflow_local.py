"""A real, local Airflow laid out and pinned like MWAA's: api-server, scheduler,
dag-processor and triggerer processes with the LocalExecutor and SQLite, pointed at the
local AWS endpoint.

Used by ``make demo``, the end-to-end tests and ``make faults``. What matches MWAA:

- **Versions.** Every process runs from the MWAA parity runtime of the configured Airflow
  version (``config/airflow_versions.py``: the Python minor and every package of MWAA's
  image), not from the development venv.
- **Layout.** ``$AIRFLOW_HOME/dags`` holds what ``cdk deploy`` syncs into the DAG bucket's
  ``dags/`` (the staged asset) plus the manifest; ``$AIRFLOW_HOME/plugins`` is the
  synthesized ``plugins.zip``, unpacked as MWAA unpacks it. ``PYTHONPATH`` is an empty
  folder (MWAA fixes it to its own), the working directory is ``$AIRFLOW_HOME``, and the
  runtime has nothing of the repository installed: ``ml_platform`` imports only through
  the plugins folder that ``airflow.settings`` puts on ``sys.path``.
- **Pools** are created by the deploy-time handler (``constructs_lib/handlers/
  airflow_pools``) through MWAA's ``InvokeRestApi``, answered locally by this Airflow.

- **Metadata database**: PostgreSQL, as MWAA's (``simulator.postgres``): row locks decide
  which triggerer runs a trigger.

What differs, on purpose: LocalExecutor instead of Celery workers, one host, PostgreSQL
15 from the machine image (MWAA: Aurora PostgreSQL), and Python 3.12 from pyenv (MWAA:
3.12.13).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
from botocore.config import Config

from config.airflow_versions import MWAA_RUNTIMES, MwaaRuntime
from constructs_lib.handlers.airflow_pools import index as pools_handler
from ml_platform.contract import parse_manifest
from simulator.bootstrap import airflow_connection, client
from simulator.postgres import LocalPostgres

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("api-server", "scheduler", "dag-processor")
#: Airflow's triggerer_health_check_threshold, at its default (MWAA keeps it): a triggerer
#: whose heartbeat is older is dead to the others, which take over its triggers.
HEALTH_CHECK_SECONDS = 30
#: Variables of the development shell that must not leak into MWAA's layout.
_NOT_INHERITED = ("AIRFLOW_", "AIRFLOW__", "ML_PLATFORM_", "PYTHON", "VIRTUAL_ENV", "UV_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MissingRuntime(RuntimeError):
    """The parity runtime is not installed (``make install`` installs it)."""


def parity_runtime(version: str) -> MwaaRuntime:
    runtime = MWAA_RUNTIMES[version]
    if not (runtime.venv / "bin" / "airflow").exists():
        raise MissingRuntime(
            f"MWAA {version} runtime not installed at {runtime.venv}; run 'make install'"
        )
    return runtime


def install_mwaa_layout(
    home: Path,
    *,
    plugins_zip: Path,
    dags: Path | None = None,
    manifest: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Lay out ``home`` as MWAA's containers see ``/usr/local/airflow``."""
    folders = {name: home / name for name in ("dags", "plugins", "python")}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    if dags is not None:
        shutil.copytree(dags, folders["dags"], dirs_exist_ok=True)
    if manifest is not None:
        (folders["dags"] / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with zipfile.ZipFile(plugins_zip) as archive:
        archive.extractall(folders["plugins"])
    return folders


def mwaa_environment(home: Path, plugins_zip: Path | None = None) -> dict[str, str]:
    """The process environment of an Airflow component in ``home``'s MWAA layout (laid
    out first when ``plugins_zip`` is given): nothing of the development shell's Python
    setup leaks in."""
    if plugins_zip is not None:
        install_mwaa_layout(home, plugins_zip=plugins_zip)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    return {
        **inherited,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        # MWAA sets PYTHONPATH to a folder of its own and refuses overrides.
        "PYTHONPATH": str(home / "python"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "NO_PROXY": "127.0.0.1,localhost",
    }


class AirflowQueries:
    """What tests and the demo ask a running Airflow, through its metadata database and
    its task log folder: shared by ``LocalAirflow`` and the self-hosted containers
    (``simulator.selfhosted``)."""

    home: Path
    database: LocalPostgres

    def start(self) -> AirflowQueries:
        raise NotImplementedError

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run as the public REST API shows it (its note included)."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _check_alive(self) -> None:
        """Raise when a component has exited."""

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of Airflow's metadata database."""
        with (
            contextlib.closing(psycopg2.connect(self.database.dsn)) as connection,
            connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor,
        ):
            cursor.execute(sql, params)
            return [dict(row) for row in cursor.fetchall()]

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {row["dag_id"] for row in self.query("select dag_id from dag")}
            if set(dag_ids) <= found:
                return
            self._check_alive()
            time.sleep(1)
        errors = "\n".join(
            row["stacktrace"] for row in self.query("select stacktrace from import_error")
        )
        raise TimeoutError(
            f"DAGs {dag_ids} not parsed in {timeout} s; see {self.home}/dag-processor.log"
            + (f"\nimport errors:\n{errors}" if errors else "")
        )

    def trigger(self, dag_id: str, run_id: str) -> str:
        """Unpause ``dag_id`` and start run ``run_id``; return the run id."""
        raise NotImplementedError

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.query(
                "select state from dag_run where dag_id=%s and run_id=%s", dag_id, run_id
            )
            if rows and rows[0]["state"] in ("success", "failed"):
                return str(rows[0]["state"])
            self._check_alive()
            time.sleep(1)
        raise TimeoutError(f"{dag_id} {run_id} did not finish in {timeout} s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.query(
            "select task_id, map_index, state, try_number, pool, start_date, end_date "
            "from task_instance where dag_id=%s and run_id=%s order by task_id, map_index",
            dag_id,
            run_id,
        )

    def trigger_owner(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> int | None:
        """The triggerer job that runs this task instance's trigger, if any."""
        rows = self.query(
            'select t.triggerer_id from task_instance ti join "trigger" t on t.id = ti.trigger_id '
            "where ti.dag_id=%s and ti.run_id=%s and ti.task_id=%s and ti.map_index=%s",
            dag_id,
            run_id,
            task_id,
            map_index,
        )
        owner = rows[0]["triggerer_id"] if rows else None
        return None if owner is None else int(owner)

    def live_triggerer_jobs(self) -> list[int]:
        """Triggerer jobs Airflow counts as alive (a heartbeat within the threshold)."""
        rows = self.query(
            "select id from job where job_type='TriggererJob' and end_date is null "
            "and latest_heartbeat > now() - make_interval(secs => %s) order by id",
            HEALTH_CHECK_SECONDS,
        )
        return [int(row["id"]) for row in rows]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, attempt: int = 1
    ) -> str:
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        path = folder / f"attempt={attempt}.log"
        return path.read_text() if path.exists() else ""

    def failure_message(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, tries: int
    ) -> str:
        """The failure message a user reads in the task log (the exception the try
        raised), newest try first; empty when no try failed."""
        for attempt in range(tries, 0, -1):
            log = self.task_log(dag_id, run_id, task_id, map_index, attempt=attempt)
            for line in reversed(log.splitlines()):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                for detail in record.get("error_detail") or []:
                    value = str(detail.get("exc_value", ""))
                    if value:
                        return value
        return ""


class LocalAirflow(AirflowQueries):
    """A local Airflow for one environment.

    :param home: a fresh AIRFLOW_HOME.
    :param manifest: the resolved local manifest (written beside the DAG file).
    :param dags: the staged DAG asset from cdk.out (what deploys to ``dags/``).
    :param plugins_zip: the staged ``plugins.zip`` from cdk.out.
    :param environment_name: the MWAA environment's name; pools are created through it.
    :param airflow_version: picks the parity runtime from the MWAA version table.
    :param triggerers: triggerer processes (MWAA runs one per scheduler).
    """

    def __init__(
        self,
        home: Path,
        manifest: dict[str, Any],
        *,
        dags: Path,
        plugins_zip: Path,
        environment_name: str,
        airflow_version: str,
        endpoint_url: str,
        region: str,
        poll_seconds: float = 2.0,
        parallelism: int = 16,
        triggerers: int = 1,
    ) -> None:
        self.home = home
        self.manifest = manifest
        self.dags_source = dags
        self.plugins_zip = plugins_zip
        self.environment_name = environment_name
        self.runtime = parity_runtime(airflow_version)
        self.endpoint_url = endpoint_url
        self.region = region
        self.port = free_port()
        self.components = (*SERVICES, *self.triggerer_names(triggerers))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.folders: dict[str, Path] = {}
        self.database = LocalPostgres()
        self.env = {
            **mwaa_environment(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database.url,
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
            # A silent triggerer's triggers move to a live one after this many seconds.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_SECONDS),
            "AIRFLOW_CONN_AWS_DEFAULT": airflow_connection(endpoint_url, region),
            "ML_PLATFORM_POLL_SECONDS": str(poll_seconds),
        }

    @staticmethod
    def triggerer_names(count: int) -> list[str]:
        return ["triggerer" if i == 0 else f"triggerer-{i + 1}" for i in range(count)]

    # -- life cycle -----------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str(self.runtime.venv / "bin" / name)

    def run_python(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The parity runtime's Python, in this Airflow's environment and layout."""
        return self._run("python", *args, timeout=timeout)

    def _run(self, binary: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self._bin(binary), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def airflow(self, *args: str, timeout: float = 120) -> str:
        result = self._run("airflow", *args, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> LocalAirflow:
        self.home.mkdir(parents=True, exist_ok=True)
        self.folders = install_mwaa_layout(
            self.home, dags=self.dags_source, plugins_zip=self.plugins_zip, manifest=self.manifest
        )
        self.database.start()
        self.airflow("db", "migrate")
        for component in self.components:
            self.processes[component] = self._spawn(component)
        self._wait_for_api()
        self.create_pools()
        return self

    def trigger(self, dag_id: str, run_id: str) -> str:
        self.airflow("dags", "unpause", dag_id)
        self.airflow("dags", "trigger", dag_id, "--run-id", run_id)
        return run_id

    def create_pools(self) -> dict[str, Any]:
        """Run the deploy-time pools handler against this Airflow, through InvokeRestApi."""
        pools = [dict(p.__dict__) for p in parse_manifest(self.manifest).pools]
        event = {
            "RequestType": "Create",
            "ResourceProperties": {
                "EnvironmentName": self.environment_name,
                "Pools": json.dumps(pools),
            },
        }
        # botocore would prefix the host with "env." (InvokeRestApi's endpoint): not here.
        mwaa = client(
            "mwaa", self.endpoint_url, self.region, config=Config(inject_host_prefix=False)
        )
        return pools_handler.apply(event, mwaa)

    def _spawn(self, component: str) -> subprocess.Popen[bytes]:
        command = "triggerer" if component.startswith("triggerer") else component
        log = open(self.home / f"{component}.log", "ab")  # noqa: SIM115 (closed by the process)
        return subprocess.Popen(
            [self._bin("airflow"), command],
            env=self.env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_for_api(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=5
                )
                return
            self._check_alive()
            time.sleep(1)
        raise TimeoutError(f"api-server not up in {timeout} s; see {self.home}/api-server.log")

    def send_signal(self, component: str, sig: signal.Signals) -> None:
        """Send ``sig`` to a component's process group (its supervisor and subprocesses)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[component].pid, sig)

    def kill(self, component: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill one component (SIGKILL: no clean-up runs, as when a host dies)."""
        self.send_signal(component, sig)
        self.processes[component].wait(timeout=60)

    def revive(self, component: str) -> None:
        self.processes[component] = self._spawn(component)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        status, run = self.rest(
            "GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        )
        if status != 200:
            raise RuntimeError(f"GET dag run {dag_id}/{run_id}: {status} {run}")
        return dict(run)

    def rest(
        self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """Call the public REST API (``/api/v2``) as an admin: (status, JSON answer)."""
        base = f"http://127.0.0.1:{self.port}"
        with urllib.request.urlopen(f"{base}/auth/token", timeout=30) as reply:
            token = json.loads(reply.read())["access_token"]
        url = f"{base}/api/v2{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(
            url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, answer = self.rest(method, path, body=body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

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
        result = self.run_python("-c", script, dag_id, run_id, task_id, str(map_index))
        if result.returncode != 0:
            raise RuntimeError(f"could not fail the try:\n{result.stderr[-3000:]}")

    def stop(self) -> None:
        for component in self.processes:
            self.send_signal(component, signal.SIGCONT)  # a frozen one could not exit
            self.send_signal(component, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        self.processes = {}
        self.database.stop()

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {component} exited; see {self.home}/{component}.log")
