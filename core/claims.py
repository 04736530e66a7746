"""The tracker's leases: which jobs this process acts on, claimed from the store and kept.

Any process may act on any job, but only on a job it holds the lease of (owner, expiry, fence;
``core.store._leases``). This loop claims jobs - one statement a round, woken by a signal
(``new``, ``deliver``) and at least every ``claim_interval`` - renews every lease it holds in one
statement every third of the lease time, and drops (its action cancelled) every job whose renewal
says it is no longer ours. Every write the tracker makes for a job carries the fence it was
claimed with (:meth:`Claims.fence`), so a process that lost a lease changes nothing.

What a process claims: the jobs in API phases (reserved to running) only while it holds the API
budget (``core.budget``); and, a few at a time (as many as its delivery slots can start soon, so
that deliveries spread over every process), completed jobs to deliver and ended jobs whose
requester was not told yet. At start it first takes back what is still its own (SQLite's owner
``"local"`` after a restart: every lease at once, in one read); afterwards rounds claim only free
or expired leases, so a round never re-takes the thousands it holds. Webhooks another process
received are swept every ``sweep_interval`` (the ``webhook`` signal is the fast path).

If renewals keep failing (the database is out of reach), every job is dropped before its lease
can expire and be taken by another process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from contextlib import suppress
from typing import Protocol

from core.budget import Budget
from core.jobs import JobState
from core.store import LOCAL_OWNER, Lease, Store

__all__ = ["API_STATES", "LOCAL_OWNER", "OTHER_STATES", "Claims", "Host", "LeaseLost"]

log = logging.getLogger(__name__)

API_STATES = frozenset(
    {JobState.RESERVED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING}
)
# Work any process may do: deliveries, and telling requesters of endings they were not told of.
OTHER_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
_RELEASE_AT_ONCE = 50  # releases under way together when many leases are given back


class LeaseLost(Exception):
    """The job's lease is not (or no longer) this process's: act no further on it."""


class Host(Protocol):
    """What the tracker does when a lease is won, lost, or a webhook waits for its job."""

    def adopt(self, job_id: str, state: JobState, now: float) -> None: ...

    def drop(self, job_id: str) -> None: ...

    def webhook_waiting(self, job_id: str) -> None: ...

    def delivery_room(self) -> int: ...


class Claims:
    def __init__(
        self,
        store: Store,
        host: Host,
        budget: Budget,
        *,
        owner: str,
        ttl: float,
        clock: Callable[[], float],
        claim_interval: float = 1.0,
        sweep_interval: float = 5.0,
        batch: int = 1000,
        on_count: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self._host = host
        self._budget = budget
        self._clock = clock
        self._claim_interval = claim_interval
        self._sweep_interval = sweep_interval
        self._batch = batch
        self._on_count = on_count  # told how many leases are held after every round (metrics)
        self._fences: dict[str, int] = {}  # job id → the fence it was claimed with
        self._releasing: dict[str, int] = {}  # leases to give back, with their fences
        self._giving_back: set[str] = set()  # leases being released now
        self.api: set[str] = set()  # the leased jobs in API phases
        self._wakeup = asyncio.Event()
        self._renewed_at = clock()  # the last renewal that worked
        self._renew_due = 0.0
        self._sweep_due = 0.0
        self._api_due = 0.0  # when jobs for the API are claimed next (0: at once)
        self._others_due = 0.0
        self.others_waiting = False  # the last claim of deliveries filled the room: more wait

    def __len__(self) -> int:
        return len(self._fences)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._fences

    def fence(self, job_id: str) -> int:
        """The fence every write for the job carries; :class:`LeaseLost` when not ours."""
        fence = self._fences.get(job_id)
        if fence is None:
            raise LeaseLost(job_id)
        return fence

    def fence_if_held(self, job_id: str) -> int | None:
        return self._fences.get(job_id)

    def wake(self, *, api: bool = True, others: bool = True) -> None:
        """Claim now: ``api``, jobs for the API if this process holds the budget (a job was
        accepted, the budget changed hands); ``others``, jobs to deliver or tell of (a job
        completed, delivery slots came free). Every ``claim_interval`` both are claimed anyway.
        """
        if api:
            self._api_due = 0.0
        if others:
            self._others_due = 0.0
        self._wakeup.set()

    def forget(self, job_id: str) -> None:
        """The job finished, or is someone else's now: no longer ours to renew or act on."""
        self._fences.pop(job_id, None)
        self.api.discard(job_id)

    def ended(self, job_id: str) -> None:
        """The job ended here: keep its lease until its requester is told (then :meth:`forget`),
        so that no other process tells them too."""
        self.api.discard(job_id)

    # ----------------------------------------------------------------- claiming

    async def claim(self) -> int:
        """Take back what is ours already, then claim until a round brings nothing new; how
        many jobs were adopted."""
        adopted = 0
        for lease in await self.store.held_leases(self.owner):
            if lease.state in API_STATES and not self._budget.held:
                self._releasing[lease.job_id] = lease.fence  # the budget holder's to claim
            elif self._take(lease, self._clock()):
                adopted += 1
        while True:
            fresh, full = await self._claim_round()
            adopted += fresh
            if not (fresh and full):
                return adopted

    async def _claim_round(self) -> tuple[int, bool]:
        """At most one statement per kind of work: jobs for the API when due (woken for them,
        or every ``claim_interval``), the others while there is room; (newly adopted, more
        for the API may wait)."""
        fresh, more = 0, False
        now = self._clock()
        if self._budget.held and now >= self._api_due:
            self._api_due = now + self._claim_interval
            fresh, more = await self._claim(API_STATES, self._batch)
            if more:
                self._api_due = 0.0  # a full batch: the next round takes more
        room = self._host.delivery_room()
        if room > 0 and now >= self._others_due:  # (a full one just means no more room)
            self._others_due = now + self._claim_interval
            got, self.others_waiting = await self._claim(OTHER_STATES, room)
            fresh += got
        return fresh, more

    async def _claim(self, states: Collection[JobState], limit: int) -> tuple[int, bool]:
        now = self._clock()
        leases = await self.store.claim_jobs(
            self.owner, states, now, self.ttl, limit, include_own=False
        )
        fresh = 0
        for lease in leases:
            if self._take(lease, now):
                fresh += 1
        return fresh, len(leases) >= limit

    def _take(self, lease: Lease, now: float) -> bool:
        known = self._fences.get(lease.job_id)
        if known == lease.fence:
            return False  # ours already (the claim renewed it)
        if known is not None:
            self._host.drop(lease.job_id)  # someone had it in between: what we knew is stale
        self._releasing.pop(lease.job_id, None)  # ours again: keep it
        self._fences[lease.job_id] = lease.fence
        if lease.state in API_STATES:
            self.api.add(lease.job_id)
        self._host.adopt(lease.job_id, lease.state, now)
        return True

    # ----------------------------------------------------------------- giving back

    async def release(self, job_id: str) -> None:
        """Give the lease back now (another process may claim it at once)."""
        fence = self._fences.get(job_id)
        if fence is None:
            return
        self.forget(job_id)
        await self._give_back([(job_id, fence)])

    def release_later(self, job_ids: Collection[str]) -> None:
        """Stop acting on these jobs and give their leases back soon (the next round)."""
        for job_id in job_ids:
            fence = self._fences.get(job_id)
            if fence is not None:
                self.forget(job_id)
                self._releasing[job_id] = fence
        if self._releasing:
            self.wake(api=False, others=False)

    async def release_all(self) -> None:
        """Give every lease back (stopping): the other processes need not wait for expiry."""
        self.release_later(list(self._fences))
        await self._flush()

    async def _flush(self) -> None:
        """Release what waits to be released."""
        waiting = list(self._releasing.items())
        self._releasing.clear()
        await self._give_back(waiting)

    async def _give_back(self, leases: list[tuple[str, int]]) -> None:
        """Release these leases; what fails waits for the next round (until then it is renewed
        like any lease of ours, so it never expires while we wait)."""
        self._giving_back.update(job_id for job_id, _fence in leases)
        try:
            for start in range(0, len(leases), _RELEASE_AT_ONCE):
                chunk = leases[start : start + _RELEASE_AT_ONCE]
                results = await asyncio.gather(
                    *(
                        self.store.release_lease(job_id, self.owner, fence)
                        for job_id, fence in chunk
                    ),
                    return_exceptions=True,
                )
                for (job_id, fence), result in zip(chunk, results, strict=True):
                    if isinstance(result, BaseException):
                        log.warning("job %s: lease not released yet (%r)", job_id, result)
                        if job_id not in self._fences:
                            self._releasing.setdefault(job_id, fence)
        finally:
            self._giving_back.difference_update(job_id for job_id, _fence in leases)

    # ----------------------------------------------------------------- the loop

    async def run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await self._step()
                again = await self._claim_round()
            except Exception as exc:
                log.warning("leases: a round failed (%s); trying again", exc)
                again = (0, False)
                self._drop_all_if_stale()
            if self._on_count is not None:
                self._on_count(len(self._fences))
            if again[0] and again[1]:
                continue  # a full round: there is more to claim
            now = self._clock()
            timeout = max(min(self._claim_interval, self._renew_due - now), 0.0)
            # Not wait_for: on 3.11 it may swallow a cancel that lands as the event fires.
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    async def _step(self) -> None:
        now = self._clock()
        if self._releasing:
            await self._flush()
        if now >= self._renew_due:
            await self._renew(now)
        if now >= self._sweep_due and self._fences:
            self._sweep_due = now + self._sweep_interval
            for job_id in await self.store.webhook_pending(self.owner):
                if job_id in self._fences:
                    self._host.webhook_waiting(job_id)

    async def _renew(self, now: float) -> None:
        self._renew_due = now + 1.0  # if this fails: soon again
        held = await self.store.renew_leases(self.owner, now, self.ttl)
        self._renewed_at = now
        self._renew_due = now + self.ttl / 3
        lost = [job_id for job_id in self._fences if job_id not in held]
        for job_id in lost:
            log.info("job %s: no longer ours (ended elsewhere, or taken over); dropped", job_id)
            self.forget(job_id)
            self._host.drop(job_id)
        for job_id in [job_id for job_id in self._releasing if job_id not in held]:
            del self._releasing[job_id]  # gone already (finished, or taken)
        if held - self._fences.keys() - self._releasing.keys() - self._giving_back:
            await self._release_strays()

    async def _release_strays(self) -> None:
        """Leases the store says are ours that nothing here acts on (the job ended in another
        process while we held it, say): give them back, or nobody else could ever claim them.
        An ending not told yet is kept instead: the process that ended it is telling now."""
        for lease in await self.store.held_leases(self.owner):
            known = self._fences.keys() | self._releasing.keys() | self._giving_back
            if lease.job_id in known:
                continue
            if lease.state in API_STATES or lease.state is JobState.COMPLETED:
                self._releasing[lease.job_id] = lease.fence
            else:
                self._fences[lease.job_id] = lease.fence  # kept, until told (or restart)
        await self._flush()

    def _drop_all_if_stale(self) -> None:
        """Renewals failing: drop everything before the leases can expire elsewhere."""
        if self._fences and self._clock() - self._renewed_at >= self.ttl * 2 / 3:
            log.error(
                "leases: not renewed for %.0fs; dropping %d job(s) before they expire",
                self._clock() - self._renewed_at,
                len(self._fences),
            )
            dropped = list(self._fences)
            self.release_later(dropped)  # given back once the database answers again
            for job_id in dropped:
                self._host.drop(job_id)
