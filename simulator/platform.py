"""The whole platform on 127.0.0.1: local AWS + Fargate simulator + a real Airflow."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.airflow_local import AirflowQueries, LocalAirflow
from simulator.bootstrap import bootstrap, deployed_airflow, model_behaviours
from simulator.fargate import ContainerBehaviour, FargateSimulator
from simulator.selfhosted import self_hosted_airflow
from simulator.server import LocalAws

REGION = "us-east-1"


def local_airflow(
    cdk_out: Path, env: str, aws: LocalAws, home: Path, manifest: dict[str, Any], **options: Any
) -> LocalAirflow:
    """A local Airflow fed with what ``cdk deploy`` would upload for ``env``, answering
    MWAA's InvokeRestApi for that environment's name on the local endpoint."""
    deployed = deployed_airflow(cdk_out, env)
    airflow = LocalAirflow(
        home,
        manifest,
        dags=deployed.dags,
        plugins_zip=deployed.plugins_zip,
        environment_name=deployed.environment_name,
        airflow_version=deployed.airflow_version,
        endpoint_url=aws.endpoint_url,
        region=REGION,
        **options,
    )
    aws.serve_airflow(deployed.environment_name, airflow.rest)
    return airflow


class LocalPlatform:
    """``with LocalPlatform(cdk_out, "dev") as platform: platform.run("dynamic-pricing")``.

    :param customize: edits the local manifest before Airflow reads it (fewer partitions,
        shorter retry delays); schedules are always removed so only triggered runs happen.
    :param start_latency: seconds from RunTask to RUNNING. Keep it above ~6 s: Airflow
        3.3 fails a deferred task whose trigger fires before the scheduler has seen the
        worker exit (apache/airflow#67287, #72716); real Fargate needs ~60 s to start.
    :param min_run_seconds: each task stays RUNNING at least this long.
    :param backend: ``"mwaa"`` (``LocalAirflow``: MWAA's runtime and layout as processes)
        or ``"self-hosted"`` (the self-hosted image's components as containers,
        ``simulator.selfhosted``).
    """

    BACKENDS = ("mwaa", "self-hosted")

    def __init__(
        self,
        cdk_out: Path,
        env: str,
        *,
        home: Path | None = None,
        customize: Callable[[dict[str, Any]], None] | None = None,
        start_latency: float = 6.0,
        min_run_seconds: float = 2.0,
        behaviour: Callable[[str], ContainerBehaviour] | None = None,
        backend: str = "mwaa",
    ) -> None:
        if backend not in self.BACKENDS:
            raise ValueError(f"backend {backend!r}: one of {self.BACKENDS}")
        self.backend = backend
        self.cdk_out = cdk_out
        self.env = env
        self.home = home or Path(tempfile.mkdtemp(prefix="ml-platform-airflow-"))
        self.customize = customize
        self.min_run_seconds = min_run_seconds
        self._behaviours: dict[str, ContainerBehaviour] = {}
        self.simulator = FargateSimulator(
            behaviour=behaviour or self._behaviours.__getitem__,
            start_latency=start_latency,
            region=REGION,
        )
        self.aws = LocalAws(self.simulator)
        self.manifest: dict[str, Any] = {}
        self.airflow: AirflowQueries | None = None

    def __enter__(self) -> LocalPlatform:
        self.aws.start()
        try:
            self.manifest = bootstrap(self.cdk_out, self.env, self.aws.endpoint_url, REGION)
            for job in self.manifest["jobs"]:
                job["schedule"] = None
            if self.customize:
                self.customize(self.manifest)
            self._behaviours.update(
                model_behaviours(
                    self.manifest, self.cdk_out, self.env, min_seconds=self.min_run_seconds
                )
            )
            if self.backend == "self-hosted":
                self.airflow = self_hosted_airflow(
                    self.cdk_out, self.env, self.aws.endpoint_url, REGION, self.home, self.manifest
                )
            else:
                self.airflow = local_airflow(
                    self.cdk_out, self.env, self.aws, self.home, self.manifest
                )
            self.airflow.start()
            self.airflow.wait_for_dags([job["name"] for job in self.manifest["jobs"]])
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.airflow is not None:
            self.airflow.stop()
        self.aws.stop()

    def run(self, dag_id: str, run_id: str = "local-1", timeout: float = 600) -> str:
        assert self.airflow is not None
        self.airflow.trigger(dag_id, run_id)
        return self.airflow.wait_for_run(dag_id, run_id, timeout=timeout)
