"""The API budget holder: one process at a time calls the API, and the hand-over is quick."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from core.budget import BudgetNotHeld, LocalBudget, PostgresBudget
from core.ratelimit import WINDOW_SECONDS, RateLimiter
from core.store._budget import BUDGET_KEY
from tests.coordination import pg_engine, terminate_sessions
from tests.test_ratelimit import FakeClock
from tests.tracker_rig import until

# The lock's session, as pg_locks shows a one-bigint advisory key (high and low 32 bits).
HOLDER = (
    "pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objsubid = 1 AND classid::bigint = :high AND objid::bigint = :low)"
)
KEY = {"high": BUDGET_KEY >> 32, "low": BUDGET_KEY & 0xFFFFFFFF}


class Timeline:
    """Who held the budget when: (monotonic time, name, held), as each budget told it."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, str, bool]] = []
        self.held: dict[str, bool] = {}
        self.overlaps: list[dict[str, bool]] = []  # moments with two holders (must stay empty)

    def watch(self, name: str, budget: PostgresBudget) -> None:
        self.held[name] = budget.held

        def told(held: bool) -> None:
            self.held[name] = held
            self.changes.append((time.monotonic(), name, held))
            if sum(self.held.values()) > 1:
                self.overlaps.append(dict(self.held))

        budget.subscribe(told)

    def taken(self, name: str) -> float:
        return next(at for at, who, held in self.changes if who == name and held)


@asynccontextmanager
async def budgets(count: int) -> AsyncIterator[tuple[list[PostgresBudget], Timeline, str]]:
    async with pg_engine() as (engine, url):
        started = [PostgresBudget(engine) for _ in range(count)]
        timeline = Timeline()
        for index, budget in enumerate(started):
            timeline.watch(f"p{index}", budget)
        try:
            for budget in started:
                await budget.start()
            yield started, timeline, url
        finally:
            for budget in started:
                await budget.stop()
        assert timeline.overlaps == []


async def test_sqlite_mode_always_holds_the_budget() -> None:
    budget = LocalBudget()
    await budget.start()
    assert budget.held
    budget.admit()
    await budget.stop()


async def test_a_refused_call_takes_no_slot_and_a_waiting_one_is_refused_when_its_slot_comes() -> (
    None
):
    clock = FakeClock()
    allowed = [True]

    def admit() -> None:
        if not allowed[0]:
            raise BudgetNotHeld("not ours")

    limiter = RateLimiter(1.0, 1, clock=clock, sleep=clock.sleep, admit=admit)
    await limiter.acquire()  # the one slot of this window
    allowed[0] = False
    with pytest.raises(BudgetNotHeld):
        await limiter.acquire()
    assert clock.sleeps == []  # refused before waiting
    allowed[0] = True
    clock.on_sleep = lambda _seconds: allowed.__setitem__(0, False)  # lost while waiting
    with pytest.raises(BudgetNotHeld):
        await limiter.acquire()
    assert len(clock.sleeps) == 1


async def test_one_process_holds_the_budget_and_the_other_takes_over_when_its_session_dies() -> (
    None
):
    async with budgets(2) as ((first, second), timeline, url):
        await until(lambda: first.held, timeout=10)
        assert not second.held
        with pytest.raises(BudgetNotHeld):
            second.admit()
        first.admit()
        killed = time.monotonic()
        assert await terminate_sessions(url, HOLDER, **KEY) == 1
        await until(lambda: second.held, timeout=10)
        took = timeline.taken("p1") - killed
        print(f"budget taken over {took:.2f}s after the holder's session was ended")
        # The new holder waited a whole limiter window, and not much more.
        assert WINDOW_SECONDS <= took < 2.0
        assert not first.held


async def test_a_holder_whose_session_breaks_refuses_calls_at_once() -> None:
    async with budgets(1) as ((budget,), _timeline, url):
        await until(lambda: budget.held, timeout=10)
        told = asyncio.Event()
        budget.subscribe(lambda held: None if held else told.set())
        limiter = RateLimiter(1.0, 1, admit=budget.admit)
        await limiter.acquire()
        waiting = asyncio.create_task(limiter.acquire())  # its slot is a window away
        await terminate_sessions(url, HOLDER, **KEY)
        await asyncio.wait_for(told.wait(), 5)
        with pytest.raises(BudgetNotHeld):
            await waiting  # waited for its slot, then refused
        with pytest.raises(BudgetNotHeld):
            await limiter.acquire()
        # Its own budget again (nobody else wants it), after a fresh window.
        await until(lambda: budget.held, timeout=10)


async def test_a_stopping_holder_hands_the_budget_over_at_once() -> None:
    async with budgets(3) as (started, timeline, _url):
        await until(lambda: any(budget.held for budget in started), timeout=10)
        holder = next(budget for budget in started if budget.held)
        stopped = time.monotonic()
        await holder.stop()
        await until(lambda: any(budget.held for budget in started), timeout=10)
        took = max(at for at, _who, held in timeline.changes if held) - stopped
        print(f"budget handed over {took:.2f}s after the holder stopped")
        assert took < 2.0
        assert sum(budget.held for budget in started) == 1
