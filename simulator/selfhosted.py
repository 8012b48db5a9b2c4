"""The self-hosted Airflow backend on 127.0.0.1: the real image's components as containers.

What runs is what ECS runs: the image built from ``runtime/image`` (the image asset of the
synthesized assembly when it has one, else the same build context staged by
``constructs_lib.airflow_image``), its entrypoint, its commands (``init`` once, then
``api-server``, ``scheduler``, ``dag-processor`` and triggerers), configured through the
variables the task definitions set (``AIRFLOW_DB_*``, the fernet key body, the shared JWT
secret and secret key, ``ML_PLATFORM_POOLS``...). The metadata database is a real
PostgreSQL (``simulator.postgres``); AWS is the local endpoint (moto + the Fargate
simulator), reached through the ``aws_default`` connection as ``LocalAirflow`` does.

Where this differs from AWS, on purpose or because only one machine is here:

- **Base image.** Built ``FROM`` the local Python 3.12 base (``simulator.containers``:
  pyenv's 3.12 on debootstrapped bookworm), not ``python:3.12-slim`` from a registry.
- **Network.** ``--network host`` instead of awsvpc: every component shares 127.0.0.1,
  so ports are picked free (api-server, scheduler health and log servers, each
  triggerer's log server) instead of 8080/8974/8793/8794; names such as
  ``<prefix>-api-server`` resolve to 127.0.0.1 through ``--add-host`` instead of Cloud
  Map / Service Connect; no security groups, no load balancer, no TLS (the api-server
  is reached directly, ``AIRFLOW__API__BASE_URL`` is plain http).
- **Database.** PostgreSQL 15 from the machine, trust authentication, ``sslmode=disable``
  (ECS: RDS/Aurora with ``require``); the password is still passed and quoted.
- **Secrets.** Random values made here and passed as plain environment variables (ECS:
  Secrets Manager ``secrets``); same names, same values in every component.
- **Task logs.** A host folder mounted at ``/opt/airflow/logs`` in every component, so the
  harness reads them as it reads ``LocalAirflow``'s; ECS sends them to CloudWatch
  (remote logging), which is not configured here.
- **Limits and life cycle.** No cpu/memory limits on the Airflow containers, no ECS health
  checks or restarts (a component that exits fails the run), ``init`` run by the harness
  instead of the deploy's one-off task; scheduler, dag-processor and triggerer refresh
  faster than their defaults (as ``LocalAirflow``), so a run takes seconds.
- **Manifest.** The image holds the harness's manifest (schedules off, the demo's cut
  partitions) in place of the synthesized one, but with the synthesized placeholders for
  the deploy-time values (``${AWS::Region}``, subnets, security group): the entrypoint
  fills them in from ``ML_PLATFORM_DEPLOY_VALUES`` (here the simulator's ids), as on ECS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import shutil
import string
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import IO, Any

from constructs_lib.airflow_image import MANIFEST_NAME, stage_airflow_image
from ml_platform.contract import parse_manifest
from simulator.airflow_local import AirflowQueries, free_port
from simulator.bootstrap import airflow_connection
from simulator.containers import (
    AIRFLOW_VERSION,
    ULIMITS,
    BuildSource,
    Engine,
    RunningContainer,
)
from simulator.postgres import DATABASE, USER, LocalPostgres

SERVICES = ("api-server", "scheduler", "dag-processor")
ADMIN_USERNAME = "admin"
NOTES_USERNAME = "ml-platform-notes"  # constructs_lib.airflow_self_hosted.NOTES_USERNAME
#: Checked by the entrypoint's quoting: a generated RDS password may hold any of these.
DB_PASSWORD = "local:p@ss/w%rd#?"


def _random(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def assembly_airflow_asset(cdk_out: Path, env: str) -> BuildSource | None:
    """The Airflow image asset of ``env``'s synthesized assembly (the staged folder that
    holds ``entrypoint.py`` and ``airflow.cfg``), as the CDK CLI's publisher builds it."""
    for assets in sorted((cdk_out / f"assembly-{env}").glob("*.assets.json")):
        for asset_hash, image in json.loads(assets.read_text()).get("dockerImages", {}).items():
            folder = assets.parent / image["source"].get("directory", "")
            if (folder / "entrypoint.py").is_file() and (folder / "airflow.cfg").is_file():
                return BuildSource.from_assembly(cdk_out, asset_hash)
    return None


def airflow_build_source(
    cdk_out: Path, env: str, manifest: dict[str, Any], *, version: str = AIRFLOW_VERSION
) -> BuildSource:
    """What to build for ``env``'s local run: the assembly's image asset with the local
    manifest in place of the synthesized one (every other file, hence every other layer,
    as deployed); before the assembly has one, the same context staged from the repo."""
    deployed = assembly_airflow_asset(cdk_out, env)
    if deployed is None:
        return BuildSource(stage_airflow_image(manifest, version=version))
    local = Path(tempfile.mkdtemp(prefix="mlp-airflow-assembly-")) / "context"
    shutil.copytree(deployed.context, local)
    (local / "dags" / MANIFEST_NAME).write_text(json.dumps(manifest, sort_keys=True, indent=2))
    return dataclasses.replace(deployed, context=local)


#: The manifest's deploy-time values: placeholders in the synthesized copy.
DEPLOY_TIME_FIELDS = ("region", "network")


def with_deploy_placeholders(
    local: dict[str, Any], synthesized: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``local`` with the synthesized placeholders back in its deploy-time fields, and
    each placeholder's local value (what ECS's ``ML_PLATFORM_DEPLOY_VALUES`` holds)."""
    baked = {**local, **{name: synthesized[name] for name in DEPLOY_TIME_FIELDS}}
    values: dict[str, str] = {}

    def walk(placeholder: Any, value: Any) -> None:
        if isinstance(placeholder, dict):
            for key in placeholder:
                walk(placeholder[key], value[key])
        elif isinstance(placeholder, list):
            for item, local_item in zip(placeholder, value, strict=True):
                walk(item, local_item)
        elif isinstance(placeholder, str) and placeholder.startswith("${"):
            values[placeholder[2:-1]] = value

    for name in DEPLOY_TIME_FIELDS:
        walk(synthesized[name], local[name])
    return baked, values


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except json.JSONDecodeError:  # an HTML page (FAB's Flask views answer some paths)
        return body.decode(errors="replace")


class InitFailed(RuntimeError):
    """The image's ``init`` command exited non-zero."""


class SelfHostedAirflow(AirflowQueries):
    """The self-hosted backend's containers against a local PostgreSQL and AWS endpoint.

    :param home: a folder for the components' output and the task logs.
    :param manifest: the local manifest (baked into the image as ECS's image has it).
    :param source: the image's build context (``airflow_build_source``).
    :param triggerers: triggerer containers (ECS: the triggerer service's task count).
    """

    def __init__(
        self,
        home: Path,
        manifest: dict[str, Any],
        *,
        source: BuildSource,
        endpoint_url: str,
        region: str,
        poll_seconds: float = 2.0,
        parallelism: int = 16,
        triggerers: int = 1,
        engine: Engine | None = None,
        deploy_values: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.manifest = manifest
        self.source = source
        self.engine = engine or Engine.detect()
        self.database = LocalPostgres()
        self.port = free_port()
        self.prefix = f"mlp-{uuid.uuid4().hex[:6]}"
        self.environment_name = self.prefix
        self.admin = (ADMIN_USERNAME, _random(24))
        self.image = ""
        self.components = [*SERVICES] + [
            "triggerer" if i == 0 else f"triggerer-{i + 1}" for i in range(triggerers)
        ]
        self.containers: dict[str, RunningContainer] = {}
        self._outputs: dict[str, IO[str]] = {}
        self._token = ""
        api = f"{self.prefix}-api-server"
        pools = [dataclasses.asdict(pool) for pool in parse_manifest(manifest).pools]
        #: What every component gets: the task definitions' variable names.
        self.env = {
            "AIRFLOW_DB_HOST": "127.0.0.1",
            "AIRFLOW_DB_PORT": str(self.database.port),
            "AIRFLOW_DB_NAME": DATABASE,
            "AIRFLOW_DB_SSLMODE": "disable",
            "AIRFLOW_DB_USER": USER,
            "AIRFLOW_DB_PASSWORD": DB_PASSWORD,
            "AIRFLOW_FERNET_KEY_BODY": _random(43),
            "AIRFLOW__API_AUTH__JWT_SECRET": _random(48),
            "AIRFLOW__API__SECRET_KEY": _random(48),
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(manifest["max_map_length"]),
            "AIRFLOW__TRIGGERER__CAPACITY": "1000",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{api}:{self.port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            # Local pace (as LocalAirflow): seconds, not ECS's defaults.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW_CONN_AWS_DEFAULT": airflow_connection(endpoint_url, region),
            "ML_PLATFORM_POLL_SECONDS": str(poll_seconds),
            "ML_PLATFORM_DEPLOY_VALUES": json.dumps(deploy_values or {}),
            "NO_PROXY": "127.0.0.1,localhost," + ",".join(self.hostnames()),
        }
        #: What only the deploy-time ``init`` task gets.
        notes_password = _random(32)
        self.init_env = {
            "AIRFLOW_ADMIN_USERNAME": self.admin[0],
            "AIRFLOW_ADMIN_PASSWORD": self.admin[1],
            "AIRFLOW_NOTES_USERNAME": NOTES_USERNAME,
            "AIRFLOW_NOTES_PASSWORD": notes_password,
            "ML_PLATFORM_POOLS": json.dumps(pools),
        }
        #: Each triggerer its own log server port (one host network here).
        self.component_env: dict[str, dict[str, str]] = {
            name: {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
            for name in self.components
            if name.startswith("triggerer")
        }
        # The scheduler runs the tasks; summarize writes the run's note as this user.
        self.component_env["scheduler"] = {
            "ML_PLATFORM_API_URL": f"http://{api}:{self.port}",
            "ML_PLATFORM_API_USERNAME": NOTES_USERNAME,
            "ML_PLATFORM_API_PASSWORD": notes_password,
        }

    def hostnames(self) -> list[str]:
        return [f"{self.prefix}-{name}" for name in self.components]

    # -- the image and its commands ---------------------------------------------------

    def build(self) -> str:
        if not self.image:
            tag = f"localhost/ml-platform-airflow:local-{uuid.uuid4().hex[:8]}"
            self.image = self.engine.build(self.source, tag)
        return self.image

    def _container_args(self, name: str, env: dict[str, str]) -> list[str]:
        args = [
            "--name", f"{self.prefix}-{name}-{uuid.uuid4().hex[:4]}",
            "--hostname", f"{self.prefix}-{name}",
            "--network", "host", *ULIMITS,
            # An init process as PID 1, as ECS's initProcessEnabled gives every component.
            "--init",
            "-v", f"{self.home / 'logs'}:/opt/airflow/logs",
        ]  # fmt: skip
        for host in self.hostnames():
            args += ["--add-host", f"{host}:127.0.0.1"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        return args

    def run_command(
        self, *command: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """A one-off container of the image (as ECS runs the deploy's ``init`` task)."""
        environment = {**self.env, **self.init_env, **(env or {})}
        return self.engine(
            "run", "--rm", *self._container_args(command[0], environment), self.build(),
            *command, check=False, timeout=timeout,
        )  # fmt: skip

    def exec(self, component: str, *command: str) -> subprocess.CompletedProcess[str]:
        """A command inside a running component's container (as ECS runs a health check:
        same container, same hostname, same environment)."""
        container = self.containers[component].name
        return self.engine("exec", container, *command, check=False, timeout=120)

    def health_check(self, component: str) -> subprocess.CompletedProcess[str]:
        """The image's ``health <component>`` command, in that component's container."""
        component_type = "triggerer" if component.startswith("triggerer") else component
        return self.exec(
            component, "/opt/airflow/.venv/bin/python", "/opt/airflow/entrypoint.py",
            "health", component_type,
        )  # fmt: skip

    def init(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run_command("init", env=env)

    def _spawn(self, component: str) -> RunningContainer:
        command = "triggerer" if component.startswith("triggerer") else component
        environment = {**self.env, **self.component_env.get(component, {})}
        created = self.engine(
            "create", *self._container_args(component, environment), self.build(), command
        )
        container = created.stdout.strip().splitlines()[-1]
        output = self._outputs.setdefault(component, open(self.home / f"{component}.log", "a"))  # noqa: SIM115

        def emit(line: str) -> None:
            output.write(line + "\n")
            output.flush()

        process = subprocess.Popen(
            [*self.engine.command, "start", "--attach", container],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return RunningContainer(self.engine, container, process, emit)

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> SelfHostedAirflow:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        (self.home / "logs").chmod(0o777)  # the image's user (50000) writes here
        self.build()
        self.database.start()
        done = self.init()
        (self.home / "init.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise InitFailed(f"init exited {done.returncode}:\n{done.stderr[-3000:]}")
        for component in self.components:
            self.containers[component] = self._spawn(component)
        self._wait_for_api()
        return self

    def _wait_for_api(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self.health()
                return
            self._check_alive()
            time.sleep(1)
        raise TimeoutError(f"api-server not up in {timeout} s; see {self.home}/api-server.log")

    def stop(self) -> None:
        for container in self.containers.values():
            container.stop(timeout=20)
        for container in self.containers.values():
            with contextlib.suppress(TimeoutError):
                container.wait(timeout=40)
        self.containers = {}
        for output in self._outputs.values():
            output.close()
        self.database.stop()
        if self.image:
            self.engine("rmi", self.image, check=False)

    def __enter__(self) -> SelfHostedAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_alive(self) -> None:
        for component, container in self.containers.items():
            if container.poll() is not None:
                raise RuntimeError(
                    f"the {component} container exited; see {self.home}/{component}.log"
                )

    # -- the api-server, as a user reaches it ---------------------------------------------

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health`` (no login)."""
        url = f"http://127.0.0.1:{self.port}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=10) as reply:
            answer: dict[str, Any] = json.loads(reply.read())
            return answer

    def login(self, username: str, password: str) -> tuple[int, dict[str, Any]]:
        """FAB's ``POST /auth/token``: (status, answer)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/auth/token",
            method="POST",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def rest(
        self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """Call ``path`` (from the server's root) as the admin: (status, JSON answer)."""
        if not self._token:
            status, answer = self.login(*self.admin)
            if status != 201:
                raise RuntimeError(f"admin login refused: {status} {answer}")
            self._token = answer["access_token"]
        url = f"http://127.0.0.1:{self.port}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(
            url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status, _json_or_text(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, _json_or_text(error.read())

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run = self.api("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")
        return dict(run)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        status, answer = self.rest(method, f"/api/v2{path}", body=body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    def trigger(self, dag_id: str, run_id: str) -> str:
        """Unpause and trigger through the public REST API, as a user would."""
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        self.api("POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})
        return run_id


def self_hosted_airflow(
    cdk_out: Path, env: str, endpoint_url: str, region: str, home: Path, manifest: dict[str, Any],
    **options: Any,
) -> SelfHostedAirflow:  # fmt: skip
    """The self-hosted backend for ``env``, built from what ``cdk deploy`` would publish."""
    synthesized = json.loads((cdk_out / "manifests" / f"{env}.json").read_text())
    baked, values = with_deploy_placeholders(manifest, synthesized)
    return SelfHostedAirflow(
        home,
        manifest,
        source=airflow_build_source(cdk_out, env, baked),
        deploy_values=values,
        endpoint_url=endpoint_url,
        region=region,
        **options,
    )
