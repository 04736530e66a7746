"""A small scheduler, apart from the domain: due times, lanes, pools and background tasks.

Work waits in *lanes*. A lane has a *source* of ``(key, value)`` items with due times (usually a
:class:`DueQueue`), the *pool* its items run in (bounded capacity), and optionally a *gate*, a
budget that says when the next start is allowed (e.g. a rate :class:`~core.ratelimit.Pace`).
:meth:`Scheduler.dispatch` starts everything that may start now, the first lane first (lanes are
in priority order and share pools and gates as their owner decides), and says when to look again;
:meth:`Scheduler.run` is the loop around it. Nothing here knows what the work is, and nothing here
scans every item: each step looks only at the head of each lane.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")
K_co = TypeVar("K_co", covariant=True)
V_co = TypeVar("V_co", covariant=True)
Job = Coroutine[Any, Any, None]


def spawn(coro: Job, *, name: str, tasks: set[asyncio.Task[None]]) -> asyncio.Task[None]:
    """Run ``coro`` in the background: kept in ``tasks`` until done, its exception logged."""
    task = asyncio.create_task(coro, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    task.add_done_callback(_log_failure)
    return task


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s crashed", task.get_name(), exc_info=task.exception())


class DueQueue(Generic[K, V]):
    """Keys with one due time each, earliest first. Putting a key again replaces its entry.

    A heap with lazy deletion: replaced and removed entries stay in the heap until they reach
    its top (or the heap is rebuilt when they outnumber the live ones), so every operation is
    O(log n) and none scans the queue.
    """

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []  # [due, seq, key, value]
        self._live: dict[K, list[Any]] = {}
        self._seq = itertools.count()

    def put(self, key: K, due: float, value: V) -> None:
        entry = [due, next(self._seq), key, value]
        self._live[key] = entry
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self._live) + 64:
            self._heap = list(self._live.values())
            heapq.heapify(self._heap)

    def remove(self, key: K) -> V | None:
        entry = self._live.pop(key, None)
        return None if entry is None else entry[3]

    def get(self, key: K) -> V | None:
        entry = self._live.get(key)
        return None if entry is None else entry[3]

    def due(self, key: K) -> float | None:
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._live))

    def first_due(self) -> float | None:
        heap = self._heap
        while heap and self._live.get(heap[0][2]) is not heap[0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> tuple[K, V] | None:
        due = self.first_due()
        if due is None or due > now:
            return None
        _due, _seq, key, value = heapq.heappop(self._heap)
        del self._live[key]
        return key, value


class Source(Protocol[K_co, V_co]):
    """Where a lane takes its work from."""

    def first_due(self) -> float | None: ...

    def pop_due(self, now: float) -> tuple[K_co, V_co] | None: ...


class Gate(Protocol):
    """A budget a start must fit in (e.g. a rate); several lanes may share one."""

    def next_start(self, now: float) -> float:
        """The earliest time a start is allowed (``now`` or earlier: allowed now)."""
        ...

    def take(self, now: float) -> object:
        """Account for one start now."""
        ...


class AllGates:
    """A start must fit every one of ``gates``."""

    def __init__(self, *gates: Gate) -> None:
        self.gates = gates

    def next_start(self, now: float) -> float:
        return max((gate.next_start(now) for gate in self.gates), default=now)

    def take(self, now: float) -> None:
        for gate in self.gates:
            gate.take(now)


class Share:
    """A gate that binds only while ``contested(now)``: a share of a budget others are waiting
    for; while nobody else waits, the whole budget. Every start is counted either way, so the
    share holds as soon as someone waits."""

    def __init__(self, gate: Gate, contested: Callable[[float], bool]) -> None:
        self._gate = gate
        self._contested = contested

    def next_start(self, now: float) -> float:
        return self._gate.next_start(now) if self._contested(now) else now

    def take(self, now: float) -> None:
        self._gate.take(now)


class Hold:
    """A gate closed for as long as someone else says (e.g. a pause the API asked for):
    ``remaining()`` is the seconds left, 0 when open."""

    def __init__(self, remaining: Callable[[], float]) -> None:
        self._remaining = remaining

    def next_start(self, now: float) -> float:
        return now + max(self._remaining(), 0.0)

    def take(self, now: float) -> None:
        return None


@dataclass(slots=True)
class Pool:
    """How many runs may be under way at once."""

    name: str
    capacity: int
    busy: int = 0

    @property
    def has_room(self) -> bool:
        return self.busy < self.capacity


@dataclass(frozen=True, slots=True)
class Lane(Generic[K, V]):
    """One kind of work: where it waits, where it runs, what it must fit, and how it runs.

    ``start`` turns an item into the coroutine to run, or None when there is nothing to do
    (then the pool and the gate are not charged).
    """

    name: str
    source: Source[K, V]
    pool: Pool
    start: Callable[[K, V], Job | None]
    gate: Gate | None = None


class Scheduler:
    """Starts due work from its lanes, in their order, within pools and gates."""

    def __init__(self, lanes: Sequence[Lane[Any, Any]], *, clock: Callable[[], float]) -> None:
        self.lanes = tuple(lanes)
        self._clock = clock
        self._wakeup = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Look again now (new work, or a run ended)."""
        self._wakeup.set()

    def dispatch(self, now: float) -> float | None:
        """Start everything that may start at ``now``; return when to look again (None: on a
        wake-up only). After each start the lanes are looked at again from the first."""
        soonest = math.inf
        looking = True
        while looking:
            looking = False
            for lane in self.lanes:
                if not lane.pool.has_room:
                    continue  # a run ending wakes the loop
                due = lane.source.first_due()
                if due is None:
                    continue
                if due > now:
                    soonest = min(soonest, due)
                    continue
                if lane.gate is not None:
                    allowed = lane.gate.next_start(now)
                    if allowed > now:
                        soonest = min(soonest, allowed)
                        continue
                item = lane.source.pop_due(now)
                if item is None:
                    continue
                coro = lane.start(*item)
                if coro is not None:
                    if lane.gate is not None:
                        lane.gate.take(now)
                    self._launch(lane, coro)
                looking = True
                break
        return None if soonest == math.inf else soonest

    def _launch(self, lane: Lane[Any, Any], coro: Job) -> None:
        lane.pool.busy += 1
        spawn(self._running(lane.pool, coro), name=f"{lane.name}-run", tasks=self.tasks)

    async def _running(self, pool: Pool, coro: Job) -> None:
        try:
            await coro
        finally:
            pool.busy -= 1
            self.wake()

    async def run(self) -> None:
        while True:
            self._wakeup.clear()
            wake_at = self.dispatch(self._clock())
            timeout = None if wake_at is None else max(wake_at - self._clock(), 0.0)
            # Not wait_for: on 3.11 it may swallow a cancel that lands as the event fires, and
            # stop() would then wait for a loop that never ends.
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    def start(self, name: str = "scheduler") -> None:
        self._loop = spawn(self.run(), name=name, tasks=self.tasks)

    async def stop(self) -> None:
        """Stop the loop and cancel every run under way."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self._loop = None


class Backoff:
    """Exponential backoff per key: ``base`` × 2ⁿ⁻¹ after n failures in a row, at most ``cap``,
    and never less than a wait the other side asked for (e.g. ``Retry-After``)."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Any, int] = {}

    def next(self, key: Any, at_least: float | None = None) -> float:
        """Count one more failure of ``key``; the delay before trying again."""
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        delay = min(self.base * 2.0 ** min(count - 1, 60), self.cap)
        return max(delay, at_least or 0.0)

    def reset(self, key: Any) -> None:
        self._failures.pop(key, None)
