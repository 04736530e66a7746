"""One process-wide async rate limiter for every call to the WAN API.

The API limits per IP (bursts of 50/s, 10/s sustained), so every request the bot makes - creates,
polls, lists, retries - must share one budget. This is a token bucket written as GCRA ("generic
cell rate algorithm"): instead of counting tokens it keeps the *theoretical arrival time* of the
next request and hands each caller a slot. A caller computes its wait once and sleeps once; no
loop polls for free tokens and no lock is needed, because nothing awaits between reading and
updating the state.

When the API answers 429 with ``Retry-After``, :meth:`RateLimiter.pause_for` holds everyone off
until then, and traffic restarts at the sustained rate (no burst straight into a limit we just hit).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Slots are sums of many 1/rate steps; float drift must not turn "now" into a 1e-13 s sleep.
_EPSILON = 1e-9


class RateLimiter:
    """Token bucket: ``rate`` requests per second sustained, up to ``burst`` at once.

    ``clock`` (monotonic seconds) and ``sleep`` are injectable so tests run without real waits.
    A caller cancelled while waiting gives up its slot: the limiter errs on the slow side.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError("rate must be a positive number of requests per second")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._interval = 1.0 / rate
        # How far ahead of "now" the schedule may run before callers wait: the burst allowance.
        self._tolerance = (burst - 1) * self._interval
        self._tat = clock()  # theoretical arrival time of the next request at the sustained rate
        self._paused_until = -math.inf

    @property
    def paused_until(self) -> float:
        """The clock time before which no request may start (``-inf`` when never paused)."""
        return self._paused_until

    async def acquire(self) -> None:
        """Wait for this caller's slot. Usually one computed sleep (or none)."""
        while True:
            now = self._clock()
            slot = max(now, self._tat - self._tolerance, self._paused_until)
            self._tat = max(self._tat, slot) + self._interval
            delay = slot - now
            if delay <= _EPSILON:
                return
            await self._sleep(delay)
            # A pause that arrived while we slept outranks the slot we reserved: queue again.
            if self._paused_until <= self._clock():
                return

    def pause_for(self, seconds: float) -> None:
        """Hold every caller off for ``seconds`` from now (e.g. a 429's Retry-After)."""
        if math.isfinite(seconds) and seconds > 0:
            self.pause_until(self._clock() + seconds)

    def pause_until(self, deadline: float) -> None:
        """Hold every caller off until ``deadline`` (limiter clock). Pauses only ever extend."""
        if deadline <= self._paused_until:
            return
        self._paused_until = deadline
        # Restart at the sustained rate after the pause: the burst allowance is spent.
        self._tat = max(self._tat, deadline + self._tolerance)
        log.warning("WAN API rate limit: pausing all requests for %.1fs", deadline - self._clock())
