"""One process-wide async rate limiter for every call to the WAN API, and the pace it keeps.

The API limits per IP (bursts of 50/s, 10/s sustained), so every request the bot makes - creates,
reads, lists, retries - shares one budget. Two rules, both kept by :class:`Pace`:

- at most ``rate`` requests in any one-second window (a log of the last ``⌊rate⌋`` start times:
  the next may start ``WINDOW_SECONDS`` after the oldest of them - a little over a second, so
  that a few milliseconds of jitter on the way cannot put one request too many into a second as
  the API counts them);
- at most ``burst`` back to back: a token bucket written as GCRA ("generic cell rate
  algorithm"), which keeps the *theoretical arrival time* of the next request instead of
  counting tokens. It matters only when ``burst`` is below ``rate``.

A caller is handed a slot (possibly in the future) and sleeps once; no loop polls for free tokens
and no lock is needed, because nothing awaits between reading and updating the state. One that
wakes well after its slot (the event loop was busy) takes a new slot instead of sending late: a
burst of late wakers would otherwise go out together with the calls of the slots after theirs.

When the API answers 429 with ``Retry-After``, :meth:`RateLimiter.pause_for` holds off the kind
of call that was refused (creates, reads or lists), so that a long pause on creates does not stop
the bot from reading tasks that are done.

With several processes only one may spend the budget at a time (``core.budget``): ``admit`` is
asked before a caller takes a slot and again when the slot comes, and raises to refuse the call,
so a process that stops holding the budget sends nothing more, even what was already waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
WaitObserver = Callable[[float], None]  # told how long each acquire waited (0 included)
Admit = Callable[[], None]  # raises when no call may go out now

ANY = "*"  # a pause for every kind of call
WINDOW_SECONDS = 1.1  # the one-second window, with a margin for the time a request takes to go
# A caller waking later than this after its slot takes a new one: half the window's margin, so
# that every request goes out within the margin of its slot.
LATE_SECONDS = (WINDOW_SECONDS - 1.0) / 2
# Slots are sums of many 1/rate steps; float drift must not turn "now" into a 1e-13 s sleep.
_EPSILON = 1e-9


class Pace:
    """The arithmetic of the budget, without waiting: when may the next request start?

    :meth:`next_start` answers without reserving; :meth:`take` reserves the slot it returns.
    Slots are handed out in order, so a slot taken for the future holds back every later one.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError("rate must be a positive number of requests per second")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        # How far ahead of "now" the schedule may run before callers wait: the burst allowance.
        self._tolerance = (burst - 1) * self._interval
        self._tat = -math.inf  # theoretical arrival time of the next request at the steady rate
        # Below 1/s the window stretches: one request per 1/rate seconds.
        self._per_window = max(1, math.floor(rate))
        self._window = max(WINDOW_SECONDS, WINDOW_SECONDS / rate)
        self._starts: deque[float] = deque(maxlen=self._per_window)

    def next_start(self, now: float) -> float:
        slot = max(now, self._tat - self._tolerance)
        if self._starts:
            slot = max(slot, self._starts[-1])  # never before a slot already handed out
            if len(self._starts) == self._per_window:
                slot = max(slot, self._starts[0] + self._window)
        return slot

    def take(self, now: float) -> float:
        slot = self.next_start(now)
        self._tat = max(self._tat, slot) + self._interval
        self._starts.append(slot)
        return slot

    def __repr__(self) -> str:
        return f"Pace(rate={self.rate:g}, burst={self.burst})"


class RateLimiter:
    """``rate`` requests per second at most in any second, ``burst`` at most back to back.

    ``clock`` (monotonic seconds) and ``sleep`` are injectable so tests run without real waits.
    A caller cancelled while waiting gives up its slot: the limiter errs on the slow side.
    ``on_wait`` hears the seconds each successful :meth:`acquire` waited (for metrics);
    ``admit`` may refuse a call (see the module docstring) by raising.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_wait: WaitObserver | None = None,
        admit: Admit | None = None,
    ) -> None:
        self._pace = Pace(rate, burst)
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._paused: dict[str, float] = {}
        self._on_wait = on_wait
        self._admit = admit

    def paused_until(self, kind: str = ANY) -> float:
        """The clock time before which no call of ``kind`` may start (``-inf``: not paused)."""
        return max(self._paused.get(ANY, -math.inf), self._paused.get(kind, -math.inf))

    def pause_remaining(self, kind: str = ANY) -> float:
        """Seconds from now until calls of ``kind`` may start again (0 when not paused)."""
        return max(self.paused_until(kind) - self._clock(), 0.0)

    async def acquire(self, kind: str = ANY) -> None:
        """Wait for this caller's slot. Usually one computed sleep (or none)."""
        started = self._clock()
        if self._admit is not None:
            self._admit()  # refused: no slot taken
        await self._wait_for_slot(kind)
        if self._admit is not None:
            self._admit()  # still ours when the slot came?
        if self._on_wait is not None:
            self._on_wait(self._clock() - started)

    async def _wait_for_slot(self, kind: str) -> None:
        while True:
            now = self._clock()
            paused = self.paused_until(kind)
            if paused > now + _EPSILON:
                await self._sleep(paused - now)
                continue
            slot = self._pace.take(now)
            delay = slot - now
            if delay <= _EPSILON:
                return
            await self._sleep(delay)
            woke = self._clock()
            # A pause that arrived while we slept outranks the slot we reserved: queue again.
            # So does waking late (a busy event loop): sent now, this call could share a second
            # with the calls of the slots after it. The stale slot stays counted (slow side).
            if self.paused_until(kind) <= woke and woke - slot <= LATE_SECONDS:
                return

    def pause_for(self, seconds: float, kind: str = ANY) -> None:
        """Hold calls of ``kind`` off for ``seconds`` from now (e.g. a 429's Retry-After)."""
        if math.isfinite(seconds) and seconds > 0:
            self.pause_until(self._clock() + seconds, kind)

    def pause_until(self, deadline: float, kind: str = ANY) -> None:
        """Hold calls of ``kind`` off until ``deadline`` (limiter clock). Pauses only extend."""
        if deadline <= self._paused.get(kind, -math.inf):
            return
        self._paused[kind] = deadline
        what = "all requests" if kind == ANY else f"{kind} requests"
        log.warning("WAN API rate limit: pausing %s for %.1fs", what, deadline - self._clock())
