"""A local Fargate: the ECS task lifecycle, API limits and faults that moto does not model.

RunTask, DescribeTasks, StopTask and ListTasks are answered here; everything else
(clusters, task definitions, EC2, CloudWatch Logs) stays with moto. Each task goes
PROVISIONING -> PENDING -> RUNNING -> STOPPED on the wall clock, runs a container
behaviour (the job's real image as a container, ``ModelContainer``, or a scripted one
for load and fault tests), and writes its output to the task's awslogs stream in moto's
CloudWatch Logs. A real container stops as it does on Fargate: StopTask and a spot
reclaim send SIGTERM, then SIGKILL after the stop timeout (or the spot notice), and the
task stops with the exit code the container really ends with. ECS's throttling buckets answer with
real ``ThrottlingException`` errors, and every call is counted per API and per second.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from moto.ecs.models import ecs_backends
from moto.logs.models import logs_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from simulator.containers import Engine, RunningContainer

#: moto's default account.
DEFAULT_ACCOUNT_ID = "123456789012"
CAPACITY_UNAVAILABLE = (
    "Capacity is unavailable at this time. Please try again later or in a different "
    "availability zone"
)


class EcsError(Exception):
    """An ECS API error, answered as ``{"__type": code, "message": ...}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Bucket:
    """A token bucket as AWS applies them: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self, count: float = 1) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= count:
                self.tokens -= count
                return True
            return False


@dataclass(frozen=True)
class ApiLimits:
    """ECS and CloudWatch Logs limits per account and region (see shared FACTS)."""

    run_task_rate: float = 20
    run_task_burst: float = 100
    launch_rate: float = 20
    launch_burst: float = 100
    read_rate: float = 20
    read_burst: float = 100
    get_log_events_rate: float = 10
    get_log_events_burst: float = 10
    #: FilterLogEvents: 5 per second per account and region, a hard limit (AWS knowledge
    #: center, "How do I determine throttling in my CloudWatch logs?").
    filter_log_events_rate: float = 5
    filter_log_events_burst: float = 5

    @classmethod
    def unlimited(cls) -> ApiLimits:
        big = 1e9
        return cls(big, big, big, big, big, big, big, big)


#: ECS APIs that draw from the shared read bucket.
ECS_READS = {"DescribeTasks", "ListTasks", "DescribeTaskDefinition", "DescribeClusters",
             "DescribeServices", "DescribeContainerInstances", "ListClusters"}  # fmt: skip


class Container(Protocol):
    """A running container: its exit code once done."""

    def poll(self) -> int | None: ...

    def stop(self) -> None: ...


class ContainerBehaviour(Protocol):
    #: Set to a reason to make the task stop with TaskFailedToStart before running.
    fail_to_start: str
    #: The container's stop reason, e.g. "OutOfMemoryError: Container killed ...".
    reason: str

    def start(
        self, *, command: list[str], environment: dict[str, str], emit: Callable[[str], None]
    ) -> Container: ...


@dataclass
class ScriptedContainer:
    seconds: float
    exit_code: int
    started: float = field(default_factory=time.monotonic)
    stopped: bool = False

    def poll(self) -> int | None:
        if self.stopped:
            return 143
        return self.exit_code if time.monotonic() - self.started >= self.seconds else None

    def stop(self) -> None:
        self.stopped = True


@dataclass
class Scripted:
    """A container that sleeps, logs two lines and exits: cheap enough for thousands.

    :param seconds: run time, or a callable drawing one per task (a spread of run times).
    """

    seconds: float | Callable[[], float] = 5.0
    exit_code: int = 0
    reason: str = ""
    fail_to_start: str = ""
    #: Lines the container prints between its first and last line.
    lines: tuple[str, ...] = ()

    def start(
        self, *, command: list[str], environment: dict[str, str], emit: Callable[[str], None]
    ) -> Container:
        emit(f"start partitions={environment.get('ML_PARTITIONS', '[]')}")
        for line in self.lines:
            emit(line)
        emit(f"done exit_code={self.exit_code}")
        seconds = self.seconds() if callable(self.seconds) else self.seconds
        return ScriptedContainer(seconds=seconds, exit_code=self.exit_code)


class _RunsAtLeast:
    """A container the task reports RUNNING for at least ``seconds`` (Airflow timing)."""

    def __init__(self, container: RunningContainer, seconds: float) -> None:
        self.container = container
        self.not_before = time.monotonic() + seconds
        self.graceful = True

    @property
    def reason(self) -> str:
        return self.container.reason

    @property
    def image_id(self) -> str:
        return self.container.image_id

    def poll(self) -> int | None:
        code = self.container.poll()
        return None if code is None or time.monotonic() < self.not_before else code

    def stop(self, timeout: float = 30.0) -> None:
        self.not_before = 0.0
        self.container.stop(timeout)


@dataclass
class ModelContainer:
    """Runs the job's image, built from its asset (``simulator/containers.py``), as a
    container with the task definition's cpu and memory as hard limits.

    :param min_seconds: the task stays RUNNING at least this long.
    """

    engine: Engine
    image: str
    cpu_units: int
    memory_mib: int
    min_seconds: float = 0.0
    #: What the container itself reports (an OOM kill) replaces this.
    reason: str = ""
    fail_to_start: str = ""

    def start(
        self, *, command: list[str], environment: dict[str, str], emit: Callable[[str], None]
    ) -> Container:
        container = self.engine.run(
            self.image,
            command=command,
            environment=environment,
            cpu_units=self.cpu_units,
            memory_mib=self.memory_mib,
            emit=emit,
        )
        return _RunsAtLeast(container, self.min_seconds)


def family_of(task_definition: str) -> str:
    """``family``, ``family:3`` or a task definition ARN -> ``family``."""
    return task_definition.rsplit("/", 1)[-1].split(":", 1)[0]


@dataclass
class Faults:
    """Faults injected for one task definition family (the fault matrix's knobs).

    Counted faults hit the next N matching calls or tasks, then stop, so a retried call
    or a retried Airflow task gets through.
    """

    #: The next N launches are answered "Capacity is unavailable".
    capacity_failures: int = 0
    #: The same, for the next N launches on FARGATE_SPOT only.
    spot_capacity_failures: int = 0
    #: The next N tasks on FARGATE_SPOT are reclaimed ``interrupt_after`` s after starting.
    spot_interruptions: int = 0
    interrupt_after: float = 2.0
    #: API name -> the next N calls about this family's tasks are throttled.
    throttle: Counter[str] = field(default_factory=Counter)


@dataclass
class SimTask:
    arn: str
    task_id: str
    cluster_arn: str
    task_definition_arn: str
    container_name: str
    capacity_provider: str
    overrides: dict[str, Any]
    tags: list[dict[str, str]]
    started_by: str
    group: str
    created_at: float
    pending_at: float
    running_at: float
    behaviour: ContainerBehaviour
    #: Starts the container with the task's secrets added to its environment.
    start: Callable[[dict[str, str]], Container]
    #: Environment variable -> ``valueFrom`` (a Secrets Manager or SSM reference).
    secrets: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 30.0
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    container: Container | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    exit_code: int | None = None
    stop_code: str = ""
    stopped_reason: str = ""
    container_reason: str = ""
    interrupt_after: float | None = None
    #: (stop code, reason) of a stop asked for, while a real container winds down.
    stopping: tuple[str, str] | None = None
    #: The task definition's size, as DescribeTasks reports it for Fargate.
    cpu: str = "256"
    memory: str = "512"
    architecture: str = "x86_64"
    ephemeral_gib: int = 20

    def describe(self) -> dict[str, Any]:
        status = {"STOPPED": "STOPPED", "RUNNING": "RUNNING"}.get(self.last_status, "PENDING")
        container: dict[str, Any] = {
            "containerArn": self.arn.replace(":task/", ":container/") + "/model",
            "taskArn": self.arn,
            "name": self.container_name,
            "lastStatus": status,
        }
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        if self.container_reason:
            container["reason"] = self.container_reason
        out: dict[str, Any] = {
            "taskArn": self.arn,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": self.task_definition_arn,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "launchType": "FARGATE",
            "capacityProviderName": self.capacity_provider,
            "createdAt": self.created_at,
            "containers": [container],
            "overrides": self.overrides,
            "tags": self.tags,
            "group": self.group,
            "startedBy": self.started_by,
            "platformVersion": "1.4.0",
            "cpu": self.cpu,
            "memory": self.memory,
            "ephemeralStorage": {"sizeInGiB": self.ephemeral_gib},
            "attributes": [{"name": "ecs.cpu-architecture", "value": self.architecture}],
        }
        # The image pull runs from PENDING to RUNNING: Fargate bills from its start.
        pulled = self.stopped_at if self.stopped_at is not None else time.time()
        if pulled >= self.pending_at:
            out["pullStartedAt"] = self.pending_at
        if self.started_at is not None:
            out["pullStoppedAt"] = self.running_at
            out["startedAt"] = self.started_at
        if self.stopped_at is not None:
            out.update(
                stoppedAt=self.stopped_at,
                stopCode=self.stop_code,
                stoppedReason=self.stopped_reason,
            )
        return out


def _task_size(definition: Any) -> dict[str, Any]:
    """cpu, memory, architecture and storage of a (moto) task definition."""
    platform = getattr(definition, "runtime_platform", None) or {}
    storage = getattr(definition, "ephemeral_storage", None) or {}
    return {
        "cpu": str(getattr(definition, "cpu", None) or "256"),
        "memory": str(getattr(definition, "memory", None) or "512"),
        "architecture": str(platform.get("cpuArchitecture") or "X86_64").lower(),
        "ephemeral_gib": int(storage.get("sizeInGiB") or 20),
    }


@dataclass
class Metrics:
    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    #: calls per API per whole second since the epoch
    timeline: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    run_requests: list[dict[str, Any]] = field(default_factory=list)
    describe_sizes: list[int] = field(default_factory=list)
    max_running: int = 0

    def count(self, api: str, *, throttled: bool = False) -> None:
        self.calls[api] += 1
        self.timeline[int(time.time())][api] += 1
        if throttled:
            self.throttled[api] += 1

    def rate(self, apis: set[str], start: float, end: float) -> tuple[float, int]:
        """Mean and peak calls per second of ``apis`` between two epoch times."""
        seconds = range(int(start), int(end) + 1)
        per_second = [sum(self.timeline.get(s, Counter())[a] for a in apis) for s in seconds]
        return (sum(per_second) / max(end - start, 1.0), max(per_second, default=0))


class FargateSimulator:
    """The task engine. Thread-safe: the HTTP server answers on several threads.

    :param behaviour: the container behaviour of a task definition family.
    :param start_latency: seconds from RunTask to RUNNING (image pull, ENI).
    :param limits: ECS's throttling buckets (``ApiLimits.unlimited()`` to switch off).
    :param spot_notice: seconds between a spot reclaim's SIGTERM and its SIGKILL (two
        minutes on Fargate; shorter in tests).
    """

    def __init__(
        self,
        *,
        behaviour: Callable[[str], ContainerBehaviour],
        start_latency: float = 1.0,
        limits: ApiLimits | None = None,
        account: str = DEFAULT_ACCOUNT_ID,
        region: str = "us-east-1",
        spot_notice: float = 120.0,
    ) -> None:
        self.behaviour = behaviour
        self.spot_notice = spot_notice
        self.start_latency = start_latency
        self.limits = limits or ApiLimits()
        self.account = account
        self.region = region
        self.tasks: dict[str, SimTask] = {}
        #: clientToken -> (task ARN, the request that started it)
        self.tokens: dict[str, tuple[str, dict[str, Any]]] = {}
        self.faults: dict[str, Faults] = {}
        self.log_groups: dict[str, str] = {}
        self.metrics = Metrics()
        self.buckets = {
            "RunTask": Bucket(self.limits.run_task_rate, self.limits.run_task_burst),
            "launch": Bucket(self.limits.launch_rate, self.limits.launch_burst),
            "read": Bucket(self.limits.read_rate, self.limits.read_burst),
            "GetLogEvents": Bucket(
                self.limits.get_log_events_rate, self.limits.get_log_events_burst
            ),
            "FilterLogEvents": Bucket(
                self.limits.filter_log_events_rate, self.limits.filter_log_events_burst
            ),
        }
        self._lock = threading.RLock()

    # -- the API --------------------------------------------------------------------------

    def inject(self, family: str, faults: Faults) -> None:
        """Inject faults for every task of ``family`` from now on."""
        with self._lock:
            self.faults[family] = faults

    def admit(self, api: str, request: dict[str, Any] | None = None) -> None:
        """Count a call and raise ThrottlingException when its bucket is empty."""
        bucket = "read" if api in ECS_READS else api
        allowed = bucket not in self.buckets or self.buckets[bucket].take()
        if allowed and request is not None:
            allowed = not self._injected_throttle(api, request)
        self.metrics.count(api, throttled=not allowed)
        if not allowed:
            raise EcsError("ThrottlingException", "Rate exceeded")

    def _injected_throttle(self, api: str, request: dict[str, Any]) -> bool:
        with self._lock:
            families = set()
            if api == "RunTask":
                families.add(family_of(request.get("taskDefinition", "")))
            elif api in ("GetLogEvents", "FilterLogEvents"):
                families.add(self.log_groups.get(request.get("logGroupName", ""), ""))
            else:
                refs = request.get("tasks") or [request.get("task", "")]
                families |= {family_of(t.task_definition_arn) for r in refs if (t := self._find(r))}
            for family in families:
                faults = self.faults.get(family)
                if faults is not None and faults.throttle[api] > 0:
                    faults.throttle[api] -= 1
                    return True
            return False

    def handle(self, api: str, request: dict[str, Any]) -> dict[str, Any]:
        self.admit(api, request)
        with self._lock:
            handler = getattr(self, f"_{api}")
            result: dict[str, Any] = handler(request)
            return result

    def _RunTask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.metrics.run_requests.append(json.loads(json.dumps(request)))
        token = request.get("clientToken")
        if len(token or "") > 64 or len(request.get("startedBy", "")) > 36:
            raise EcsError(
                "InvalidParameterException",
                "clientToken is at most 64 and startedBy at most 36 characters.",
            )
        if token and token in self.tokens:
            # Idempotent: the same token returns the task it started, never a second one;
            # with other parameters ECS refuses it (RunTask idempotency, API reference).
            arn, first = self.tokens[token]
            if first != request:
                raise EcsError(
                    "ConflictException",
                    "The request uses the same client token as a previous, but non-identical "
                    "request.",
                )
            return {"tasks": [self.tasks[arn].describe()], "failures": []}
        backend = ecs_backends[self.account][self.region]
        cluster_name = request.get("cluster", "default").rsplit("/", 1)[-1]
        cluster = backend.clusters.get(cluster_name)
        if cluster is None:
            raise EcsError("ClusterNotFoundException", f"Cluster not found: {cluster_name}")
        try:
            definition = backend.describe_task_definition(request["taskDefinition"])
        except Exception as error:  # moto raises its own not-found type
            raise EcsError("ClientException", "Unable to describe task definition.") from error
        network = request.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
        if not network.get("subnets"):
            raise EcsError(
                "InvalidParameterException",
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            )
        strategy = request.get("capacityProviderStrategy") or [{"capacityProvider": "FARGATE"}]
        provider = strategy[0]["capacityProvider"]
        faults = self.faults.get(definition.family, Faults())
        no_capacity = {"tasks": [], "failures": [{"reason": CAPACITY_UNAVAILABLE}]}
        if provider == "FARGATE_SPOT" and faults.spot_capacity_failures > 0:
            faults.spot_capacity_failures -= 1
            return no_capacity
        if faults.capacity_failures > 0:
            faults.capacity_failures -= 1
            return no_capacity
        if not self.buckets["launch"].take():
            self.metrics.throttled["launch"] += 1
            raise EcsError("ThrottlingException", "Rate exceeded (task launches)")
        container_def: dict[str, Any] = definition.container_definitions[0]
        log_options = container_def.get("logConfiguration", {}).get("options", {})
        environment = {e["name"]: e["value"] for e in container_def.get("environment", [])}
        command = list(container_def.get("command") or [])
        for override in request.get("overrides", {}).get("containerOverrides", []):
            if override.get("name") == container_def["name"]:
                environment.update({e["name"]: e["value"] for e in override.get("environment", [])})
                command = list(override.get("command") or command)
        task_id = uuid.uuid4().hex
        arn = f"arn:aws:ecs:{self.region}:{self.account}:task/{cluster_name}/{task_id}"
        behaviour = self.behaviour(definition.family)
        interrupt_after = None
        if provider == "FARGATE_SPOT" and faults.spot_interruptions > 0:
            faults.spot_interruptions -= 1
            interrupt_after = faults.interrupt_after
        if log_options.get("awslogs-group"):
            self.log_groups[log_options["awslogs-group"]] = definition.family
        emit = self._emitter(log_options, container_def["name"], task_id)
        now = time.time()
        task = SimTask(
            arn=arn,
            task_id=task_id,
            cluster_arn=cluster.arn,
            task_definition_arn=definition.arn,
            container_name=container_def["name"],
            capacity_provider=provider,
            overrides=request.get("overrides", {}),
            tags=request.get("tags", []),
            started_by=request.get("startedBy", ""),
            group=request.get("group", f"family:{definition.family}"),
            created_at=now,
            pending_at=now + self.start_latency / 2,
            running_at=now + self.start_latency,
            behaviour=behaviour,
            start=lambda secrets: behaviour.start(
                command=command, environment={**environment, **secrets}, emit=emit
            ),
            secrets={s["name"]: s["valueFrom"] for s in container_def.get("secrets") or []},
            # ECS's default for Fargate: 30 s from SIGTERM to SIGKILL (at most 120).
            stop_timeout=float(container_def.get("stopTimeout") or 30),
            interrupt_after=interrupt_after,
            **_task_size(definition),
        )
        self.tasks[arn] = task
        if token:
            self.tokens[token] = (arn, json.loads(json.dumps(request)))
        return {"tasks": [task.describe()], "failures": []}

    def _DescribeTasks(self, request: dict[str, Any]) -> dict[str, Any]:
        self.metrics.describe_sizes.append(len(request.get("tasks", [])))
        if len(request.get("tasks", [])) > 100:
            raise EcsError("InvalidParameterException", "Tasks cannot be longer than 100.")
        self.advance()
        found, failures = [], []
        for ref in request.get("tasks", []):
            task = self._find(ref)
            if task is None:
                failures.append({"arn": ref, "reason": "MISSING"})
            else:
                found.append(task.describe())
        return {"tasks": found, "failures": failures}

    def _StopTask(self, request: dict[str, Any]) -> dict[str, Any]:
        task = self._find(request["task"])
        if task is None:
            raise EcsError("InvalidParameterException", "The referenced task was not found.")
        reason = request.get("reason", "Task stopped by user")
        if task.last_status != "STOPPED" and task.stopping is None:
            if getattr(task.container, "graceful", False):
                # SIGTERM now; STOPPED once the container has really exited.
                assert task.container is not None
                task.container.stop(task.stop_timeout)  # type: ignore[call-arg]
                task.desired_status = "STOPPED"
                task.stopping = ("UserInitiated", reason)
            else:
                if task.container is not None:
                    task.container.stop()
                self._stop(
                    task,
                    exit_code=143 if task.container else None,
                    stop_code="UserInitiated",
                    reason=reason,
                )
        return {"task": task.describe()}

    def _ListTasks(self, request: dict[str, Any]) -> dict[str, Any]:
        self.advance()
        status = request.get("desiredStatus", "RUNNING")
        family = request.get("family")
        arns = [
            t.arn
            for t in self.tasks.values()
            if t.desired_status == status
            and (not request.get("startedBy") or t.started_by == request["startedBy"])
            and (not family or f"task-definition/{family}:" in t.task_definition_arn)
        ]
        return {"taskArns": arns[:100]}

    # -- the lifecycle --------------------------------------------------------------------

    def advance(self) -> None:
        """Move every task along the wall clock; called on every read and by a ticker."""
        with self._lock:
            now = time.time()
            running = 0
            for task in self.tasks.values():
                if task.last_status == "STOPPED":
                    continue
                self._advance(task, now)
                running += task.last_status == "RUNNING"
            self.metrics.max_running = max(self.metrics.max_running, running)

    def _advance(self, task: SimTask, now: float) -> None:
        behaviour = task.behaviour
        if task.last_status == "PROVISIONING" and now >= task.pending_at:
            task.last_status = "PENDING"
        if task.last_status == "PENDING" and now >= task.running_at:
            secrets, missing = self._resolve_secrets(task.secrets)
            failure = behaviour.fail_to_start or (
                "ResourceInitializationError: unable to pull secrets or registry auth: "
                "execution resource retrieval failed: unable to retrieve secret from asm: "
                f"ResourceNotFoundException: {missing[0]}"
                if missing
                else ""
            )
            if failure:
                self._stop(task, exit_code=None, stop_code="TaskFailedToStart", reason=failure)
                return
            task.last_status = "RUNNING"
            task.started_at = now
            task.container = task.start(secrets)
        if task.container is None:
            return
        if task.stopping is not None:
            code = task.container.poll()
            if code is not None:
                task.container_reason = getattr(task.container, "reason", "")
                self._stop(task, exit_code=code, stop_code=task.stopping[0],
                           reason=task.stopping[1])  # fmt: skip
            return
        if task.last_status != "RUNNING":
            return
        interrupt = task.interrupt_after
        if (
            interrupt is not None
            and task.capacity_provider == "FARGATE_SPOT"
            and task.started_at is not None
            and now - task.started_at >= interrupt
        ):
            if getattr(task.container, "graceful", False):
                # SIGTERM with the notice; STOPPED once the container has really exited.
                task.container.stop(self.spot_notice)  # type: ignore[call-arg]
                task.desired_status = "STOPPED"
                task.stopping = ("SpotInterruption", "Your Spot Task was interrupted.")
                return
            task.container.stop()
            # The app exits 0 on SIGTERM, yet its work is not done.
            self._stop(
                task,
                exit_code=0,
                stop_code="SpotInterruption",
                reason="Your Spot Task was interrupted.",
            )
            return
        code = task.container.poll()
        if code is not None:
            reported = getattr(task.container, "reason", "")
            task.container_reason = reported or (behaviour.reason if code != 0 else "")
            self._stop(
                task,
                exit_code=code,
                stop_code="EssentialContainerExited",
                reason="Essential container in task exited",
            )

    def _resolve_secrets(self, secrets: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        """Values from the local Secrets Manager and SSM, as the ECS agent fetches them
        with the execution role; the references that do not exist."""
        values: dict[str, str] = {}
        missing: list[str] = []
        for name, reference in secrets.items():
            try:
                if ":ssm:" in reference or not reference.startswith("arn:"):
                    parameter = reference.split(":parameter", 1)[-1]
                    ssm = ssm_backends[self.account][self.region]
                    found = ssm.get_parameter(parameter)
                    if found is None:
                        raise KeyError(parameter)
                    values[name] = str(found.value)
                else:
                    # An ARN, optionally ending in :json-key:version-stage:version-id.
                    arn, _, json_key = reference.partition(":secret:")[2].partition(":")
                    secret_id = reference.split(":secret:")[0] + ":secret:" + arn
                    manager = secretsmanager_backends[self.account][self.region]
                    # moto's own API layer passes None for the optional version arguments.
                    answer = manager.get_secret_value(secret_id, None, None)  # type: ignore[arg-type]
                    value = answer["SecretString"]
                    key = json_key.split(":", 1)[0]
                    values[name] = str(json.loads(value)[key]) if key else value
            except Exception:  # moto's not-found types differ per service
                missing.append(reference)
        return values, missing

    def _stop(self, task: SimTask, *, exit_code: int | None, stop_code: str, reason: str) -> None:
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.exit_code = exit_code
        task.stop_code = stop_code
        task.stopped_reason = reason
        task.stopped_at = time.time()

    def _find(self, ref: str) -> SimTask | None:
        if not ref:
            return None
        if ref in self.tasks:
            return self.tasks[ref]
        return next((t for t in self.tasks.values() if t.task_id == ref), None)

    def _emitter(
        self, options: dict[str, str], container: str, task_id: str
    ) -> Callable[[str], None]:
        group = options.get("awslogs-group")
        prefix = options.get("awslogs-stream-prefix")
        if not group or not prefix:
            return lambda line: None
        stream = f"{prefix}/{container}/{task_id}"
        logs = logs_backends[self.account][self.region]
        logs.create_log_stream(group, stream)
        lock = threading.Lock()

        def emit(line: str) -> None:
            with lock:
                logs.put_log_events(
                    group, stream, [{"timestamp": int(time.time() * 1000), "message": line}]
                )

        return emit
