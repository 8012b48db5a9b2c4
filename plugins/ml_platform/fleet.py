"""One fleet per triggerer process: paced launches, batched status checks, bounded log reads.

Every job trigger in a triggerer process shares its ``Fleet``:

- **Launch admission.** RunTask goes through one token bucket (the Fargate launch limit
  divided among the triggerers), served fairly: each launch token goes to the waiting job
  with the least weighted service (start-time fair queuing, the job's ``launch_weight``),
  and within a job to the lowest map index, so a small job's chunks start within seconds
  while a big one ramps. Throttling and "capacity unavailable" are retried with
  backoff and jitter, never counted as job failures; spot falls back to on-demand when the
  job allows. ``clientToken`` makes a repeated launch return the task it already started.
- **Fleet watcher.** One loop calls DescribeTasks with up to 100 task ARNs per call,
  spread evenly over the poll interval and capped by a read bucket, backing off on
  throttling, and hands each stopped task to the trigger waiting for it.
- **Stops.** StopTask (timeouts, a user's clear or mark) goes through a paced queue that
  finishes its work even when the caller stops waiting.
- **Logs.** Stopped tasks' last lines are read in batches: one FilterLogEvents call names
  up to 100 streams of a log group (the stops of the same half second), through a log
  bucket. A stream not ingested yet is asked for again in the next batch. Failed tasks
  wait for their lines; succeeded ones wait at most ``log_wait_seconds`` and otherwise
  point to their CloudWatch stream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
import random
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError

from ml_platform.contract import (
    DESCRIBE_TASKS_MAX_ARNS,
    FLEET_METRICS_INTERVAL_SECONDS,
    EcsBudget,
)
from ml_platform.metrics import FleetCounters, fleet_metric_data
from ml_platform.metrics import batches as metric_batches

log = logging.getLogger(__name__)
T = TypeVar("T")

THROTTLED = {"ThrottlingException", "Throttling", "TooManyRequestsException",
             "RequestLimitExceeded", "ServerException"}  # fmt: skip
CAPACITY = "capacity is unavailable"
MAX_BATCH = DESCRIBE_TASKS_MAX_ARNS
#: FilterLogEvents takes at most 100 logStreamNames (botocore's InputLogStreamNames).
LOG_STREAMS_PER_CALL = 100
#: Stops arriving within this long share one FilterLogEvents call.
LOG_BATCH_SECONDS = 0.5
#: How long a stream may take to show up (CloudWatch ingests with a delay).
LOG_MISSING_SECONDS = 60.0
#: Reads start this long before now when the task's creation time is not known.
LOG_LOOKBACK = timedelta(hours=1)
# Our own pacing handles throttling; botocore's hidden retries would multiply calls.
NO_SDK_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


class LaunchFailed(Exception):
    """RunTask refused for a reason that retrying will not fix."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def batches(items: list[str], size: int = MAX_BATCH) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AsyncBucket:
    """A token bucket for coroutines; ``penalize`` empties it after a throttling answer."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()
        self.blocked_until = 0.0

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def take(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self._refill(now)
            if self.tokens >= 1 and now >= self.blocked_until:
                self.tokens -= 1
                return True
            wait = max((1 - self.tokens) / self.rate, self.blocked_until - now, 0.001)
            if deadline is not None and now + wait > deadline:
                return False
            await asyncio.sleep(wait)

    def penalize(self, seconds: float) -> None:
        self.tokens = 0
        self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)


@dataclass(frozen=True)
class Admission:
    """Where a launch waits: its job's queue, the job's weight, its place in that queue."""

    job: str = ""
    weight: float = 1.0
    order: int = 0


@dataclass
class _JobQueue:
    weight: float
    #: Weighted launches granted so far (virtual time), compared across jobs.
    served: float
    waiting: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)


class FairLaunchQueue:
    """Hands a bucket's tokens to waiting launches, fairly across jobs.

    Start-time fair queuing: every token goes to the job with the least weighted service
    so far (each grant adds 1/weight), and a job that starts waiting joins at the current
    virtual time, so it neither waits behind the backlog of a job that was there first nor
    collects credit for the time it was idle. Within a job, the lowest order (map index)
    goes first.
    """

    def __init__(self, bucket: AsyncBucket) -> None:
        self.bucket = bucket
        self.jobs: dict[str, _JobQueue] = {}
        self.virtual = 0.0
        self._sequence = itertools.count()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None

    async def admit(self, admission: Admission) -> None:
        """Return when this launch may call RunTask (one token spent for it)."""
        queue = self.jobs.get(admission.job)
        if queue is None or not queue.waiting:
            served = self.virtual if queue is None else max(queue.served, self.virtual)
            queue = self.jobs[admission.job] = _JobQueue(max(admission.weight, 1e-6), served)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(queue.waiting, (admission.order, next(self._sequence), future))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        self._wake.set()
        await future

    def waiting(self) -> int:
        return sum(1 for q in self.jobs.values() for *_, f in q.waiting if not f.done())

    def _next(self) -> tuple[_JobQueue, asyncio.Future[None]] | None:
        while True:
            ready = [q for q in self.jobs.values() if q.waiting]
            if not ready:
                return None
            queue = min(ready, key=lambda q: q.served)
            *_, future = queue.waiting[0]
            if future.done():  # its launch was cancelled while it waited
                heapq.heappop(queue.waiting)
                continue
            return queue, future

    async def _dispatch(self) -> None:
        while True:
            if self._next() is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self.bucket.take()
            chosen = self._next()
            if chosen is None:  # every waiter left meanwhile: keep the token
                self.bucket.tokens += 1
                continue
            queue, future = chosen
            heapq.heappop(queue.waiting)
            self.virtual = queue.served
            queue.served += 1 / queue.weight
            future.set_result(None)

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher


@dataclass
class Backoff:
    """Exponential backoff with full jitter."""

    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0

    def next(self) -> float:
        self.attempt += 1
        return random.uniform(0, min(self.cap, self.base * 2**self.attempt))

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class _Stop:
    task_arn: str
    cluster: str
    reason: str
    aws_conn_id: str | None
    region: str
    done: asyncio.Future[None]


@dataclass
class _LogRead:
    group: str
    stream: str
    where: tuple[str | None, str]
    since_ms: int
    #: A success stops waiting here (monotonic); None: a failure waits for its lines.
    deadline: float | None
    #: A stream still absent by then never got a line: [] instead of waiting on.
    missing_deadline: float
    future: asyncio.Future[list[str] | None]


@dataclass
class _Watch:
    futures: dict[str, list[asyncio.Future[dict[str, Any]]]] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)


class Fleet:
    """Shared by every trigger of one event loop (one triggerer process)."""

    _by_loop: ClassVar[dict[int, Fleet]] = {}

    @classmethod
    def get(cls, budget: EcsBudget) -> Fleet:
        """The process's fleet. A trigger carrying a different budget (a deploy changed
        it) re-paces the shared fleet: the newest budget wins, and the change is logged."""
        loop = asyncio.get_running_loop()
        fleet = cls._by_loop.get(id(loop))
        if fleet is None or fleet.loop is not loop:
            fleet = cls._by_loop[id(loop)] = Fleet(budget, loop)
        elif fleet.budget != budget:
            log.warning("ECS budget changed from %s to %s", fleet.budget, budget)
            fleet.repace(budget)
        return fleet

    def __init__(self, budget: EcsBudget, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.launches = AsyncBucket(budget.launch_rate, budget.launch_burst)
        self.launch_queue = FairLaunchQueue(self.launches)
        self.reads = AsyncBucket(budget.read_rate, budget.read_burst)
        self.log_reads = AsyncBucket(budget.log_rate, budget.log_burst)
        self.stops = AsyncBucket(budget.stop_rate, budget.stop_burst)
        self.budget = budget
        self._stop_queue: asyncio.Queue[_Stop] = asyncio.Queue()
        self._stopper: asyncio.Task[None] | None = None
        self._clients: dict[tuple[str, str | None, str], Any] = {}
        self._client_lock = asyncio.Lock()
        self._client_contexts: list[Any] = []
        self._watches: dict[tuple[str | None, str, str], _Watch] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._unfinished: set[asyncio.Task[Any]] = set()
        self._log_requests: list[_LogRead] = []
        self._log_reader: asyncio.Task[None] | None = None
        self._log_wake = asyncio.Event()
        #: Metrics: counted between writes; tasks followed per job; where to write.
        self.counters = FleetCounters()
        self.running: collections.Counter[str] = collections.Counter()
        self.teams: dict[str, str] = {}
        self._metrics_target: tuple[str, str | None, str] | None = None
        self._metrics_writer: asyncio.Task[None] | None = None
        self.metric_writes = 0

    def repace(self, budget: EcsBudget) -> None:
        for bucket, rate, burst in (
            (self.launches, budget.launch_rate, budget.launch_burst),
            (self.reads, budget.read_rate, budget.read_burst),
            (self.log_reads, budget.log_rate, budget.log_burst),
            (self.stops, budget.stop_rate, budget.stop_burst),
        ):
            bucket.rate, bucket.burst = rate, burst
            bucket.tokens = min(bucket.tokens, burst)
        self.budget = budget

    async def finish(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end in this process even if the caller is cancelled."""
        task = self.loop.create_task(work)
        self._unfinished.add(task)
        task.add_done_callback(self._unfinished.discard)
        return await asyncio.shield(task)

    # -- clients --------------------------------------------------------------------------

    async def client(self, service: str, aws_conn_id: str | None, region: str) -> Any:
        """One client per service, connection and region for the whole process."""
        key = (service, aws_conn_id, region)
        async with self._client_lock:  # concurrent first calls must not build one each
            if key not in self._clients:
                from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

                hook: Any = AwsGenericHook(
                    aws_conn_id=aws_conn_id,
                    region_name=region,
                    client_type=service,
                    config=NO_SDK_RETRIES,
                )
                context = await hook.get_async_conn()
                self._clients[key] = await context.__aenter__()
                self._client_contexts.append(context)
        return self._clients[key]

    # -- launch admission -----------------------------------------------------------------

    async def launch(
        self,
        request: dict[str, Any],
        *,
        aws_conn_id: str | None,
        region: str,
        spot_fallback: bool,
        admission: Admission | None = None,
        sent: asyncio.Event | None = None,
    ) -> dict[str, Any]:
        """RunTask, paced, fairly admitted and retried; returns the started task.

        :param admission: the job's queue and this chunk's place (a retry waits again).
        :param sent: set just before the first RunTask call leaves (past the bucket).
        """
        admission = admission or Admission()
        ecs = await self.client("ecs", aws_conn_id, region)
        request = dict(request)
        backoff = Backoff(base=1.0, cap=60.0)
        deadline = time.monotonic() + self.budget.launch_deadline_seconds
        while True:
            await self.launch_queue.admit(admission)
            if sent is not None:
                sent.set()
            try:
                response = await ecs.run_task(**request)
            except ClientError as error:
                if error_code(error) not in THROTTLED:
                    raise LaunchFailed(f"RunTask refused: {error}") from error
                delay = backoff.next()
                self.launches.penalize(delay)
                self.counters.throttled["RunTask"] += 1
                reason = "RunTask throttled"
            else:
                if response.get("tasks"):
                    task: dict[str, Any] = response["tasks"][0]
                    self.counters.launches[admission.job] += 1
                    return task
                reason = "; ".join(f.get("reason", "?") for f in response.get("failures", []))
                if CAPACITY not in reason.lower():
                    raise LaunchFailed(f"RunTask failed: {reason}")
                strategy = request.get("capacityProviderStrategy", [])
                if (
                    spot_fallback
                    and strategy[:1]
                    and strategy[0].get("capacityProvider") == "FARGATE_SPOT"
                ):
                    log.warning("No spot capacity (%s); launching on demand", reason)
                    request["capacityProviderStrategy"] = [
                        {"capacityProvider": "FARGATE", "weight": 1}
                    ]
                    request["clientToken"] = request["clientToken"][:56] + "ondemand"
                    continue
                delay = backoff.next()
            if time.monotonic() + delay > deadline:
                raise LaunchFailed(
                    f"gave up launching after {self.budget.launch_deadline_seconds:.0f} s: {reason}"
                )
            log.info("%s; retrying in %.1f s", reason, delay)
            await asyncio.sleep(delay)

    async def find_earlier(
        self, started_by: str, *, cluster: str, aws_conn_id: str | None, region: str
    ) -> dict[str, Any] | None:
        """A task an earlier try started that is still running or has succeeded."""
        ecs = await self.client("ecs", aws_conn_id, region)
        arns: list[str] = []
        for status in ("RUNNING", "STOPPED"):
            await self.reads.take()
            response = await ecs.list_tasks(
                cluster=cluster, startedBy=started_by, desiredStatus=status
            )
            arns += response.get("taskArns", [])
        if not arns:
            return None
        await self.reads.take()
        tasks = (await ecs.describe_tasks(cluster=cluster, tasks=arns[:MAX_BATCH]))["tasks"]
        for task in tasks:
            # Not one being stopped (a timed-out or killed try's): that one is not adopted.
            if task.get("lastStatus") != "STOPPED" and task.get("desiredStatus") == "RUNNING":
                return dict(task)
        for task in tasks:
            exit_codes = [c.get("exitCode") for c in task.get("containers", [])]
            if (
                exit_codes
                and all(code == 0 for code in exit_codes)
                and task.get("stopCode") == "EssentialContainerExited"
            ):
                return dict(task)
        return None

    async def live_tasks(
        self,
        started_by: str,
        *,
        cluster: str,
        try_number: int,
        aws_conn_id: str | None,
        region: str,
    ) -> list[str]:
        """Tasks of one try (by ``startedBy`` and the ``try`` tag) that are not stopping."""
        ecs = await self.client("ecs", aws_conn_id, region)
        await self.reads.take()
        arns = (
            await ecs.list_tasks(cluster=cluster, startedBy=started_by, desiredStatus="RUNNING")
        ).get("taskArns", [])
        if not arns:
            return []
        await self.reads.take()
        described = await ecs.describe_tasks(
            cluster=cluster, tasks=arns[:MAX_BATCH], include=["TAGS"]
        )
        found = []
        for task in described.get("tasks", []):
            tags = {t.get("key"): t.get("value") for t in task.get("tags", [])}
            if tags.get("try", str(try_number)) == str(try_number):
                found.append(str(task["taskArn"]))
        return found

    async def stop(
        self, task_arn: str, *, cluster: str, reason: str, aws_conn_id: str | None, region: str
    ) -> None:
        """StopTask through a paced queue; wait for it. The stop still happens when the
        caller gives up waiting (Airflow bounds ``on_kill`` at 30 s; a mass clear of
        thousands of chunks needs longer at ECS's rate)."""
        done: asyncio.Future[None] = self.loop.create_future()
        self._stop_queue.put_nowait(
            _Stop(task_arn, cluster, reason[:255], aws_conn_id, region, done)
        )
        if self._stopper is None or self._stopper.done():
            self._stopper = self.loop.create_task(self._stop_forever())
        await asyncio.shield(done)

    async def _stop_forever(self) -> None:
        backoff = Backoff(base=0.5, cap=10.0)
        while True:
            stop = await self._stop_queue.get()
            ecs = await self.client("ecs", stop.aws_conn_id, stop.region)
            await self.stops.take()
            try:
                await ecs.stop_task(cluster=stop.cluster, task=stop.task_arn, reason=stop.reason)
            except ClientError as error:
                if error_code(error) in THROTTLED:
                    self.counters.throttled["StopTask"] += 1
                    self.stops.penalize(backoff.next())
                    self._stop_queue.put_nowait(stop)  # again, after the pause
                    continue
                log.warning("StopTask %s failed: %s", stop.task_arn, error)
            backoff.reset()
            if not stop.done.done():
                stop.done.set_result(None)

    # -- fleet watcher --------------------------------------------------------------------

    async def wait_stopped(
        self, task_arn: str, *, cluster: str, aws_conn_id: str | None, region: str
    ) -> dict[str, Any]:
        """Wait until the task is STOPPED; return its description."""
        watch = self._watches.setdefault((aws_conn_id, region, cluster), _Watch())
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        watch.futures.setdefault(task_arn, []).append(future)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = self.loop.create_task(self._sweep_forever())
        try:
            return await future
        finally:
            waiting = watch.futures.get(task_arn, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                watch.futures.pop(task_arn, None)
                watch.misses.pop(task_arn, None)

    def watched(self) -> int:
        return sum(len(w.futures) for w in self._watches.values())

    async def _sweep_forever(self) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        idle_since = time.monotonic()
        while True:
            started = time.monotonic()
            work = [
                (key, list(watch.futures)) for key, watch in self._watches.items() if watch.futures
            ]
            calls = sum(-(-len(arns) // MAX_BATCH) for _, arns in work)
            if not calls:
                if time.monotonic() - idle_since > 60:
                    return  # restarted by the next waiter
                await asyncio.sleep(0.5)
                continue
            idle_since = time.monotonic()
            # Spread the calls over the poll interval instead of bursting them.
            spacing = self.budget.poll_interval / calls
            for (aws_conn_id, region, cluster), arns in work:
                for batch in batches(arns):
                    await self._describe(batch, aws_conn_id, region, cluster, backoff)
                    await asyncio.sleep(spacing)
            rest = self.budget.poll_interval - (time.monotonic() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def _describe(
        self, batch: list[str], aws_conn_id: str | None, region: str, cluster: str, backoff: Backoff
    ) -> None:
        ecs = await self.client("ecs", aws_conn_id, region)
        watch = self._watches[(aws_conn_id, region, cluster)]
        while True:
            await self.reads.take()
            try:
                response = await ecs.describe_tasks(cluster=cluster, tasks=batch)
                backoff.reset()
                break
            except ClientError as error:
                if error_code(error) not in THROTTLED:
                    log.warning("DescribeTasks failed: %s", error)
                    return
                delay = backoff.next()
                self.counters.throttled["DescribeTasks"] += 1
                log.warning("DescribeTasks throttled; pausing %.1f s", delay)
                self.reads.penalize(delay)
        for task in response.get("tasks", []):
            if task.get("lastStatus") == "STOPPED":
                self._resolve(watch, task["taskArn"], dict(task))
        for failure in response.get("failures", []):
            arn = failure.get("arn", "")
            watch.misses[arn] = watch.misses.get(arn, 0) + 1
            # Right after RunTask a task can be briefly unknown; three misses is gone.
            if watch.misses[arn] >= 3:
                self._resolve(
                    watch,
                    arn,
                    {
                        "taskArn": arn,
                        "lastStatus": "MISSING",
                        "stoppedReason": failure.get("reason", "MISSING"),
                    },
                )

    @staticmethod
    def _resolve(watch: _Watch, arn: str, task: dict[str, Any]) -> None:
        for future in watch.futures.get(arn, []):
            if not future.done():
                future.set_result(task)

    # -- logs -----------------------------------------------------------------------------

    async def tail(
        self,
        group: str,
        stream: str,
        *,
        aws_conn_id: str | None,
        region: str,
        wait: float | None,
        since: datetime | None = None,
    ) -> list[str] | None:
        """The stream's last lines, read in a batch with up to 99 other streams of the
        group (one FilterLogEvents call); None when ``wait`` passed first.

        :param wait: seconds to wait (a success); None waits for the lines (a failure),
            or ``LOG_MISSING_SECONDS`` for a stream that never appears ([]).
        :param since: when the task was created: the read starts there.
        """
        now = time.monotonic()
        request = _LogRead(
            group=group,
            stream=stream,
            where=(aws_conn_id, region),
            since_ms=int((since or datetime.now(UTC) - LOG_LOOKBACK).timestamp() * 1000),
            deadline=None if wait is None else now + wait,
            missing_deadline=now + LOG_MISSING_SECONDS,
            future=self.loop.create_future(),
        )
        self._log_requests.append(request)
        if self._log_reader is None or self._log_reader.done():
            self._log_reader = self.loop.create_task(self._read_logs_forever())
        self._log_wake.set()
        return await request.future

    async def _read_logs_forever(self) -> None:
        while True:
            if not self._log_requests:
                self._log_wake.clear()
                await self._log_wake.wait()
                continue
            # Let the stops of the same moment join one call.
            await asyncio.sleep(LOG_BATCH_SECONDS)
            self._expire_log_requests()
            batches: dict[tuple[tuple[str | None, str], str], list[_LogRead]] = {}
            for request in self._log_requests:
                batch = batches.setdefault((request.where, request.group), [])
                if len(batch) < LOG_STREAMS_PER_CALL:
                    batch.append(request)
            for (where, group), batch in batches.items():
                await self._read_batch(where, group, batch)

    def _expire_log_requests(self) -> None:
        now = time.monotonic()
        for request in list(self._log_requests):
            if request.future.done():
                self._log_requests.remove(request)
            elif request.deadline is not None and now >= request.deadline:
                request.future.set_result(None)
                self._log_requests.remove(request)

    async def _read_batch(
        self, where: tuple[str | None, str], group: str, batch: list[_LogRead]
    ) -> None:
        """One FilterLogEvents (and its next pages) for up to 100 streams of one group."""
        aws_conn_id, region = where
        logs = await self.client("logs", aws_conn_id, region)
        lines: dict[str, collections.deque[str]] = {
            r.stream: collections.deque(maxlen=self.budget.log_lines) for r in batch
        }
        request: dict[str, Any] = {
            "logGroupName": group,
            "logStreamNames": sorted(lines),
            "startTime": min(r.since_ms for r in batch),
        }
        backoff = Backoff(base=0.5, cap=30.0)
        while True:
            await self.log_reads.take()
            try:
                page = await logs.filter_log_events(**request)
            except ClientError as error:
                code = error_code(error)
                if code == "ResourceNotFoundException":  # no such log group: nothing to copy
                    for r in batch:
                        self._resolve_log(r, [])
                    return
                if code not in THROTTLED:
                    raise
                self.counters.throttled["FilterLogEvents"] += 1
                self.log_reads.penalize(backoff.next())
                continue
            for event in page.get("events", []):
                lines[event["logStreamName"]].append(event["message"].rstrip("\n"))
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
        now = time.monotonic()
        for r in batch:
            if lines[r.stream]:
                self._resolve_log(r, list(lines[r.stream]))
            elif now >= r.missing_deadline:
                self._resolve_log(r, [])  # the stream never appeared (nothing was written)
            # else: not ingested yet; the next batch asks again

    def _resolve_log(self, request: _LogRead, lines: list[str]) -> None:
        if not request.future.done():
            request.future.set_result(lines)
        with contextlib.suppress(ValueError):
            self._log_requests.remove(request)

    # -- metrics --------------------------------------------------------------------------

    def report_to(self, namespace: str, aws_conn_id: str | None, region: str) -> None:
        """Write this fleet's metrics to ``namespace`` once a minute (the first trigger
        that names a namespace starts the writer; nothing is written while idle)."""
        self._metrics_target = (namespace, aws_conn_id, region)
        if self._metrics_writer is None or self._metrics_writer.done():
            self._metrics_writer = self.loop.create_task(self._write_metrics_forever())

    async def _write_metrics_forever(self) -> None:
        while True:
            await asyncio.sleep(FLEET_METRICS_INTERVAL_SECONDS)
            await self.write_metrics()

    async def write_metrics(self) -> int:
        """One PutMetricData with what was counted since the last; returns calls made."""
        if self._metrics_target is None:
            return 0
        namespace, aws_conn_id, region = self._metrics_target
        data = fleet_metric_data(self.counters.take(), self.running, self.teams)
        calls = 0
        for batch in metric_batches(data):
            try:
                cloudwatch = await self.client("cloudwatch", aws_conn_id, region)
                await cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)
                calls += 1
            except Exception as error:  # a lost metric must not stop the fleet
                log.warning("Fleet metrics not sent (%s: %s)", type(error).__name__, error)
        self.metric_writes += calls
        return calls

    async def close(self) -> None:
        await self.launch_queue.close()
        for task in (self._sweeper, self._stopper, self._log_reader, self._metrics_writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for context in self._client_contexts:
            await context.__aexit__(None, None, None)
        self._clients.clear()
        self._client_contexts.clear()
