"""What the tracker tells the Discord side, and what that side may ask back.

:class:`JobEvents` is what the Discord side registers (told of every change, asked to deliver);
:class:`Notices` sends those notices without making the scheduler wait for Discord, one job's in
order; :class:`Progress` is what a status message shows besides the state (elapsed time, an ETA
once the run-time model has earned it, a wait the API imposed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from core.jobs import Job, JobState

if TYPE_CHECKING:
    from core.deliveries import VideoSource

log = logging.getLogger(__name__)


class JobEvents(Protocol):
    """What the Discord side registers: told of every change, and asked to deliver."""

    async def job_changed(self, job: Job) -> None:
        """A job moved to a new state, or its progress changed (update its status message;
        tell the user on failure)."""

    async def deliver(self, job: Job, video: VideoSource) -> int:
        """Post the result; return the delivered message's id. Must be idempotent per job."""
        ...


@dataclass(frozen=True, slots=True)
class Progress:
    """A job's timing as a status message shows it (Unix times)."""

    since: float  # when the current wait began: submitted to the API, else accepted
    expected_seconds: float | None = None  # from ``since``; only once the model is trusted
    waiting_until: float | None = None  # the API asked us to hold new jobs until then
    may_expire: bool = False  # the hold outlasts the job's deadline (then it is refunded)


class Notices:
    """Tells :class:`JobEvents` about changes in the background, each job's in order.

    A failed or cancelled job is marked as told (``mark_told``) only once its notice went out;
    otherwise the next start sends it again.
    """

    def __init__(self, mark_told: Callable[[str], Awaitable[None]]) -> None:
        self.events: JobEvents | None = None
        self._mark_told = mark_told
        self._latest: dict[str, asyncio.Task[None]] = {}  # job id → its latest notice

    def send(self, job: Job) -> None:
        if self.events is None:
            return
        previous = self._latest.get(job.id)
        notice = asyncio.create_task(self._after(previous, job), name=f"notice-{job.id}")
        self._latest[job.id] = notice  # the strong reference until it is done
        notice.add_done_callback(lambda done: self._done(job.id, done))

    async def sent(self) -> None:
        """Wait until every notice under way has been handled (tests, shutdown)."""
        while self._latest:
            await asyncio.wait(list(self._latest.values()))

    async def close(self, grace: float) -> None:
        """Give notices under way ``grace`` seconds to reach Discord, then cancel the rest."""
        notices = list(self._latest.values())
        if not notices:
            return
        _done, late = await asyncio.wait(notices, timeout=grace)
        for notice in late:
            notice.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def _done(self, job_id: str, notice: asyncio.Task[None]) -> None:
        if self._latest.get(job_id) is notice:
            del self._latest[job_id]

    async def _after(self, previous: asyncio.Task[None] | None, job: Job) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        assert self.events is not None
        try:
            await self.events.job_changed(job)
        except Exception:
            log.exception("job %s: telling Discord about %s failed", job.id, job.state.value)
            return
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            await self._mark_told(job.id)
