"""A local AWS endpoint on 127.0.0.1: moto's server with the Fargate simulator in front,
and MWAA's ``InvokeRestApi`` answered by a local Airflow's REST API, as MWAA answers it
from its own webserver."""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from simulator.fargate import EcsError, FargateSimulator

ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
LOGS_TARGET = "Logs_20140328."
#: CloudWatch, in botocore's protocols: JSON target, RPCv2-CBOR path, or query form.
CLOUDWATCH_TARGET = "GraniteServiceVersion20100801."
CLOUDWATCH_PATH = "/service/GraniteServiceVersion20100801/operation/"
SIMULATED = {"RunTask", "DescribeTasks", "StopTask", "ListTasks"}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: (method, path under /api/v2, query, body) -> (HTTP status, JSON answer)
RestApi = Callable[[str, str, dict[str, Any], Any], tuple[int, Any]]
MWAA_REST_PREFIX = "/restapi/"


class QuietRequestHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Thousands of polls would drown the output."""


class FargateMiddleware:
    """Answers the task-lifecycle calls itself and passes everything else to moto."""

    def __init__(self, app: WsgiApp, simulator: FargateSimulator) -> None:
        self.app = app
        self.simulator = simulator
        #: MWAA environment name -> its Airflow's REST API.
        self.airflows: dict[str, RestApi] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO", "").startswith(MWAA_REST_PREFIX):
            return self._invoke_rest_api(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        api = target.split(".", 1)[-1] if target.startswith((ECS_TARGET, LOGS_TARGET)) else ""
        cloudwatch = self._cloudwatch_api(environ, target)
        if cloudwatch:
            self.simulator.metrics.count(cloudwatch)
        try:
            if api in SIMULATED and target.startswith(ECS_TARGET):
                length = int(environ.get("CONTENT_LENGTH") or 0)
                request = json.loads(environ["wsgi.input"].read(length) or b"{}")
                return self._reply(start_response, "200 OK", self.simulator.handle(api, request))
            if api:
                # Count it, throttle it, then let moto answer (from a fresh copy of the body).
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)
                self.simulator.admit(api, json.loads(body or b"{}"))
        except EcsError as error:
            return self._reply(
                start_response,
                f"{error.status} Bad Request",
                {"__type": error.code, "message": str(error)},
            )
        return self.app(environ, start_response)

    @staticmethod
    def _cloudwatch_api(environ: dict[str, Any], target: str) -> str:
        """The CloudWatch operation of a request, or "" (counted, then moto answers)."""
        path = environ.get("PATH_INFO", "")
        if target.startswith(CLOUDWATCH_TARGET):
            return target.removeprefix(CLOUDWATCH_TARGET)
        if path.startswith(CLOUDWATCH_PATH):
            return str(path).removeprefix(CLOUDWATCH_PATH)
        if "monitoring" in environ.get("HTTP_AUTHORIZATION", "") and environ.get(
            "CONTENT_TYPE", ""
        ).startswith("application/x-www-form-urlencoded"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            return str(urllib.parse.parse_qs(body.decode()).get("Action", [""])[0])
        return ""

    def _invoke_rest_api(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        """MWAA's InvokeRestApi (POST /restapi/{Name}): Airflow's answer, or for 4xx/5xx
        a RestApiClientException / RestApiServerException carrying it, as MWAA does."""
        name = environ["PATH_INFO"].removeprefix(MWAA_REST_PREFIX)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        airflow = self.airflows.get(name)
        if airflow is None:
            return self._reply(
                start_response,
                "404 Not Found",
                {"message": f"Environment {name} not found"},
                error="ResourceNotFoundException",
            )
        status, answer = airflow(
            request["Method"], request["Path"], request.get("QueryParameters") or {},
            request.get("Body"),
        )  # fmt: skip
        body = {"RestApiStatusCode": status, "RestApiResponse": answer}
        if status < 400:
            return self._reply(start_response, "200 OK", body)
        kind = "RestApiClientException" if status < 500 else "RestApiServerException"
        return self._reply(
            start_response, "400 Bad Request", {**body, "message": str(answer)}, error=kind
        )

    @staticmethod
    def _reply(
        start_response: Callable[..., Any], status: str, body: Any, *, error: str = ""
    ) -> list[bytes]:
        payload = json.dumps(body).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(payload))),
        ]
        if error:
            headers.append(("x-amzn-ErrorType", error))
        start_response(status, headers)
        return [payload]


class LocalAws:
    """``with LocalAws(simulator) as aws:`` serves moto + Fargate on ``aws.endpoint_url``."""

    def __init__(
        self,
        simulator: FargateSimulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_seconds: float = 0.2,
    ) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        self.tick_seconds = tick_seconds
        self.middleware = FargateMiddleware(
            DomainDispatcherApplication(create_backend_app), simulator
        )
        self._server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def serve_airflow(self, environment_name: str, rest_api: RestApi) -> None:
        """Answer InvokeRestApi for ``environment_name`` with this Airflow's REST API."""
        self.middleware.airflows[environment_name] = rest_api

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> LocalAws:
        self._server = make_server(
            self.host,
            self.port,
            self.middleware,
            threaded=True,
            request_handler=QuietRequestHandler,
        )
        self._threads = [
            threading.Thread(target=self._server.serve_forever, daemon=True),
            threading.Thread(target=self._tick, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        # moto's backends live in this process: start every endpoint from a clean slate.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"), timeout=30
        ).close()
        return self

    def _tick(self) -> None:
        # Tasks move on even when nobody asks (the real ECS does not wait for readers).
        while not self._stopping.wait(self.tick_seconds):
            self.simulator.advance()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
