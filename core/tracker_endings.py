"""How a job ends in the tracker: failed or cancelled (refunded once, in the transition), its
requester told, and its lease kept until they are. A part of :class:`core.tracker.Tracker` (a
mixin, like :mod:`core.tracker_leases`: it works on the tracker's own parts, declared below).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.claims import Claims
from core.jobs import Job, JobState
from core.notices import Notices
from core.store import AuditRecord, Store

log = logging.getLogger(__name__)


class JobEndings:
    store: Store
    claims: Claims
    _clock: Callable[[], float]
    _notices: Notices
    _running: set[str]

    def _unschedule(self, job_id: str) -> None:
        raise NotImplementedError

    async def _mark_told(self, job_id: str) -> None:
        # Not fenced: the job has ended (no lease matters), and only the first mark counts.
        await self.store.mark_user_notified(job_id, self._clock())
        self.claims.forget(job_id)  # nothing left to do for it

    async def fail(self, job: Job, reason: str) -> Job | None:
        """Fail a job: refunded once, forgotten, and the user told. From an action of the job,
        only under its lease (:class:`LeaseLost` when that is gone)."""
        acting = job.id in self._running
        fence = self.claims.fence(job.id) if acting else self.claims.fence_if_held(job.id)
        return await self._end(job.id, JobState.FAILED, reason, fence=fence)

    async def cancel(
        self, job_id: str, reason: str, audit: AuditRecord | None = None
    ) -> Job | None:
        """Stop tracking a job and refund it, whichever process holds it (the transition wins
        or loses as a whole). The API has no cancel: its task may still run."""
        fence = self.claims.fence_if_held(job_id)
        return await self._end(job_id, JobState.CANCELLED, reason, audit, fence=fence)

    async def _end(
        self,
        job_id: str,
        state: JobState,
        reason: str,
        audit: AuditRecord | None = None,
        *,
        fence: int | None,
    ) -> Job | None:
        updated = await self.store.transition(
            job_id, state, self._clock(), audit=audit, error=reason[:500], fence=fence
        )
        self._unschedule(job_id)
        if updated is None:
            self.claims.forget(job_id)
            return None
        self.claims.ended(job_id)  # its lease (if ours) is kept until the requester is told
        log.info("job %s %s: %s", job_id, state.value, reason)
        self._notices.send(updated)
        return updated
