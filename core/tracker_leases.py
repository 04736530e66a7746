"""The tracker's side of its leases (``core.claims``): what it does when it wins a job, loses
one, gets signalled, or the API budget changes hands. A part of :class:`core.tracker.Tracker`
(a mixin: it works on the tracker's own queues and sets, declared below).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.budget import Budget
from core.claims import Claims
from core.jobs import Job, JobState
from core.notices import Notices
from core.scheduling import Pool, Scheduler, spawn
from core.store import SignalEvent, Signals, Store
from core.tracker_config import TrackerConfig
from core.tracker_webhooks import TrackerWebhooks


class LeaseHost:
    store: Store
    config: TrackerConfig
    claims: Claims
    budget: Budget
    signals: Signals
    webhooks: TrackerWebhooks
    _clock: Callable[[], float]
    _scheduler: Scheduler
    _notices: Notices
    _delivery_pool: Pool
    _tasks: set[asyncio.Task[None]]
    _actions: dict[str, asyncio.Task[Any]]  # job id → its action under way
    _running: set[str]
    _ready: set[str]  # claimed to deliver, not started yet

    def _resume(self, job_id: str, state: JobState, now: float) -> None:
        raise NotImplementedError

    def _forget(self, job_id: str) -> None:
        raise NotImplementedError

    def adopt(self, job_id: str, state: JobState, now: float) -> None:
        """A job claimed: act on it from its state (an ended one: tell its requester)."""
        if state in (JobState.FAILED, JobState.CANCELLED):
            spawn(self._tell_ending(job_id, now), name="tell-ending", tasks=self._tasks)
            return
        if state is JobState.COMPLETED:
            self._ready.add(job_id)
        self._resume(job_id, state, now)

    async def _tell_ending(self, job_id: str, now: float) -> None:
        ended = await self.store.get_job(job_id)
        # Older than the window: kept (not told, not given back) so that nobody retries it.
        if ended is not None and ended.updated_at >= now - self.config.notify_window:
            self._notices.send(ended)  # told before a restart? the nonce avoids a repeat

    def drop(self, job_id: str) -> None:
        """No longer ours: cancel its action under way, forget it here."""
        action = self._actions.get(job_id)
        if action is not None:
            action.cancel()
        self._forget(job_id)

    def delivery_room(self) -> int:
        """How many completed jobs to claim: what the delivery slots start soon, no more, so
        that the other processes deliver their share."""
        pool = self._delivery_pool
        return max(4 * pool.capacity - pool.busy - len(self._ready), 0)

    def fence(self, job_id: str) -> int:
        return self.claims.fence(job_id)

    def webhook_waiting(self, job_id: str) -> None:
        self.webhooks.waiting(job_id)

    def _signalled(self, event: SignalEvent, job_id: str) -> None:
        if event is SignalEvent.WEBHOOK:
            if job_id in self.claims:
                self.webhooks.waiting(job_id)
        else:  # a job to claim: new (the budget holder's), or to deliver (anyone's)
            new = event is SignalEvent.NEW
            self.claims.wake(api=new, others=not new)

    def _budget_moved(self, held: bool) -> None:
        self._scheduler.wake()
        self.claims.wake()
        if held:
            return
        # Another process makes the API calls now: it claims these as soon as they are free.
        idle = [job_id for job_id in self.claims.api if job_id not in self._running]
        self.claims.release_later(idle)
        for job_id in idle:
            self._forget(job_id)

    async def completed(self, job: Job) -> None:
        """The job's task is done: its delivery goes to whichever process claims it first."""
        await self.claims.release(job.id)
        self._forget(job.id)
        await self.signals.notify(SignalEvent.DELIVER, job.id)

    def holds(self, job_id: str) -> bool:
        return job_id in self.claims

    def running(self, job_id: str) -> bool:
        return job_id in self._running
