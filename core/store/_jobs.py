"""The jobs table: accepting a job (with its reservation), legal transitions, Discord ids,
counters, and the queries the tracker, the history and the moderators read.

Transitions are ``UPDATE … WHERE state IN (legal sources)``: whoever moves a job first wins, and
a refund or commit is written in the same transaction as the move that causes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import aiosqlite

from core.jobs import FINISHED_STATES, Job, JobState, sources_of
from core.store._audit import write_audit
from core.store._db import Queries, placeholders, scalar
from core.store._job_rows import INSERT, SELECT_LIST, insert_params, job_from_row, reserved
from core.store._ledger import add_entry, check_room, ledger_written
from core.store.types import AuditRecord, NewJob, QuotaLimits, utc_day

# Fields a transition may set besides the state and its timestamp.
_TRANSITION_FIELDS = frozenset(
    {"task_id", "result_url", "error", "submit_attempts", "delivered_message_id"}
)
_DISCORD_FIELDS = frozenset({"status_message_id", "thread_id"})


async def _job_in(conn: aiosqlite.Connection, job_id: str) -> Job:
    """The job as this transaction sees it (no second trip through the lock)."""
    async with conn.execute(f"SELECT {SELECT_LIST} FROM jobs WHERE id = ?", (job_id,)) as cur:
        row = await cur.fetchone()
    assert row is not None
    return job_from_row(row)


class JobQueries(Queries):
    async def create_job(self, job: NewJob, limits: QuotaLimits, now: float) -> Job:
        """Check the member's quota and concurrency, insert the job and reserve its cost.

        One transaction: a thousand concurrent calls can never over-spend.
        Raises :class:`QuotaExceeded` or :class:`TooManyJobs`.
        """
        day = utc_day(now)
        async with self._db.transaction() as conn:
            await check_room(
                conn, job.guild_id, job.user_id, job.cost_seconds, limits, day, job.request
            )
            await conn.execute(INSERT, insert_params(reserved(job, day, now)))
            await add_entry(
                conn, job.guild_id, job.user_id, job.id, "reserve", job.cost_seconds, day, now
            )
            created = await _job_in(conn, job.id)
        ledger_written(self._db, "reserve", job.cost_seconds)
        return created

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._db.fetchone(f"SELECT {SELECT_LIST} FROM jobs WHERE id = ?", (job_id,))
        return job_from_row(row) if row else None

    async def transition(
        self,
        job_id: str,
        target: JobState,
        now: float,
        *,
        audit: AuditRecord | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move a job to ``target`` if that is legal from its current state.

        Returns the updated job, or None when the job was not in a state that may move there
        (someone else moved it first). failed/cancelled refund and delivered commits, in the
        same transaction.
        """
        unknown = set(fields) - _TRANSITION_FIELDS
        if unknown:
            raise ValueError(f"transition cannot set {sorted(unknown)}")
        sources = sorted(sources_of(target))
        assignments = ["state = ?", "updated_at = ?"]
        params: list[Any] = [target.value, now]
        if target is not JobState.RESERVED:  # back to reserved keeps its first timestamps
            assignments.append(f"{target.value}_at = ?")
            params.append(now)
        for name, value in fields.items():
            assignments.append(f"{name} = ?")
            params.append(value)
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE jobs SET {', '.join(assignments)}"
                f" WHERE id = ? AND state IN ({placeholders(len(sources))})",
                (*params, job_id, *sources),
            )
            if cur.rowcount != 1:
                return None
            moved = await _job_in(conn, job_id)
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

    async def set_discord_ids(self, job_id: str, **fields: int | None) -> None:
        unknown = set(fields) - _DISCORD_FIELDS
        if unknown or not fields:
            raise ValueError(f"cannot set {sorted(unknown) or 'nothing'}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        async with self._db.transaction() as conn:
            await conn.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id)
            )

    async def set_reference_copies(self, job_id: str, copies: dict[str, list[int]]) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET reference_copies_json = ? WHERE id = ?",
                (json.dumps(copies), job_id),
            )

    async def count_poll(self, job_id: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET poll_count = poll_count + 1 WHERE id = ?", (job_id,)
            )

    async def count_delivery_attempt(self, job_id: str, error: str | None) -> int:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET delivery_attempts = delivery_attempts + 1, error = ? WHERE id = ?",
                (error, job_id),
            )
            return int(
                await scalar(conn, "SELECT delivery_attempts FROM jobs WHERE id = ?", (job_id,))
            )

    async def mark_user_notified(self, job_id: str, now: float) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE jobs SET user_notified_at = ? WHERE id = ? AND user_notified_at IS NULL",
                (now, job_id),
            )

    async def unnotified_endings(self, since: float) -> list[Job]:
        """Failed or cancelled jobs since ``since`` whose requester was not told yet."""
        rows = await self._db.fetchall(
            f"SELECT {SELECT_LIST} FROM jobs WHERE state IN ('failed', 'cancelled')"
            " AND user_notified_at IS NULL AND updated_at >= ? ORDER BY updated_at",
            (since,),
        )
        return [job_from_row(row) for row in rows]

    async def job_by_webhook_token_hash(self, digest: str) -> Job | None:
        row = await self._db.fetchone(
            f"SELECT {SELECT_LIST} FROM jobs WHERE webhook_token_hash = ?", (digest,)
        )
        return job_from_row(row) if row else None

    async def known_task_ids(self, candidates: Iterable[str]) -> set[str]:
        """Which of ``candidates`` already belong to a job (checked in batches, by index)."""
        wanted = list(dict.fromkeys(candidates))
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            rows = await self._db.fetchall(
                f"SELECT task_id FROM jobs WHERE task_id IN ({placeholders(len(batch))})", batch
            )
            known.update(row[0] for row in rows)
        return known

    async def ids_in_state(self, state: JobState) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT id FROM jobs WHERE state = ? ORDER BY created_at", (state.value,)
        )
        return [row[0] for row in rows]

    async def unfinished_states(self) -> list[tuple[str, JobState]]:
        """(id, state) of every unfinished job: all a restart needs, without parsing requests."""
        rows = await self._db.fetchall(
            "SELECT id, state FROM jobs"
            f" WHERE state NOT IN ({placeholders(len(FINISHED_STATES))}) ORDER BY created_at",
            sorted(FINISHED_STATES),
        )
        return [(row[0], JobState(row[1])) for row in rows]

    async def video_thread_ids(self) -> set[int]:
        """Every thread a job was made in: what the bot answers replies in."""
        rows = await self._db.fetchall(
            "SELECT DISTINCT thread_id FROM jobs WHERE thread_id IS NOT NULL"
        )
        return {int(row[0]) for row in rows}

    async def count_unfinished_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each unfinished state (metrics and health, at every scrape).

        The condition is the partial index ``jobs_unfinished``'s own, word for word (literals in
        its order): only then does SQLite count from that index without reading the table.
        """
        rows = await self._db.fetchall(
            "SELECT state, COUNT(*) FROM jobs"
            " WHERE state NOT IN ('delivered', 'failed', 'cancelled') GROUP BY state"
        )
        return {JobState(row[0]): int(row[1]) for row in rows}

    async def latest_job_in_thread(self, thread_id: int) -> Job | None:
        row = await self._db.fetchone(
            f"SELECT {SELECT_LIST} FROM jobs WHERE thread_id = ?"
            " ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (thread_id,),
        )
        return job_from_row(row) if row else None

    async def jobs_for_user(
        self, guild_id: int, user_id: int, *, limit: int, offset: int = 0
    ) -> list[Job]:
        rows = await self._db.fetchall(
            f"SELECT {SELECT_LIST} FROM jobs WHERE guild_id = ? AND user_id = ?"
            " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (guild_id, user_id, limit, offset),
        )
        return [job_from_row(row) for row in rows]

    async def count_jobs_for_user(self, guild_id: int, user_id: int) -> int:
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return int(row[0]) if row else 0

    async def jobs_in_guild(
        self,
        guild_id: int,
        *,
        user_id: int | None = None,
        states: Iterable[JobState] | None = None,
        limit: int = 25,
    ) -> list[Job]:
        sql = f"SELECT {SELECT_LIST} FROM jobs WHERE guild_id = ?"
        params: list[Any] = [guild_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        if states is not None:
            wanted = sorted(states)
            sql += f" AND state IN ({placeholders(len(wanted))})"
            params.extend(wanted)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        return [job_from_row(row) for row in await self._db.fetchall(sql, params)]

    async def recent_completions(self, limit: int) -> list[tuple[str, int, float]]:
        """(resolution, duration, seconds from submission to completion) of the latest
        completed tasks, newest first: what the run-time model learns from at start-up."""
        rows = await self._db.fetchall(
            "SELECT json_extract(request_json, '$.resolution'),"
            " json_extract(request_json, '$.duration'), completed_at - submitted_at FROM jobs"
            " WHERE completed_at IS NOT NULL AND submitted_at IS NOT NULL"
            " ORDER BY completed_at DESC LIMIT ?",
            (limit,),
        )
        return [(str(row[0]), int(row[1]), float(row[2])) for row in rows if row[1] is not None]
