"""Run one chunk of a job as one Fargate task.

The operator decides (the RunTask request, success or failure, the message) and defers at
once; the trigger launches and waits through the triggerer's ``Fleet`` (ml_platform.fleet),
which paces every ECS and CloudWatch Logs call of that triggerer process.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from ml_platform.contract import (
    CLIENT_TOKEN_MAX,
    STARTED_BY_MAX,
    Capacity,
    EcsBudget,
    Job,
    Manifest,
    chunk_overrides,
)
from ml_platform.cost import chunk_cost
from ml_platform.fleet import Admission, Fleet, LaunchFailed

# Stop codes that mean the task did not finish its work, whatever its exit code says.
_INTERRUPTED = {"SpotInterruption", "TaskFailedToStart", "ServiceSchedulerInitiated",
                "TerminationNotice"}  # fmt: skip
LOG_LINES_IN_FAILURE = 20
#: XCom key of each chunk's ECS facts and cost, pushed by success and failure alike.
CHUNK_RESULT_KEY = "chunk_result"
#: DescribeTasks attribute naming the task's CPU architecture.
CPU_ATTRIBUTE = "ecs.cpu-architecture"
#: Airflow's own deferral timeout trails the trigger's deadline by this much: the trigger
#: stops the task and reports first; Airflow's timeout is the backstop.
TIMEOUT_BACKSTOP = timedelta(seconds=60)
#: XCom a try writes before deferring: tells a moved trigger from a cleared try.
TRY_MARKER = "ml_platform_try"
_SECRET_ARN = re.compile(r"arn:aws[\w-]*:(?:secretsmanager|ssm):[^\s,;]+")


def capacity_strategy(capacity: Capacity) -> list[dict[str, Any]]:
    """The RunTask capacity provider strategy for a job's capacity setting (spot first)."""
    if capacity is Capacity.ON_DEMAND:
        return [{"capacityProvider": "FARGATE", "weight": 1}]
    return [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]


def client_token(*parts: object) -> str:
    """RunTask's idempotency token: the same launch step never starts a second task."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:CLIENT_TOKEN_MAX]


def started_by(*parts: object) -> str:
    """RunTask's ``startedBy`` (at most 36 characters): ListTasks finds a chunk's tasks by it."""
    return "af-" + client_token(*parts)[: STARTED_BY_MAX - 3]


class FargateJobTrigger(BaseTrigger):
    """Launches one chunk's Fargate task through the triggerer's fleet and waits for it.

    Runs in the triggerer, so RunTask is paced by one bucket per triggerer instead of by
    every worker on its own. Serializes as class path + kwargs; after a triggerer restart
    it runs again and the RunTask ``clientToken`` returns the task it already started.
    """

    def __init__(
        self,
        *,
        request: dict[str, Any],
        region: str,
        aws_conn_id: str | None,
        fleet: dict[str, Any],
        try_number: int,
        log_group: str,
        log_stream_prefix: str,
        spot_fallback: bool,
        deadline: str | None = None,
        job: str = "",
        launch_weight: float = 1.0,
        order: int = 0,
        team: str = "",
        metrics_namespace: str | None = None,
    ) -> None:
        super().__init__()
        self.request = request
        self.region = region
        self.aws_conn_id = aws_conn_id
        self.fleet = fleet
        self.try_number = try_number
        self.log_group = log_group
        self.log_stream_prefix = log_stream_prefix
        self.spot_fallback = spot_fallback
        #: ISO time by which the task must have stopped (the chunk's execution timeout).
        self.deadline = deadline
        #: Fair launch admission: the job's queue, its weight, this chunk's place in it.
        self.job = job
        self.launch_weight = launch_weight
        self.order = order
        #: Where the fleet's metrics go, and the job's team dimension.
        self.team = team
        self.metrics_namespace = metrics_namespace
        self._task_arn: str | None = None
        self._launch_sent = asyncio.Event()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "ml_platform.fargate.FargateJobTrigger",
            {
                "request": self.request,
                "region": self.region,
                "aws_conn_id": self.aws_conn_id,
                "fleet": self.fleet,
                "try_number": self.try_number,
                "log_group": self.log_group,
                "log_stream_prefix": self.log_stream_prefix,
                "spot_fallback": self.spot_fallback,
                "deadline": self.deadline,
                "job": self.job,
                "launch_weight": self.launch_weight,
                "order": self.order,
                "team": self.team,
                "metrics_namespace": self.metrics_namespace,
            },
        )

    def _where(self) -> dict[str, Any]:
        return {"aws_conn_id": self.aws_conn_id, "region": self.region}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        fleet = Fleet.get(EcsBudget(**self.fleet))
        if self.metrics_namespace:
            fleet.teams[self.job] = self.team
            fleet.report_to(self.metrics_namespace, self.aws_conn_id, self.region)
        left = None
        if self.deadline is not None:
            left = (datetime.fromisoformat(self.deadline) - datetime.now(UTC)).total_seconds()
        try:
            event = await asyncio.wait_for(self._launch_and_wait(fleet), timeout=left)
        except TimeoutError:
            stopped = await self._stop_all(fleet, "execution timeout reached")
            event = {"status": "timed_out", "task_arn": self._task_arn, "stopped": stopped}
        except asyncio.CancelledError:
            # Airflow's backstop timeout cancels without calling on_kill; stop the task here.
            if self._airflow_timeout_passed():
                await fleet.finish(self._stop_all(fleet, "Airflow deferral timeout reached"))
            raise
        if event["status"] == "stopped":
            await self._read_logs(fleet, event)
            counts = fleet.counters
            (counts.logs_missed if event["log_lines"] is None else counts.logs_copied)[
                self.job
            ] += 1
        yield TriggerEvent(event)

    def _airflow_timeout_passed(self) -> bool:
        timeout_after = getattr(self, "timeout_after", None)  # set by the triggerer
        if not isinstance(timeout_after, datetime):
            return False
        if timeout_after.tzinfo is None:
            timeout_after = timeout_after.replace(tzinfo=UTC)
        return timeout_after <= datetime.now(UTC)

    async def on_kill(self) -> None:
        """Stop the Fargate task when a user cleared or marked this try.

        Airflow 3.3's triggerer also calls ``on_kill`` when the trigger merely moved to
        another triggerer after a missed heartbeat (apache/airflow#73454): then the task
        instance is still deferred on this try, and the new owner follows the same task.
        """
        # Airflow cancels a trigger again on every sync until it is gone, and that cuts a
        # slow on_kill short: the decision and the stop run to their end regardless.
        fleet = Fleet.get(EcsBudget(**self.fleet))
        await fleet.finish(self._kill(fleet))

    async def _kill(self, fleet: Fleet) -> None:
        if await self._try_still_deferred():
            self.log.info("Trigger moved to another triggerer; its Fargate task keeps running")
            return
        await self._stop_all(fleet, "Airflow task was cleared or marked by a user")

    async def _try_still_deferred(self) -> bool:
        """Whether this trigger's task instance is deferred on this very try.

        State alone is not enough: after a clear, the next try may already have deferred
        again. Each try records its number in an XCom before deferring, and Airflow clears
        a task instance's XComs when a new try starts. Unknown counts as not deferred.
        """
        ti = getattr(self, "task_instance", None)  # set by the triggerer
        if ti is None:
            return False
        try:
            deferred, marker = await asyncio.to_thread(_deferred_and_marker, ti)
        except Exception as error:  # no answer from the triggerer's supervisor
            self.log.warning("Could not look up %s (%s); stopping its task", ti.task_id, error)
            return False
        return deferred and marker == self.try_number

    async def _stop_all(self, fleet: Fleet, reason: str) -> list[str]:
        """Stop this try's task; when its ARN is not known yet, every task it may have started."""
        cluster = self.request["cluster"]
        arns = [self._task_arn] if self._task_arn is not None else []
        # Killed while RunTask was in flight: ECS may list the task a moment later.
        for attempt in range(3 if self._launch_sent.is_set() else 1):
            if arns:
                break
            if attempt:
                await asyncio.sleep(2)
            arns = await fleet.live_tasks(
                self.request["startedBy"], cluster=cluster, try_number=self.try_number,
                **self._where(),
            )  # fmt: skip
        for arn in arns:
            self.log.warning("Stopping %s: %s", arn, reason)
            await fleet.stop(arn, cluster=cluster, reason=reason, **self._where())
        return arns

    async def _launch_and_wait(self, fleet: Fleet) -> dict[str, Any]:
        cluster = self.request["cluster"]
        task = None
        if self.try_number > 1:
            # An earlier try may have launched a task that still runs or already succeeded.
            task = await fleet.find_earlier(
                self.request["startedBy"],
                cluster=cluster,
                aws_conn_id=self.aws_conn_id,
                region=self.region,
            )
            if task is not None:
                self.log.info(
                    "Adopting %s from an earlier try (%s)", task["taskArn"], task.get("lastStatus")
                )
        if task is None:
            try:
                task = await fleet.launch(
                    self.request,
                    admission=Admission(self.job, self.launch_weight, self.order),
                    sent=self._launch_sent,
                    spot_fallback=self.spot_fallback,
                    aws_conn_id=self.aws_conn_id,
                    region=self.region,
                )
            except LaunchFailed as error:
                return {"status": "launch_failed", "reason": str(error)}
            self.log.info(
                "Launched %s on %s", task["taskArn"], task.get("capacityProviderName", "FARGATE")
            )
        self._task_arn = task["taskArn"]
        if task.get("lastStatus") != "STOPPED":
            fleet.running[self.job] += 1
            try:
                task = await fleet.wait_stopped(
                    task["taskArn"], cluster=cluster, aws_conn_id=self.aws_conn_id,
                    region=self.region,
                )  # fmt: skip
            finally:
                fleet.running[self.job] -= 1
        if task.get("lastStatus") == "MISSING":
            return {
                "status": "missing",
                "task_arn": task["taskArn"],
                "reason": task.get("stoppedReason", "MISSING"),
            }
        return stopped_event(task)

    async def _read_logs(self, fleet: Fleet, event: dict[str, Any]) -> None:
        container = self.request["overrides"]["containerOverrides"][0]["name"]
        stream = f"{self.log_stream_prefix}/{container}/{event['task_arn'].rsplit('/', 1)[-1]}"
        # A failure's last lines are worth waiting for; a success's are best effort.
        wait = fleet.budget.log_wait_seconds if succeeded(event) else None
        created = event.get("created_at")
        event["log_lines"] = await fleet.tail(
            self.log_group,
            stream,
            wait=wait,
            since=datetime.fromisoformat(created) if isinstance(created, str) else None,
            **self._where(),
        )
        event["log_stream"] = stream


def _deferred_and_marker(ti: Any) -> tuple[bool, Any]:
    """Ask Airflow (through the triggerer's supervisor) about a trigger's task instance."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.sdk.execution_time.xcom import XCom

    where = {"dag_id": ti.dag_id, "run_id": ti.run_id, "map_index": ti.map_index}
    count = RuntimeTaskInstance.get_ti_count(
        dag_id=ti.dag_id,
        map_index=ti.map_index,
        task_ids=[ti.task_id],
        run_ids=[ti.run_id],
        states=["deferred"],
    )
    return count == 1, XCom.get_one(key=TRY_MARKER, task_id=ti.task_id, **where)


def succeeded(event: dict[str, Any]) -> bool:
    return event.get("exit_code") == 0 and (event.get("stop_code") or "") not in _INTERRUPTED


def out_of_memory(event: dict[str, Any]) -> bool:
    return "OutOfMemoryError" in (event.get("container_reason") or "")


def console_url(region: str, group: str, stream: str) -> str:
    """The stream in the CloudWatch console (its fragment escapes '%' as '$25')."""

    def part(name: str) -> str:
        return urllib.parse.quote(urllib.parse.quote(name, safe=""), safe="").replace("%", "$")

    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{part(group)}/log-events/{part(stream)}"
    )


def stopped_event(task: dict[str, Any]) -> dict[str, Any]:
    """What the operator needs from a stopped task, JSON-serializable."""
    container = (task.get("containers") or [{}])[0]

    def stamp(key: str) -> str | None:
        value = task.get(key)
        return value.isoformat() if value is not None and hasattr(value, "isoformat") else value

    architecture = next(
        (a.get("value") for a in task.get("attributes") or [] if a.get("name") == CPU_ATTRIBUTE),
        None,
    )
    return {
        "status": "stopped",
        "task_arn": task["taskArn"],
        "exit_code": container.get("exitCode"),
        "container_reason": container.get("reason", ""),
        "stop_code": task.get("stopCode", ""),
        "stopped_reason": task.get("stoppedReason", ""),
        "capacity_provider": task.get("capacityProviderName", ""),
        "created_at": stamp("createdAt"),
        "pull_started_at": stamp("pullStartedAt"),
        "started_at": stamp("startedAt"),
        "stopped_at": stamp("stoppedAt"),
        # What Fargate billed: the task's own size, architecture and storage.
        "cpu": task.get("cpu"),
        "memory": task.get("memory"),
        "cpu_architecture": architecture,
        "ephemeral_storage_gib": (task.get("ephemeralStorage") or {}).get("sizeInGiB"),
    }


class FargateChunkOperator(BaseOperator):
    """Runs one chunk of a job's partitions as one Fargate task, deferring while it runs.

    :param job: the job's manifest entry.
    :param manifest: the environment's manifest (cluster, network, region).
    :param chunk: the partitions this task processes; mapped over by the DAG.
    :param fleet: the triggerer's ECS budget. Default: the manifest's.
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
        fleet: EcsBudget | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.manifest = manifest
        self.chunk = chunk
        self.aws_conn_id = aws_conn_id
        self.fleet_budget = fleet or manifest.fleet

    # -- launch: no AWS call on the worker; the triggerer's fleet launches --------------

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        self.log.info(
            "Chunk %s: %d partitions (%s); launching through the triggerer",
            ti.map_index,
            len(self.chunk),
            ", ".join(self.chunk[:5]) + (" ..." if len(self.chunk) > 5 else ""),
        )
        deadline = None
        if self.execution_timeout is not None:
            deadline = (datetime.now(UTC) + self.execution_timeout).isoformat()
        ti.xcom_push(key=TRY_MARKER, value=ti.try_number)
        self.defer(
            trigger=FargateJobTrigger(
                request=self.run_task_request(context),
                region=self.manifest.region,
                aws_conn_id=self.aws_conn_id,
                fleet=self.fleet_budget.to_dict(),
                try_number=ti.try_number,
                log_group=self.job.logs.group,
                log_stream_prefix=self.job.logs.stream_prefix,
                spot_fallback=self.job.capacity is Capacity.SPOT_WITH_FALLBACK,
                deadline=deadline,
                job=self.job.name,
                launch_weight=self.job.launch_weight,
                order=ti.map_index,
                team=self.job.team,
                metrics_namespace=self.manifest.observability.namespace,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout + TIMEOUT_BACKSTOP if self.execution_timeout else None,
        )
        raise AssertionError("unreachable: defer() raises")  # pragma: no cover

    def run_task_request(self, context: Any) -> dict[str, Any]:
        """The RunTask request of this chunk and try."""
        ti = context["ti"]
        run_id = context["run_id"]
        map_index = ti.map_index
        tags = {
            **self.job.tags,
            "dag": ti.dag_id,
            "run": run_id[:256],
            "chunk": str(map_index),
            "try": str(ti.try_number),
        }
        return {
            "cluster": self.manifest.cluster,
            "taskDefinition": self.job.task_definition_family,
            "count": 1,
            "capacityProviderStrategy": capacity_strategy(self.job.capacity),
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": self.manifest.network.subnets,
                    "securityGroups": self.manifest.network.security_groups,
                    "assignPublicIp": "DISABLED",
                }
            },
            "overrides": chunk_overrides(
                self.job.container_name,
                self.chunk,
                logical_date=context["dag_run"].run_after.isoformat(),
                run_id=run_id,
                chunk_index=map_index,
            ),
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "propagateTags": "TASK_DEFINITION",
            "enableECSManagedTags": True,
            # The same for every retry of this chunk: a retry finds what earlier tries
            # started. A user's clear raises max_tries, so a cleared chunk runs afresh.
            "startedBy": started_by(ti.dag_id, ti.task_id, run_id, map_index, ti.max_tries),
            # Different per try: a repeated launch of one try never starts a second task.
            "clientToken": client_token(ti.dag_id, ti.task_id, run_id, map_index, ti.try_number),
        }

    # -- completion -----------------------------------------------------------------------

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") == "launch_failed":
            raise AirflowException(f"job {self.job.name!r}: {event.get('reason')}")
        if event.get("status") == "timed_out":
            stopped = ", ".join(event.get("stopped") or []) or "none had started"
            raise AirflowException(
                f"job {self.job.name!r} chunk exceeded its execution timeout of "
                f"{self.job.execution_timeout_seconds} s (launch to stop); Fargate task "
                f"stopped: {stopped}. Raise execution_timeout on the job if chunks need longer."
            )
        if event.get("status") != "stopped":
            raise AirflowException(
                f"Fargate task {event.get('task_arn')} of job {self.job.name!r} could not be "
                f"followed: {event.get('reason', event)}"
            )
        lines = self._copy_logs(event)
        cost = chunk_cost(
            self.manifest.prices,
            event,
            cpu_units=self.job.cpu,
            memory_mib=self.job.memory_mib,
            architecture=self.job.cpu_architecture,
            ephemeral_gib=self.job.ephemeral_storage_gib,
        )
        result = {
            "chunk": context["ti"].map_index,
            "partitions": len(self.chunk),
            "task_arn": event["task_arn"],
            "exit_code": event.get("exit_code"),
            "stop_code": event.get("stop_code") or "",
            "capacity_provider": event.get("capacity_provider"),
            "started_at": event.get("started_at"),
            "stopped_at": event.get("stopped_at"),
            "billed_seconds": cost.billed_seconds,
            "cost_usd": cost.usd,
        }
        self.log.info(
            "Fargate cost of this chunk: $%.6f (%d s billed, %s, %s%s)",
            cost.usd,
            cost.billed_seconds,
            cost.architecture,
            event.get("capacity_provider") or "FARGATE",
            f", Spot at {self.manifest.prices.spot_discount:.0%} off" if cost.spot else "",
        )
        # Failed chunks cost money too: the run's summary reads this key for every chunk.
        context["ti"].xcom_push(key=CHUNK_RESULT_KEY, value=result)
        if succeeded(event):
            self.log.info("Chunk %s succeeded", result["chunk"])
            return result
        message = self._failure_message(event, lines)
        if out_of_memory(event):
            raise AirflowFailException(message)  # the same size fails again: no retry
        raise AirflowException(message)

    def _failure_message(self, event: dict[str, Any], lines: list[str]) -> str:
        why = event.get("container_reason") or event.get("stopped_reason") or "no reason given"
        head = (
            f"job {self.job.name!r} chunk failed: exit code {event.get('exit_code')}, "
            f"stop code {event.get('stop_code') or '-'}: {why}"
        )
        advice = self._advice(event)
        if advice:
            head += f"\n{advice}"
        tail = "\n".join(lines[-LOG_LINES_IN_FAILURE:])
        return f"{head}\nlast log lines:\n{tail}" if tail else head

    def _advice(self, event: dict[str, Any]) -> str:
        """What the user should do, for the stop reasons that have a known cause."""
        reason = f"{event.get('container_reason', '')} {event.get('stopped_reason', '')}"
        job = self.job
        if out_of_memory(event):
            return (
                f"Out of memory: the task has {job.memory_mib} MiB ({job.cpu} CPU units). "
                f"Raise memory_mib on the MlJob {job.name!r}; not retried, the same size "
                "would fail again."
            )
        if event.get("stop_code") == "SpotInterruption":
            return "Spot capacity was reclaimed before the work finished; the retry starts anew."
        if "CannotPullContainerError" in reason:
            return (
                f"Fargate could not pull the image {job.image}: check that it exists in the "
                "registry and that the job's execution role may pull it."
            )
        if "ResourceInitializationError" in reason:
            secrets = sorted(set(_SECRET_ARN.findall(reason)))
            named = f" (secret: {', '.join(secrets)})" if secrets else ""
            return (
                f"Fargate could not prepare the task{named}: check that each secret of the "
                f"job exists and its execution role may read it, and that the image {job.image} "
                "and the log group are reachable from the task's subnets."
            )
        return ""

    def _copy_logs(self, event: dict[str, Any]) -> list[str]:
        """Write the container's last lines (read once by the triggerer) into this log."""
        stream = str(event.get("log_stream") or "")
        where = f"CloudWatch {self.job.logs.group} {stream}"
        if stream:
            self.log.info(
                "Container log stream: %s",
                console_url(self.manifest.region, self.job.logs.group, stream),
            )
        lines = event.get("log_lines")
        if lines is None:
            self.log.info("Container log not copied (log read budget busy); see %s", where)
            return []
        self.log.info("Container log, last %d lines (%s):", len(lines), where)
        for line in lines:
            self.log.info("[model] %s", line)
        return list(lines)
