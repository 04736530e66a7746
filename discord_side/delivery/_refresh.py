"""Progress-bar refreshes of a status message, planned with one timer per job.

Elapsed time and the ETA are Discord's live relative timestamps (``<t:…:R>``), which every client
keeps ticking without an edit. Only the progress bar needs an edit to move: while an ETA is shown,
the status message is edited again when the bar has moved by a cell, never more often than
``REFRESH_MIN_SECONDS`` - a few edits per job, with no loop over jobs.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from core.jobs import Job
from core.notices import Progress
from discord_side.presenter import BAR_CELLS

REFRESH_MIN_SECONDS = 15.0  # progress-bar edits, at most this often per job


class ProgressRefresh:
    def __init__(self, refresh: Callable[[Job], None], *, edit_interval: float) -> None:
        self._refresh = refresh  # asks for an edit of the job's status message
        self._edit_interval = edit_interval
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closing = False

    def plan(self, job: Job, progress: Progress | None) -> None:
        """While an ETA is shown, edit again when the bar has moved by a cell."""
        self.cancel(job.id)
        if self._closing or progress is None or progress.expected_seconds is None:
            return
        if not job.state.is_in_flight:
            return
        now = time.time()
        cell = progress.expected_seconds / BAR_CELLS
        done = math.floor((now - progress.since) / cell) + 1 if cell > 0 else BAR_CELLS
        due = max(progress.since + cell * done, now + max(self._edit_interval, REFRESH_MIN_SECONDS))
        if due >= progress.since + progress.expected_seconds:
            return  # the ETA is near: the next news is the video itself
        loop = asyncio.get_running_loop()
        self._timers[job.id] = loop.call_later(due - now, self._fire, job)

    def _fire(self, job: Job) -> None:
        self._timers.pop(job.id, None)
        if not self._closing:
            self._refresh(job)

    def cancel(self, job_id: str) -> None:
        handle = self._timers.pop(job_id, None)
        if handle is not None:
            handle.cancel()

    def close(self) -> None:
        self._closing = True
        for job_id in list(self._timers):
            self.cancel(job_id)
