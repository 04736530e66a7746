"""Job leases: which process runs a job's next action, until when, and the fence that makes a
lost lease harmless.

A claim takes jobs with work left (:data:`CLAIMABLE`: unfinished, or ended without the requester
told) whose lease is free, expired or already the claimant's, oldest first, in one statement.
Each change of hands bumps ``lease_fence``; every write the tracker makes afterwards passes that
fence (``transition(..., fence=)``, see :mod:`core.store._jobs`), so a process that lost its
lease to expiry can change nothing. On PostgreSQL the claim locks its rows with ``FOR UPDATE
SKIP LOCKED``, so concurrent claimants never take the same job and never wait on each other;
SQLite has one writer, which serializes claims anyway.

Owners: ``"local"`` on SQLite (one process: after a restart its leases are its own again at
once), ``host:pid:random`` on PostgreSQL (:func:`owner_id`).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Collection

from sqlalchemy import bindparam, case, select, text, update

from core.jobs import JobState
from core.store._db import Queries
from core.store._tables import CLAIMABLE, jobs
from core.store.types import Lease

LOCAL_OWNER = "local"


def owner_id(is_postgres: bool) -> str:
    """This process's lease owner name."""
    if not is_postgres:
        return LOCAL_OWNER
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


_claimable = text(CLAIMABLE)  # the partial indexes' own condition, word for word


class LeaseQueries(Queries):
    async def claim_jobs(
        self,
        owner: str,
        states: Collection[JobState],
        now: float,
        ttl: float,
        limit: int,
        *,
        include_own: bool = True,
    ) -> list[Lease]:
        """Lease up to ``limit`` jobs in ``states`` to ``owner`` until ``now + ttl``.

        Takes jobs whose lease is free, expired (``lease_until < now``) or already ``owner``'s
        (``include_own=False``: not those, so that a claimant holding thousands never re-takes
        them and never fills ``limit`` with them); the fence goes up by one when the job changes
        hands, and stays when it was ours. Returns the leases taken, oldest job first.
        """
        if not states or limit <= 0:
            return []
        free = jobs.c.lease_owner.is_(None) | (jobs.c.lease_until < now)
        if include_own:
            free = free | (jobs.c.lease_owner == owner)
        chosen = (
            select(jobs.c.id)
            .where(_claimable, jobs.c.state.in_(sorted(state.value for state in states)), free)
            .order_by(jobs.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
        )
        statement = (
            update(jobs)
            .where(jobs.c.id.in_(chosen.scalar_subquery()))
            .values(
                lease_owner=owner,
                lease_until=now + ttl,
                lease_fence=case(
                    (jobs.c.lease_owner == owner, jobs.c.lease_fence),
                    else_=jobs.c.lease_fence + 1,
                ),
            )
            .returning(jobs.c.id, jobs.c.state, jobs.c.lease_fence, jobs.c.created_at)
        )
        async with self._db.transaction() as conn:
            rows = (await conn.execute(statement)).all()
        rows = sorted(rows, key=lambda row: (row.created_at, row.id))
        return [Lease(row.id, JobState(row.state), int(row.lease_fence)) for row in rows]

    async def held_leases(self, owner: str) -> list[Lease]:
        """Every lease ``owner`` holds on a job with work left, oldest job first (one read, by
        index): what a restarted "local" takes back at once, and the fences of leases that
        nothing in the process acts on any more."""
        rows = await self._db.fetchall(
            select(jobs.c.id, jobs.c.state, jobs.c.lease_fence)
            .where(jobs.c.lease_owner == bindparam("owner"), _claimable)
            .order_by(jobs.c.created_at, jobs.c.id),
            {"owner": owner},
        )
        return [Lease(row[0], JobState(row[1]), int(row[2])) for row in rows]

    async def renew_leases(self, owner: str, now: float, ttl: float) -> set[str]:
        """Extend every lease ``owner`` still holds on a job with work left, in one statement;
        returns those jobs' ids (an expired lease nobody took yet is still held)."""
        statement = (
            update(jobs)
            .where(jobs.c.lease_owner == owner, _claimable)
            .values(lease_until=now + ttl)
            .returning(jobs.c.id)
        )
        async with self._db.transaction() as conn:
            return set((await conn.execute(statement)).scalars())

    async def release_lease(self, job_id: str, owner: str, fence: int) -> bool:
        """Give the job up (its next action may go to anyone at once); False if not ours."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.lease_owner == owner, jobs.c.lease_fence == fence)
            .values(lease_owner=None, lease_until=None)
        )
        async with self._db.transaction() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def note_webhook(self, job_id: str, now: float) -> None:
        """A webhook for this job arrived (at any process): its owner acts on it."""
        statement = update(jobs).where(jobs.c.id == job_id, _claimable).values(webhook_at=now)
        async with self._db.transaction() as conn:
            await conn.execute(statement)

    async def take_webhook(self, job_id: str, fence: int) -> bool:
        """Clear the job's pending webhook before acting on it; False when there was none or
        the lease is no longer ``fence`` (one arriving after this call is pending again)."""
        statement = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.lease_fence == fence,
                jobs.c.webhook_at.is_not(None),
            )
            .values(webhook_at=None)
        )
        async with self._db.transaction() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def webhook_pending(self, owner: str) -> list[str]:
        """``owner``'s jobs with a webhook not acted on yet, oldest webhook first."""
        rows = await self._db.fetchall(
            select(jobs.c.id)
            .where(jobs.c.lease_owner == bindparam("owner"), jobs.c.webhook_at.is_not(None))
            .order_by(jobs.c.webhook_at),
            {"owner": owner},
        )
        return [row[0] for row in rows]
