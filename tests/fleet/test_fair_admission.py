"""Fair launch admission (ml_platform.fleet.FairLaunchQueue): which waiting launch gets
each launch token when several jobs start at the same minute."""

from __future__ import annotations

import asyncio
import random

from ml_platform.fleet import Admission, AsyncBucket, FairLaunchQueue


def grant_order(
    waiting: list[Admission], *, cancel: frozenset[int] = frozenset()
) -> list[Admission]:
    """Every admission waits at once (in the given order); the bucket releases a token
    per grant. Returns the admissions in the order they were let through."""

    async def run() -> list[Admission]:
        queue = FairLaunchQueue(AsyncBucket(rate=5000.0, burst=1.0))
        granted: list[Admission] = []

        async def one(admission: Admission) -> None:
            await queue.admit(admission)
            granted.append(admission)

        tasks = [asyncio.create_task(one(a)) for a in waiting]
        await asyncio.sleep(0)  # all enqueued before the first grant
        for index in cancel:
            tasks[index].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await queue.close()
        return granted

    return asyncio.run(run())


def test_a_small_job_is_not_queued_behind_a_big_one() -> None:
    """At :00 the forecast's 2,000 chunks are enqueued first, then pricing's 120."""
    forecast = [Admission("location-forecast", 1.0, i) for i in range(2000)]
    pricing = [Admission("dynamic-pricing", 1.0, i) for i in range(120)]
    order = grant_order(forecast + pricing)
    assert len(order) == 2120
    last_pricing = max(i for i, a in enumerate(order) if a.job == "dynamic-pricing")
    # Equal weights alternate: pricing's last chunk is about the 240th launch, not the
    # 2,120th it would be first come, first served.
    assert last_pricing <= 241


def test_within_a_job_chunks_start_in_map_index_order() -> None:
    indexes = list(range(300))
    random.Random(7).shuffle(indexes)
    order = grant_order([Admission("forecast", 1.0, i) for i in indexes])
    assert [a.order for a in order] == list(range(300))


def test_weights_share_the_launches() -> None:
    heavy = [Admission("heavy", 2.0, i) for i in range(100)]
    light = [Admission("light", 1.0, i) for i in range(100)]
    first = grant_order(heavy + light)[:60]
    assert sum(a.job == "heavy" for a in first) == 40
    assert sum(a.job == "light" for a in first) == 20


def test_a_job_arriving_late_gets_no_credit_for_the_time_it_was_not_waiting() -> None:
    async def run() -> list[str]:
        queue = FairLaunchQueue(AsyncBucket(rate=2000.0, burst=1.0))
        granted: list[str] = []

        async def one(admission: Admission) -> None:
            await queue.admit(admission)
            granted.append(admission.job)

        early = [asyncio.create_task(one(Admission("early", 1.0, i))) for i in range(200)]
        await asyncio.sleep(0.05)  # about 100 launches of "early" happen alone
        late = [asyncio.create_task(one(Admission("late", 1.0, i))) for i in range(20)]
        await asyncio.gather(*early, *late)
        await queue.close()
        return granted

    granted = asyncio.run(run())
    joined = granted.index("late")
    after = granted[joined : joined + 40]
    # From the moment it joins, the late job alternates with the early one: it neither
    # starves nor takes 100 launches in a row to "catch up".
    assert 18 <= after.count("late") <= 21


def test_a_launch_cancelled_while_waiting_is_not_let_through() -> None:
    waiting = [Admission("a", 1.0, i) for i in range(10)]
    order = grant_order(waiting, cancel=frozenset({0, 3}))
    assert [a.order for a in order] == [1, 2, 4, 5, 6, 7, 8, 9]
