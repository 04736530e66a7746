"""A cheap probe of event-loop lag: how late a timer fires tells how long something blocked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

WARN_SECONDS = 1.0  # a stall this long delays every interaction and status read


class LoopLagProbe:
    """Sleeps ``interval`` seconds in a loop and reports how much later than asked it woke.

    One timer a second costs nothing measurable; a blocking call anywhere on the loop shows up
    as a late wake-up. Started and stopped by the bot's composition root.
    """

    def __init__(self, record: Callable[[float], None], interval: float = 1.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._record = record
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.last_lag: float | None = None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the loop-lag probe is already running")
        self._task = asyncio.create_task(self._run(), name="loop-lag-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self._interval)
            lag = max(0.0, loop.time() - started - self._interval)
            self.last_lag = lag
            try:
                self._record(lag)
            except Exception:
                log.exception("loop-lag probe: recording failed")
            if lag >= WARN_SECONDS:
                log.warning("the event loop was blocked for about %.1f s", lag)
