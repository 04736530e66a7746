"""The generic scheduler's rules on a fake clock: ``dispatch(now)`` is called with the time the
test chooses, so nothing here waits for real time."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from core.ratelimit import WINDOW_SECONDS, Pace
from core.scheduling import AllGates, Backoff, DueQueue, Hold, Lane, Pool, Scheduler, spawn
from tests.rates import most_in_one_second


def test_a_due_queue_hands_out_the_earliest_first_and_a_put_replaces() -> None:
    queue: DueQueue[str, int] = DueQueue()
    queue.put("b", 2.0, 20)
    queue.put("a", 1.0, 10)
    queue.put("c", 3.0, 30)
    queue.put("a", 5.0, 11)  # rescheduled: the earlier entry no longer counts
    assert len(queue) == 3 and "a" in queue
    assert queue.due("a") == 5.0 and queue.get("a") == 11
    assert queue.first_due() == 2.0
    assert queue.pop_due(1.5) is None  # nothing due yet
    assert queue.pop_due(2.0) == ("b", 20)
    assert queue.remove("c") == 30
    assert queue.pop_due(100.0) == ("a", 11)
    assert queue.pop_due(100.0) is None and len(queue) == 0


def test_a_due_queue_does_not_grow_with_reschedules() -> None:
    queue: DueQueue[int, None] = DueQueue()
    for round_ in range(200):
        for key in range(10):
            queue.put(key, float(round_), None)
    assert len(queue) == 10
    assert len(queue._heap) <= 2 * 10 + 64 + 1  # stale entries are dropped, not hoarded


class Recorder:
    """Lane handlers that note what started when (and finish at once)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, float]] = []
        self.now = 0.0

    def start(self, lane: str) -> Callable[[str, Any], Coroutine[Any, Any, None]]:
        def begin(key: str, _value: Any) -> Coroutine[Any, Any, None]:
            self.started.append((lane, key, self.now))
            return self._done()

        return begin

    async def _done(self) -> None:
        return None

    def of(self, lane: str) -> list[float]:
        return [at for name, _key, at in self.started if name == lane]


async def run_for(scheduler: Scheduler, recorder: Recorder, seconds: float, step: float) -> None:
    """Advance a fake clock in ``step``s, dispatching at each, letting started runs finish."""
    end = recorder.now + seconds
    while recorder.now <= end:
        scheduler.dispatch(recorder.now)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        recorder.now = round(recorder.now + step, 6)


async def test_lanes_start_in_priority_order_within_the_pool() -> None:
    recorder = Recorder()
    pool = Pool("api", 2)
    high: DueQueue[str, None] = DueQueue()
    low: DueQueue[str, None] = DueQueue()
    scheduler = Scheduler(
        [
            Lane("high", high, pool, recorder.start("high")),
            Lane("low", low, pool, recorder.start("low")),
        ],
        clock=lambda: recorder.now,
    )
    for key in "abc":
        low.put(key, 0.0, None)
        high.put(key.upper(), 0.0, None)
    scheduler.dispatch(0.0)
    assert [lane for lane, _key, _at in recorder.started] == ["high", "high"]  # pool of 2
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert pool.busy == 0
    scheduler.dispatch(0.0)
    assert [lane for lane, _key, _at in recorder.started] == ["high"] * 3 + ["low"]


async def test_a_blocked_gate_lets_the_next_lane_go_and_says_when_to_look_again() -> None:
    recorder = Recorder()
    pool = Pool("api", 10)
    reads: DueQueue[str, None] = DueQueue()
    creates: DueQueue[str, None] = DueQueue()
    held = {"reads": 30.0}
    scheduler = Scheduler(
        [
            Lane("read", reads, pool, recorder.start("read"), Hold(lambda: held["reads"])),
            Lane("create", creates, pool, recorder.start("create")),
        ],
        clock=lambda: recorder.now,
    )
    reads.put("r", 0.0, None)
    creates.put("c", 0.0, None)
    creates.put("later", 5.0, None)
    wake_at = scheduler.dispatch(0.0)
    assert [lane for lane, _key, _at in recorder.started] == ["create"]
    assert wake_at == 5.0  # the next create, before the hold on reads ends
    held["reads"] = 0.0
    scheduler.dispatch(1.0)
    assert [lane for lane, _key, _at in recorder.started] == ["create", "read"]


async def test_the_budget_is_never_exceeded_and_creates_keep_their_headroom() -> None:
    # The tracker's layout: reads worth it first, creates, then reads for the lag target;
    # reads may take 6 of the 8 requests a second, every lane counts against the 8.
    recorder = Recorder()
    pool = Pool("api", 32)
    total = Pace(8.0, 40)
    read_gate = AllGates(Pace(6.0, 40), total)
    valuable: DueQueue[str, None] = DueQueue()
    creates: DueQueue[str, None] = DueQueue()
    for_lag: DueQueue[str, None] = DueQueue()
    scheduler = Scheduler(
        [
            Lane("read", valuable, pool, recorder.start("read"), read_gate),
            Lane("create", creates, pool, recorder.start("create"), total),
            Lane("lag", for_lag, pool, recorder.start("lag"), read_gate),
        ],
        clock=lambda: recorder.now,
    )
    for index in range(300):
        valuable.put(f"v{index}", 0.0, None)
        creates.put(f"c{index}", 0.0, None)
        for_lag.put(f"g{index}", 0.0, None)
    await run_for(scheduler, recorder, 20.0, 0.01)
    every = [at for _lane, _key, at in recorder.started]
    reads = recorder.of("read") + recorder.of("lag")
    assert most_in_one_second(every) <= 8
    assert most_in_one_second(reads) <= 6
    # Valuable reads take their 6 a second (in each window of a second and its margin);
    # creates still get the other 2; reads for the lag target wait until creates are done.
    assert len(recorder.of("read")) == 6 * (math.floor(20 / WINDOW_SECONDS) + 1)
    assert len(recorder.of("create")) >= 2 * math.floor(20 / WINDOW_SECONDS)
    assert recorder.of("lag") == []


async def test_spare_budget_goes_to_the_lowest_lane_when_nothing_else_waits() -> None:
    recorder = Recorder()
    pool = Pool("api", 32)
    total = Pace(8.0, 40)
    read_gate = AllGates(Pace(6.0, 40), total)
    creates: DueQueue[str, None] = DueQueue()
    for_lag: DueQueue[str, None] = DueQueue()
    scheduler = Scheduler(
        [
            Lane("create", creates, pool, recorder.start("create"), total),
            Lane("lag", for_lag, pool, recorder.start("lag"), read_gate),
        ],
        clock=lambda: recorder.now,
    )
    for index in range(4):
        creates.put(f"c{index}", 0.0, None)
    for index in range(100):
        for_lag.put(f"g{index}", 0.0, None)
    await run_for(scheduler, recorder, 5.0, 0.01)
    assert len(recorder.of("create")) == 4
    assert len(recorder.of("lag")) >= 6 * math.floor(5 / WINDOW_SECONDS)
    assert most_in_one_second(recorder.of("lag")) <= 6


def test_backoff_doubles_up_to_its_cap_and_honours_a_longer_wait() -> None:
    backoff = Backoff(5.0, 120.0)
    assert [backoff.next("job") for _ in range(7)] == [5, 10, 20, 40, 80, 120, 120]
    assert backoff.next("other", at_least=3600.0) == 3600.0  # Retry-After wins when longer
    assert backoff.next("other") == 10.0
    backoff.reset("job")
    assert backoff.next("job") == 5.0


async def test_spawn_keeps_a_reference_and_logs_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    tasks: set[asyncio.Task[None]] = set()

    async def boom() -> None:
        raise RuntimeError("kaput")

    task = spawn(boom(), name="boom", tasks=tasks)
    assert task in tasks
    with caplog.at_level(logging.ERROR):
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert task not in tasks
    assert "background task boom crashed" in caplog.text


async def test_stop_cancels_runs_under_way() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    queue: DueQueue[str, None] = DueQueue()
    pool = Pool("p", 1)
    scheduler = Scheduler([Lane("x", queue, pool, lambda _k, _v: forever())], clock=lambda: 0.0)
    queue.put("a", 0.0, None)
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    assert pool.busy == 1
    await scheduler.stop()
    assert pool.busy == 0 and scheduler.tasks == set()
