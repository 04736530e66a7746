"""What a webhook does to the tracker, in whichever process received it.

A webhook for a job this process holds acts at once: a verified body is applied as a read
would be (no read spent), an unverified one that claims the task ended prompts one read, and one
naming the task of a job whose create had an unknown outcome is the evidence that reconciles it.
A webhook for a job another process holds is recorded (``note_webhook``) and that process woken
(the ``webhook`` signal); the owner takes it (fenced) and reads the task now, and sweeps for such
records every few seconds in case a signal was lost (``core.claims``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from core.claims import LeaseLost
from core.jobs import Job
from core.scheduling import spawn
from core.store import SignalEvent, Signals, Store
from core.submissions import Submissions
from core.wan import Task
from core.webhook_tokens import token_digest

log = logging.getLogger(__name__)


class Host(Protocol):
    """What the tracker does for webhooks."""

    def holds(self, job_id: str) -> bool:
        """Whether this process holds the job's lease."""
        ...

    def fence(self, job_id: str) -> int: ...

    def running(self, job_id: str) -> bool: ...

    def wake(self, job_id: str) -> None: ...

    async def apply_heard(self, job: Job, task: Task) -> None:
        """Apply a verified webhook's task to the job as a read would, guarded like an action."""


class TrackerWebhooks:
    def __init__(
        self,
        host: Host,
        store: Store,
        signals: Signals,
        submissions: Submissions,
        *,
        clock: Callable[[], float],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self._host = host
        self.store = store
        self._signals = signals
        self._submissions = submissions
        self._clock = clock
        self._tasks = tasks

    async def on_webhook(self, token: str, task: Task, verified: bool) -> bool:
        """The webhook receiver's handler: False when the token belongs to no job."""
        job = await self.store.job_by_webhook_token_hash(token_digest(token))
        if job is None:
            return False
        if job.state.is_finished:
            return True
        if self._host.holds(job.id):
            await self.notify(job, task, verified)
            return True
        # Another process acts on this job: record the news and wake it there.
        if job.task_id is None:
            log.warning(
                "job %s: webhook names task %s; the process reconciling the job lists tasks",
                job.id,
                task.task_id,
            )
        await self.store.note_webhook(job.id, self._clock())
        await self._signals.notify(SignalEvent.WEBHOOK, job.id)
        return True

    def waiting(self, job_id: str) -> None:
        """A webhook another process received waits for this job of ours: act on it now."""
        spawn(self._take(job_id), name="webhook-take", tasks=self._tasks)

    async def _take(self, job_id: str) -> None:
        try:
            if await self.store.take_webhook(job_id, self._host.fence(job_id)):
                self._host.wake(job_id)
        except LeaseLost:
            return

    async def notify(self, job: Job, task: Task, verified: bool) -> None:
        """A webhook said the task changed. Unverified bodies only prompt one read, and only
        when they claim the task ended: at most one read per job when webhooks arrive."""
        if job.task_id is None:
            # The job's own URL names the task: the evidence a create of unknown outcome needs.
            if self._submissions.evidence(job, task.task_id):
                self._host.wake(job.id)
            return
        if task.task_id != job.task_id:
            log.warning("job %s: webhook for another task %s ignored", job.id, task.task_id)
            return
        if verified and job.state.is_in_flight and not self._host.running(job.id):
            await self._host.apply_heard(job, task)
        elif task.status.is_final:
            self._host.wake(job.id)
