"""The jobs table: accepting a job (with its reservation), legal transitions, Discord ids,
counters, and the queries the tracker, the history and the moderators read.

Transitions are ``UPDATE … WHERE state IN (legal sources)``: whoever moves a job first wins, and
a refund or commit is written in the same transaction as the move that causes it. Every write
the tracker makes after claiming a job (:mod:`core.store._leases`) takes ``fence``: given, the
write also requires ``lease_fence = fence``, so a process whose lease was taken over changes
nothing (a transition returns None and writes no refund; the others return False or None).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, overload

from sqlalchemy import Update, bindparam, func, select, text, update

from core.jobs import FINISHED_STATES, Job, JobState, sources_of
from core.store._audit import write_audit
from core.store._db import Queries
from core.store._job_rows import SELECTED, insert_params, job_from_row, reserved, select_jobs
from core.store._ledger import add_entry, check_room, ledger_written
from core.store._sql import insertion_order, json_field
from core.store._tables import UNFINISHED, jobs
from core.store.types import AuditRecord, NewJob, QuotaLimits, utc_day

# Fields a transition may set besides the state and its timestamp.
_TRANSITION_FIELDS = frozenset(
    {"task_id", "result_url", "error", "submit_attempts", "delivered_message_id"}
)
_DISCORD_FIELDS = frozenset({"status_message_id", "thread_id"})
_BY_ID = select_jobs().where(jobs.c.id == bindparam("job_id"))
_NEWEST_FIRST = (jobs.c.created_at.desc(), insertion_order(jobs).desc())


def _values(states: Iterable[JobState]) -> list[str]:
    return sorted(state.value for state in states)


def _job_update(job_id: str, fence: int | None) -> Update:
    """``UPDATE jobs … WHERE id = job_id`` (and the fence, when one is given)."""
    statement = update(jobs).where(jobs.c.id == job_id)
    return statement if fence is None else statement.where(jobs.c.lease_fence == fence)


class JobQueries(Queries):
    async def create_job(self, job: NewJob, limits: QuotaLimits, now: float) -> Job:
        """Check the member's quota and concurrency, insert the job and reserve its cost.

        One reservation (:meth:`Database.reservation`): a thousand concurrent calls, from any
        number of processes, can never over-spend.
        Raises :class:`QuotaExceeded`, :class:`TooManyJobs` or :class:`CapExceeded`.
        """
        day = utc_day(now)
        created = reserved(job, day, now)
        async with self._db.reservation() as conn:
            await check_room(
                conn, job.guild_id, job.user_id, job.cost_seconds, limits, day, job.request
            )
            await conn.execute(jobs.insert(), insert_params(created))
            await add_entry(
                conn, job.guild_id, job.user_id, job.id, "reserve", job.cost_seconds, day, now
            )
        ledger_written(self._db, "reserve", job.cost_seconds)
        return created

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._db.fetchone(_BY_ID, {"job_id": job_id})
        return job_from_row(row) if row else None

    async def transition(
        self,
        job_id: str,
        target: JobState,
        now: float,
        *,
        audit: AuditRecord | None = None,
        fence: int | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move a job to ``target`` if that is legal from its current state.

        Returns the updated job, or None when the job was not in a state that may move there
        (someone else moved it first) or, with ``fence``, its lease is no longer that one.
        failed/cancelled refund and delivered commits, in the same transaction.
        """
        unknown = set(fields) - _TRANSITION_FIELDS
        if unknown:
            raise ValueError(f"transition cannot set {sorted(unknown)}")
        values: dict[str, Any] = {"state": target.value, "updated_at": now, **fields}
        if target is not JobState.RESERVED:  # back to reserved keeps its first timestamps
            values[f"{target.value}_at"] = now
        statement = (
            _job_update(job_id, fence)
            .where(jobs.c.state.in_(_values(sources_of(target))))
            .values(values)
            .returning(*SELECTED)
        )
        async with self._db.transaction() as conn:
            row = (await conn.execute(statement)).first()
            if row is None:
                return None
            moved = job_from_row(row)
            entry: tuple[str, int] | None = None
            if target in (JobState.FAILED, JobState.CANCELLED, JobState.DELIVERED):
                if target is JobState.DELIVERED:
                    kind, seconds = "commit", 0
                else:
                    kind, seconds = "refund", -moved.cost_seconds
                await add_entry(
                    conn,
                    moved.guild_id,
                    moved.user_id,
                    job_id,
                    kind,
                    seconds,
                    moved.quota_day,
                    now,
                )
                entry = (kind, seconds if kind == "refund" else moved.cost_seconds)
            await write_audit(conn, audit, now)
        if entry is not None:  # committed: now it counts
            ledger_written(self._db, *entry)
        return moved

    async def _update(self, statement: Update) -> bool:
        async with self._db.transaction() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def set_discord_ids(
        self, job_id: str, *, fence: int | None = None, **fields: int | None
    ) -> bool:
        """Keep the job's status message and thread ids; False when fenced out."""
        unknown = set(fields) - _DISCORD_FIELDS
        if unknown or not fields:
            raise ValueError(f"cannot set {sorted(unknown) or 'nothing'}")
        return await self._update(_job_update(job_id, fence).values(fields))

    async def set_reference_copies(
        self, job_id: str, copies: dict[str, list[int]], *, fence: int | None = None
    ) -> bool:
        return await self._update(
            _job_update(job_id, fence).values(reference_copies_json=json.dumps(copies))
        )

    async def count_poll(self, job_id: str, *, fence: int | None = None) -> bool:
        return await self._update(
            _job_update(job_id, fence).values(poll_count=jobs.c.poll_count + 1)
        )

    @overload
    async def count_delivery_attempt(
        self, job_id: str, error: str | None, *, fence: None = None
    ) -> int: ...
    @overload
    async def count_delivery_attempt(
        self, job_id: str, error: str | None, *, fence: int | None
    ) -> int | None: ...
    async def count_delivery_attempt(
        self, job_id: str, error: str | None, *, fence: int | None = None
    ) -> int | None:
        """Count one more delivery attempt; returns the count (None when fenced out)."""
        statement = (
            _job_update(job_id, fence)
            .values(delivery_attempts=jobs.c.delivery_attempts + 1, error=error)
            .returning(jobs.c.delivery_attempts)
        )
        async with self._db.transaction() as conn:
            attempts = (await conn.execute(statement)).scalar()
        return None if attempts is None else int(attempts)

    async def mark_user_notified(
        self, job_id: str, now: float, *, fence: int | None = None
    ) -> bool:
        """Record that the requester was told how the job ended; the first notice's time stays
        (False when it was already recorded, or fenced out)."""
        return await self._update(
            _job_update(job_id, fence)
            .where(jobs.c.user_notified_at.is_(None))
            .values(user_notified_at=now)
        )

    async def unnotified_endings(self, since: float) -> list[Job]:
        """Failed or cancelled jobs since ``since`` whose requester was not told yet."""
        rows = await self._db.fetchall(
            select_jobs()
            .where(
                jobs.c.state.in_(("failed", "cancelled")),
                jobs.c.user_notified_at.is_(None),
                jobs.c.updated_at >= since,
            )
            .order_by(jobs.c.updated_at)
        )
        return [job_from_row(row) for row in rows]

    async def job_by_webhook_token_hash(self, digest: str) -> Job | None:
        row = await self._db.fetchone(select_jobs().where(jobs.c.webhook_token_hash == digest))
        return job_from_row(row) if row else None

    async def known_task_ids(self, candidates: Iterable[str]) -> set[str]:
        """Which of ``candidates`` already belong to a job (checked in batches, by index)."""
        wanted = list(dict.fromkeys(candidates))
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            rows = await self._db.fetchall(select(jobs.c.task_id).where(jobs.c.task_id.in_(batch)))
            known.update(row[0] for row in rows)
        return known

    async def ids_in_state(self, state: JobState) -> list[str]:
        rows = await self._db.fetchall(
            select(jobs.c.id).where(jobs.c.state == state.value).order_by(jobs.c.created_at)
        )
        return [row[0] for row in rows]

    async def unfinished_states(self) -> list[tuple[str, JobState]]:
        """(id, state) of every unfinished job: all a restart needs, without parsing requests."""
        rows = await self._db.fetchall(
            select(jobs.c.id, jobs.c.state)
            .where(jobs.c.state.not_in(_values(FINISHED_STATES)))
            .order_by(jobs.c.created_at)
        )
        return [(row[0], JobState(row[1])) for row in rows]

    async def video_thread_ids(self) -> set[int]:
        """Every thread a job was made in: what the bot answers replies in."""
        rows = await self._db.fetchall(
            select(jobs.c.thread_id).distinct().where(jobs.c.thread_id.is_not(None))
        )
        return {int(row[0]) for row in rows}

    async def count_unfinished_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each unfinished state (metrics and health, at every scrape).

        The condition is the partial index ``jobs_unfinished``'s own, word for word: only then
        does SQLite count from that index without reading the table.
        """
        rows = await self._db.fetchall(
            select(jobs.c.state, func.count()).where(text(UNFINISHED)).group_by(jobs.c.state)
        )
        return {JobState(row[0]): int(row[1]) for row in rows}

    async def latest_job_in_thread(self, thread_id: int) -> Job | None:
        row = await self._db.fetchone(
            select_jobs().where(jobs.c.thread_id == thread_id).order_by(*_NEWEST_FIRST).limit(1)
        )
        return job_from_row(row) if row else None

    async def jobs_for_user(
        self, guild_id: int, user_id: int, *, limit: int, offset: int = 0
    ) -> list[Job]:
        rows = await self._db.fetchall(
            select_jobs()
            .where(jobs.c.guild_id == guild_id, jobs.c.user_id == user_id)
            .order_by(*_NEWEST_FIRST)
            .limit(limit)
            .offset(offset)
        )
        return [job_from_row(row) for row in rows]

    async def count_jobs_for_user(self, guild_id: int, user_id: int) -> int:
        count = await self._db.scalar(
            select(func.count())
            .select_from(jobs)
            .where(jobs.c.guild_id == guild_id, jobs.c.user_id == user_id)
        )
        return int(count or 0)

    async def jobs_in_guild(
        self,
        guild_id: int,
        *,
        user_id: int | None = None,
        states: Iterable[JobState] | None = None,
        limit: int = 25,
    ) -> list[Job]:
        query = select_jobs().where(jobs.c.guild_id == guild_id)
        if user_id is not None:
            query = query.where(jobs.c.user_id == user_id)
        if states is not None:
            query = query.where(jobs.c.state.in_(_values(states)))
        rows = await self._db.fetchall(query.order_by(*_NEWEST_FIRST).limit(limit))
        return [job_from_row(row) for row in rows]

    async def recent_completions(self, limit: int) -> list[tuple[str, int, float]]:
        """(resolution, duration, seconds from submission to completion) of the latest
        completed tasks, newest first: what the run-time model learns from at start-up."""
        rows = await self._db.fetchall(
            select(
                json_field(jobs.c.request_json, "resolution"),
                json_field(jobs.c.request_json, "duration"),
                jobs.c.completed_at - jobs.c.submitted_at,
            )
            .where(jobs.c.completed_at.is_not(None), jobs.c.submitted_at.is_not(None))
            .order_by(jobs.c.completed_at.desc())
            .limit(limit)
        )
        return [(str(row[0]), int(row[1]), float(row[2])) for row in rows if row[1] is not None]
