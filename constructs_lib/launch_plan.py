"""The launch plan: every job's schedule laid on a clock, and when each job's last chunk
starts in the minutes where jobs launch together.

The model is the triggerers' own (``ml_platform.fleet``): the environment's launch budget
(``EcsBudget``: a burst, then a steady rate; the triggerers' shares add up to it) hands
out RunTask calls, each to the waiting job with the least weighted launches so far
(``launch_weight``), chunks in map-index order. A minute's launches all wait from its
first second: the plan is what the launch budget allows, not Airflow's own scheduling
delay nor Fargate's minute of provisioning.

Schedules are UTC cron expressions; a job fires at a minute of the day if it fires then
on any day of a week, so jobs that coincide only on some days are planned together.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from croniter import croniter

#: A Monday, 00:00 UTC: a week of firings from here covers every weekday's clock.
_WEEK_START = datetime(2026, 1, 5, tzinfo=UTC)
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class PlannedJob:
    name: str
    schedule: str | None
    #: Chunk tasks per run; None when the partitions are only known at run time (S3).
    chunks: int | None
    weight: float = 1.0
    #: Seconds after the scheduled time by which every chunk must have started.
    start_window_seconds: int | None = None


@dataclass(frozen=True)
class BusyMinute:
    """A minute of the day at which more than one job, or a ramp beyond the burst, launches."""

    minute: int
    launches: int
    #: Job -> seconds after the minute at which its last chunk is launched.
    latest: Mapping[str, float]
    jobs: tuple[str, ...] = field(default=())

    @property
    def clock(self) -> str:
        return f"{self.minute // 60:02d}:{self.minute % 60:02d}"

    def to_dict(self) -> dict[str, object]:
        return {
            "minute_utc": self.clock,
            "launches": self.launches,
            "last_launch_seconds": {job: round(s, 1) for job, s in self.latest.items()},
        }


def minutes_of_day(schedule: str | None) -> set[int]:
    """The minutes of a day (0-1439) at which ``schedule`` fires on some day of a week."""
    if schedule is None:
        return set()
    expression = croniter(schedule, _WEEK_START - timedelta(seconds=1))
    end = _WEEK_START + timedelta(days=7)
    minutes: set[int] = set()
    while True:
        fired: datetime = expression.get_next(datetime)
        if fired >= end:
            return minutes
        minutes.add(fired.hour * 60 + fired.minute)
        if len(minutes) == MINUTES_PER_DAY:
            return minutes


def token_time(index: int, *, rate: float, burst: float) -> float:
    """Seconds after the minute at which the ``index``-th launch (from 0) may leave."""
    immediate = max(int(burst), 1)
    return 0.0 if index < immediate else (index - immediate + 1) / rate


def last_launches(
    launches: Mapping[str, tuple[int, float]], *, rate: float, burst: float
) -> dict[str, float]:
    """Job -> seconds to its last launch, for ``{job: (chunks, weight)}`` all waiting at 0.

    Start-time fair queuing as ``FairLaunchQueue`` serves it: the next token goes to the
    job with the least weighted service (ties to the job named first)."""
    left = {job: count for job, (count, _) in launches.items() if count > 0}
    heap = [(0.0, order, job) for order, job in enumerate(left)]
    heapq.heapify(heap)
    latest: dict[str, float] = {}
    index = 0
    while heap:
        served, order, job = heapq.heappop(heap)
        latest[job] = token_time(index, rate=rate, burst=burst)
        index += 1
        left[job] -= 1
        if left[job]:
            heapq.heappush(heap, (served + 1 / launches[job][1], order, job))
    return latest


def plan(jobs: Sequence[PlannedJob], *, rate: float, burst: float) -> list[BusyMinute]:
    """Every minute at which jobs launch together or one job launches more than the burst."""
    by_minute: dict[int, list[PlannedJob]] = {}
    for job in jobs:
        if job.chunks:
            for minute in minutes_of_day(job.schedule):
                by_minute.setdefault(minute, []).append(job)
    busy = []
    for minute, together in sorted(by_minute.items()):
        launches = sum(job.chunks or 0 for job in together)
        if len(together) < 2 and launches <= burst:
            continue
        latest = last_launches(
            {job.name: (job.chunks or 0, job.weight) for job in together}, rate=rate, burst=burst
        )
        busy.append(BusyMinute(minute, launches, latest, tuple(j.name for j in together)))
    return busy


def window_problems(
    jobs: Sequence[PlannedJob], busy: Iterable[BusyMinute], *, rate: float, burst: float
) -> dict[str, str]:
    """Job -> why its start window cannot be met (the worst minute), with the arithmetic."""
    windows = {job.name: job for job in jobs if job.start_window_seconds is not None}
    worst: dict[str, tuple[float, BusyMinute]] = {}
    for minute in busy:
        for name, seconds in minute.latest.items():
            job = windows.get(name)
            if job is None or seconds <= (job.start_window_seconds or 0):
                continue
            if name not in worst or seconds > worst[name][0]:
                worst[name] = (seconds, minute)
    out = {}
    for name, (seconds, minute) in worst.items():
        job = windows[name]
        out[name] = (
            f"at {minute.clock} UTC, {minute.launches:,} launches ({', '.join(minute.jobs)}) "
            f"at {rate:g}/s after a burst of {burst:g}: its last chunk starts at ~{seconds:.0f} s, "
            f"its start_window is {job.start_window_seconds} s"
        )
    return out


def smallest_chunk_size(
    partitions: int,
    window: int,
    others: Mapping[int, Mapping[str, tuple[int, float]]],
    *,
    name: str,
    weight: float,
    rate: float,
    burst: float,
    largest: int,
) -> int | None:
    """The smallest chunk size (1..largest) whose chunks all start within ``window`` at
    every minute the job fires, given the other jobs launching then (``{minute: {job:
    (chunks, weight)}}``); None if none does. Bigger chunks never start later: bisection."""

    def fits(size: int) -> bool:
        chunks = math.ceil(partitions / size)
        return all(
            last_launches({**together, name: (chunks, weight)}, rate=rate, burst=burst)[name]
            <= window
            for together in others.values()
        )

    if largest < 1 or not fits(largest):
        return None
    low, high = 1, largest
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return low
