"""Run one chunk of a job as one Fargate task: launch, defer while it runs, report.

The operator decides (launch parameters, success or failure, the message); the trigger
only waits for the task to stop; the ECS and Logs APIs are reached through the Amazon
provider's hooks, so the AWS connection (and its endpoint_url) applies everywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.ecs import EcsHook
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.exceptions import ClientError

from ml_platform.manifest import Capacity, Job, Manifest

# Stop codes that mean the task did not finish its work, whatever its exit code says.
_INTERRUPTED = {"SpotInterruption", "TaskFailedToStart", "ServiceSchedulerInitiated",
                "TerminationNotice"}  # fmt: skip
_THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException",
              "RequestLimitExceeded"}  # fmt: skip
LOG_LINES_IN_FAILURE = 20
MAX_LOG_LINES = 10_000


def capacity_strategy(capacity: Capacity, *, fallback: bool = False) -> list[dict[str, Any]]:
    """The RunTask capacity provider strategy for a job's capacity setting."""
    if capacity is Capacity.ON_DEMAND or fallback:
        return [{"capacityProvider": "FARGATE", "weight": 1}]
    return [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def client_token(*parts: object) -> str:
    """RunTask's idempotency token: the same launch step never starts a second task."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:64]


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class FargateTaskTrigger(BaseTrigger):
    """Waits for one ECS task to stop; survives throttling with backoff and jitter."""

    def __init__(
        self,
        *,
        task_arn: str,
        cluster: str,
        region: str,
        aws_conn_id: str | None = "aws_default",
        poll_interval: float = 15.0,
    ) -> None:
        super().__init__()
        self.task_arn = task_arn
        self.cluster = cluster
        self.region = region
        self.aws_conn_id = aws_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "ml_platform.fargate.FargateTaskTrigger",
            {
                "task_arn": self.task_arn,
                "cluster": self.cluster,
                "region": self.region,
                "aws_conn_id": self.aws_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = EcsHook(aws_conn_id=self.aws_conn_id, region_name=self.region)
        backoff = self.poll_interval
        async with await hook.get_async_conn() as client:
            while True:
                try:
                    response = await client.describe_tasks(
                        cluster=self.cluster, tasks=[self.task_arn]
                    )
                except ClientError as error:
                    if _error_code(error) not in _THROTTLED:
                        raise
                    backoff = min(backoff * 2, 300.0)
                    self.log.warning("DescribeTasks throttled; next look in %.0f s", backoff)
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                    continue
                backoff = self.poll_interval
                if response.get("failures") and not response.get("tasks"):
                    reason = response["failures"][0].get("reason", "unknown")
                    yield TriggerEvent(
                        {"status": "missing", "task_arn": self.task_arn, "reason": reason}
                    )
                    return
                task = response["tasks"][0]
                if task.get("lastStatus") == "STOPPED":
                    yield TriggerEvent(stopped_event(task))
                    return
                await asyncio.sleep(self.poll_interval)


def stopped_event(task: dict[str, Any]) -> dict[str, Any]:
    """What the operator needs from a stopped task, JSON-serializable."""
    container = (task.get("containers") or [{}])[0]

    def stamp(key: str) -> str | None:
        value = task.get(key)
        return value.isoformat() if value is not None and hasattr(value, "isoformat") else value

    return {
        "status": "stopped",
        "task_arn": task["taskArn"],
        "exit_code": container.get("exitCode"),
        "container_reason": container.get("reason", ""),
        "stop_code": task.get("stopCode", ""),
        "stopped_reason": task.get("stoppedReason", ""),
        "capacity_provider": task.get("capacityProviderName", ""),
        "created_at": stamp("createdAt"),
        "started_at": stamp("startedAt"),
        "stopped_at": stamp("stoppedAt"),
    }


class FargateChunkOperator(BaseOperator):
    """Runs one chunk of a job's partitions as one Fargate task, deferring while it runs.

    :param job: the job's manifest entry.
    :param manifest: the environment's manifest (cluster, network, region).
    :param chunk: the partitions this task processes; mapped over by the DAG.
    :param poll_interval: seconds between status checks while deferred.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        job: Job,
        manifest: Manifest,
        chunk: list[str],
        aws_conn_id: str | None = "aws_default",
        poll_interval: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.manifest = manifest
        self.chunk = chunk
        self.aws_conn_id = aws_conn_id
        self.poll_interval = poll_interval

    # -- launch ---------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        run_id = context["run_id"]
        map_index = ti.map_index
        started = self._run_task(context, ti, run_id, map_index)
        self.log.info(
            "Chunk %s (%d partitions: %s) runs as %s on %s",
            map_index,
            len(self.chunk),
            ", ".join(self.chunk[:5]) + (" ..." if len(self.chunk) > 5 else ""),
            started["taskArn"],
            started.get("capacityProviderName", "FARGATE"),
        )
        self.defer(
            trigger=FargateTaskTrigger(
                task_arn=started["taskArn"],
                cluster=self.manifest.cluster,
                region=self.manifest.region,
                aws_conn_id=self.aws_conn_id,
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout,
        )
        raise AssertionError("unreachable: defer() raises")  # pragma: no cover

    def _run_task(self, context: Any, ti: Any, run_id: str, map_index: int) -> dict[str, Any]:
        client = EcsHook(aws_conn_id=self.aws_conn_id, region_name=self.manifest.region).conn
        run_after = context["dag_run"].run_after
        environment = [
            {"name": "ML_PARTITIONS", "value": json.dumps(self.chunk)},
            {"name": "ML_LOGICAL_DATE", "value": run_after.isoformat()},
            {"name": "ML_RUN_ID", "value": run_id},
            {"name": "ML_CHUNK_INDEX", "value": str(map_index)},
        ]
        tags = {
            **self.job.tags,
            "dag": ti.dag_id,
            "run": run_id[:256],
            "chunk": str(map_index),
            "try": str(ti.try_number),
        }
        request = {
            "cluster": self.manifest.cluster,
            "taskDefinition": self.job.task_definition_family,
            "count": 1,
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": self.manifest.network.subnets,
                    "securityGroups": self.manifest.network.security_groups,
                    "assignPublicIp": "DISABLED",
                }
            },
            "overrides": {
                "containerOverrides": [
                    {"name": self.job.container_name, "environment": environment}
                ]
            },
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "propagateTags": "TASK_DEFINITION",
            "enableECSManagedTags": True,
            "startedBy": f"airflow/{ti.dag_id}"[:128],
            "clientToken": client_token(ti.dag_id, ti.task_id, run_id, map_index, ti.try_number),
        }
        fallback = False
        while True:
            response = client.run_task(
                **request,
                capacityProviderStrategy=capacity_strategy(self.job.capacity, fallback=fallback),
            )
            if response.get("tasks"):
                task: dict[str, Any] = response["tasks"][0]
                return task
            reason = "; ".join(f.get("reason", "?") for f in response.get("failures", []))
            if (
                self.job.capacity is Capacity.SPOT_WITH_FALLBACK
                and not fallback
                and "capacity" in reason.lower()
            ):
                self.log.warning("No spot capacity (%s); launching on demand", reason)
                fallback = True
                request["clientToken"] = client_token(request["clientToken"], "on-demand")
                continue
            raise AirflowException(f"RunTask for job {self.job.name!r} failed: {reason}")

    # -- completion -----------------------------------------------------------------------

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "stopped":
            raise AirflowException(
                f"Fargate task {event.get('task_arn')} of job {self.job.name!r} could not be "
                f"followed: {event.get('reason', event)}"
            )
        lines = self._forward_logs(event["task_arn"])
        exit_code = event.get("exit_code")
        stop_code = event.get("stop_code") or ""
        result = {
            "chunk": context["ti"].map_index,
            "partitions": len(self.chunk),
            "task_arn": event["task_arn"],
            "exit_code": exit_code,
            "stop_code": stop_code,
            "capacity_provider": event.get("capacity_provider"),
            "started_at": event.get("started_at"),
            "stopped_at": event.get("stopped_at"),
        }
        if exit_code == 0 and stop_code not in _INTERRUPTED:
            self.log.info("Chunk %s succeeded", result["chunk"])
            return result
        raise AirflowException(self._failure_message(event, lines))

    def _failure_message(self, event: dict[str, Any], lines: list[str]) -> str:
        why = event.get("container_reason") or event.get("stopped_reason") or "no reason given"
        head = (
            f"job {self.job.name!r} chunk failed: exit code {event.get('exit_code')}, "
            f"stop code {event.get('stop_code') or '-'}: {why}"
        )
        if event.get("stop_code") == "SpotInterruption":
            head += " (spot capacity was reclaimed; the retry starts a new task)"
        tail = "\n".join(lines[-LOG_LINES_IN_FAILURE:])
        return f"{head}\nlast log lines:\n{tail}" if tail else head

    def _forward_logs(self, task_arn: str) -> list[str]:
        """Copy the container's log stream into this task's log (once, at the end)."""
        task_id = task_arn.rsplit("/", 1)[-1]
        stream = f"{self.job.logs.stream_prefix}/{self.job.container_name}/{task_id}"
        hook = AwsLogsHook(aws_conn_id=self.aws_conn_id, region_name=self.manifest.region)
        lines: list[str] = []
        try:
            for event in hook.get_log_events(
                log_group=self.job.logs.group, log_stream_name=stream, start_from_head=True
            ):
                lines.append(event["message"].rstrip("\n"))
                if len(lines) >= MAX_LOG_LINES:
                    break
        except ClientError as error:
            self.log.warning("Could not read %s/%s: %s", self.job.logs.group, stream, error)
            return lines
        self.log.info("Container log %s (%d lines):", stream, len(lines))
        for line in lines:
            self.log.info("[model] %s", line)
        return lines


def execution_timeout(job: Job) -> timedelta:
    return timedelta(seconds=job.execution_timeout_seconds)
