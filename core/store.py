"""All SQL lives here: jobs, the quota ledger, guild settings, overrides, bans, rules, audit.

Two aiosqlite connections in WAL mode: one writes, one reads. Every write runs in a
``BEGIN IMMEDIATE`` transaction under an asyncio lock, so a check and the write that depends on
it (quota reservation, state transition + refund) are atomic even with thousands of coroutines
calling at once; reads go to the other connection and never queue behind writes (WAL lets a
reader see the last committed state while a write is under way). Reads take turns on their
connection: a statement left open there would hold its snapshot, and reads overlapping without
end would then never see a newer commit. Callers get
plain dataclasses; nothing outside this module writes SQL, so another backend (PostgreSQL) can
implement the same methods without touching them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from core.errors import UserError
from core.jobs import (
    FINISHED_STATES,
    UNFINISHED_STATES,
    Job,
    JobOrigin,
    JobState,
    sources_of,
)
from core.references import LabelledReference
from core.request import GenerationRequest

log = logging.getLogger(__name__)


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


class QuotaExceeded(UserError):
    """The member has not enough seconds left today."""

    def __init__(self, needed: int, remaining: int) -> None:
        self.needed = needed
        self.remaining = remaining
        super().__init__(
            f"This video costs {needed} s of your daily quota but you have {remaining} s left"
            " today. Try a shorter duration or 720P, or wait for the daily reset (00:00 UTC)."
        )


class TooManyJobs(UserError):
    """The member already has as many unfinished jobs as allowed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"You already have {limit} video(s) being made here, the most allowed at once."
            " Wait for one to finish."
        )


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    daily_seconds: int
    max_concurrent: int
    exempt: bool = False


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    guild_id: int
    channel_id: int
    user_id: int
    origin: JobOrigin
    request: GenerationRequest
    references: tuple[LabelledReference, ...]
    cost_seconds: int
    deadline_at: float
    webhook_token_hash: str | None = None
    parent_job_id: str | None = None
    thread_id: int | None = None
    reference_copies: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GuildSettings:
    guild_id: int
    daily_seconds: int | None = None
    max_concurrent: int | None = None
    max_duration: int | None = None
    max_resolution: str | None = None
    exempt_role_id: int | None = None
    moderator_role_id: int | None = None
    paused: bool = False
    pause_reason: str | None = None
    nsfw_only: bool = False


@dataclass(frozen=True, slots=True)
class UserOverride:
    guild_id: int
    user_id: int
    daily_seconds: int | None = None
    max_concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class Ban:
    guild_id: int
    user_id: int
    reason: str | None
    actor_id: int
    created_at: float


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    guild_id: int
    user_id: int
    job_id: str | None
    kind: str
    seconds: int
    day: str
    actor_id: int | None
    note: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An admin action to log in the same transaction as the change it describes."""

    guild_id: int
    actor_id: int
    action: str
    target: str | None = None
    before: Any = None
    after: Any = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    guild_id: int
    actor_id: int
    action: str
    target: str | None
    before: Any
    after: Any
    created_at: float


@dataclass(frozen=True, slots=True)
class UsageRow:
    user_id: int
    seconds: int
    jobs: int
    failed: int


_JOB_COLUMNS = (
    "id, guild_id, channel_id, user_id, origin, parent_job_id, state, request_json,"
    " references_json, cost_seconds, quota_day, webhook_token_hash, task_id, submit_attempts,"
    " poll_count, delivery_attempts, deadline_at, result_url, error, status_message_id,"
    " thread_id, delivered_message_id, created_at, submitting_at, submitted_at, running_at,"
    " completed_at, delivered_at, failed_at, cancelled_at, updated_at, user_notified_at,"
    " reference_copies_json"
)

# Fields a transition may set besides the state and its timestamp.
_TRANSITION_FIELDS = frozenset(
    {"task_id", "result_url", "error", "submit_attempts", "delivered_message_id"}
)
_DISCORD_FIELDS = frozenset({"status_message_id", "thread_id"})


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


def _job_from_row(row: aiosqlite.Row) -> Job:
    return Job(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        origin=JobOrigin(row["origin"]),
        parent_job_id=row["parent_job_id"],
        state=JobState(row["state"]),
        request=GenerationRequest.from_json(json.loads(row["request_json"])),
        references=tuple(
            LabelledReference.from_json(item) for item in json.loads(row["references_json"])
        ),
        cost_seconds=row["cost_seconds"],
        quota_day=row["quota_day"],
        webhook_token_hash=row["webhook_token_hash"],
        task_id=row["task_id"],
        submit_attempts=row["submit_attempts"],
        poll_count=row["poll_count"],
        delivery_attempts=row["delivery_attempts"],
        deadline_at=row["deadline_at"],
        result_url=row["result_url"],
        error=row["error"],
        status_message_id=row["status_message_id"],
        thread_id=row["thread_id"],
        delivered_message_id=row["delivered_message_id"],
        created_at=row["created_at"],
        submitting_at=row["submitting_at"],
        submitted_at=row["submitted_at"],
        running_at=row["running_at"],
        completed_at=row["completed_at"],
        delivered_at=row["delivered_at"],
        failed_at=row["failed_at"],
        cancelled_at=row["cancelled_at"],
        updated_at=row["updated_at"],
        user_notified_at=row["user_notified_at"],
        reference_copies=json.loads(row["reference_copies_json"]),
    )


def _migrations() -> list[tuple[int, str]]:
    """(version, sql) for every ``core/migrations/NNN_name.sql``, in order."""
    found: list[tuple[int, str]] = []
    for entry in resources.files("core.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), entry.read_text(encoding="utf-8")))
    found.sort()
    return found


class Store:
    """The SQLite store. Open with ``async with Store.open(path) as store``."""

    def __init__(self, conn: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._conn = conn
        self._reader = reader
        self._lock = asyncio.Lock()  # one write transaction at a time
        self._read_lock = asyncio.Lock()  # one read statement at a time (see the docstring)

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | str) -> AsyncIterator[Store]:
        if str(path) == ":memory:":
            raise ValueError("the store needs a file: its reader and writer share it")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await _connect(path)
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await Store(conn, conn)._migrate()
            reader = await _connect(path)
            try:
                yield cls(conn, reader)
            finally:
                await reader.close()
        finally:
            await conn.close()

    async def _migrate(self) -> None:
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for version, sql in _migrations():
            if version <= current:
                continue
            log.info("applying database migration %03d", version)
            # executescript would COMMIT first; run statements one by one inside one transaction.
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    await self._conn.execute(statement)
                await self._conn.execute(f"PRAGMA user_version = {version:d}")
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._read_lock, self._reader.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._read_lock, self._reader.execute(sql, params) as cur:
            return await cur.fetchone()

    @staticmethod
    async def _job_in(conn: aiosqlite.Connection, job_id: str) -> Job:
        """The job as this transaction sees it (no second trip through the lock)."""
        async with conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        assert row is not None
        return _job_from_row(row)

    @staticmethod
    async def _one(conn: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> Any:
        async with conn.execute(sql, params) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    # ----------------------------------------------------------------- jobs

    async def create_job(self, job: NewJob, limits: QuotaLimits, now: float) -> Job:
        """Check the member's quota and concurrency, insert the job and reserve its cost.

        One transaction: a thousand concurrent calls can never over-spend.
        Raises :class:`QuotaExceeded` or :class:`TooManyJobs`.
        """
        day = utc_day(now)
        async with self._tx() as conn:
            if not limits.exempt:
                unfinished = await self._one(
                    conn,
                    "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ?"
                    f" AND state IN ({_placeholders(len(UNFINISHED_STATES))})",
                    (job.guild_id, job.user_id, *sorted(UNFINISHED_STATES)),
                )
                if unfinished >= limits.max_concurrent:
                    raise TooManyJobs(limits.max_concurrent)
                used = await self._usage(conn, job.guild_id, job.user_id, day)
                remaining = limits.daily_seconds - used
                if job.cost_seconds > remaining:
                    raise QuotaExceeded(job.cost_seconds, max(remaining, 0))
            await conn.execute(
                "INSERT INTO jobs (id, guild_id, channel_id, user_id, origin, parent_job_id,"
                " state, request_json, references_json, cost_seconds, quota_day,"
                " webhook_token_hash, deadline_at, thread_id, created_at, updated_at,"
                " reference_copies_json)"
                " VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.guild_id,
                    job.channel_id,
                    job.user_id,
                    job.origin.value,
                    job.parent_job_id,
                    json.dumps(job.request.to_json()),
                    json.dumps([ref.to_json() for ref in job.references]),
                    job.cost_seconds,
                    day,
                    job.webhook_token_hash,
                    job.deadline_at,
                    job.thread_id,
                    now,
                    now,
                    json.dumps(job.reference_copies),
                ),
            )
            await self._ledger(
                conn, job.guild_id, job.user_id, job.id, "reserve", job.cost_seconds, day, now
            )
            return await self._job_in(conn, job.id)

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchone(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job_from_row(row) if row else None

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
        async with self._tx() as conn:
            cur = await conn.execute(
                f"UPDATE jobs SET {', '.join(assignments)}"
                f" WHERE id = ? AND state IN ({_placeholders(len(sources))})",
                (*params, job_id, *sources),
            )
            if cur.rowcount != 1:
                return None
            moved = await self._job_in(conn, job_id)
            if target in (JobState.FAILED, JobState.CANCELLED, JobState.DELIVERED):
                if target is JobState.DELIVERED:
                    kind, seconds = "commit", 0
                else:
                    kind, seconds = "refund", -moved.cost_seconds
                await self._ledger(
                    conn,
                    moved.guild_id,
                    moved.user_id,
                    job_id,
                    kind,
                    seconds,
                    moved.quota_day,
                    now,
                )
            await self._audit(conn, audit, now)
            return moved

    async def set_discord_ids(self, job_id: str, **fields: int | None) -> None:
        unknown = set(fields) - _DISCORD_FIELDS
        if unknown or not fields:
            raise ValueError(f"cannot set {sorted(unknown) or 'nothing'}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        async with self._tx() as conn:
            await conn.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id)
            )

    async def set_reference_copies(self, job_id: str, copies: dict[str, list[int]]) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE jobs SET reference_copies_json = ? WHERE id = ?",
                (json.dumps(copies), job_id),
            )

    async def count_poll(self, job_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE jobs SET poll_count = poll_count + 1 WHERE id = ?", (job_id,)
            )

    async def count_delivery_attempt(self, job_id: str, error: str | None) -> int:
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE jobs SET delivery_attempts = delivery_attempts + 1, error = ? WHERE id = ?",
                (error, job_id),
            )
            return int(
                await self._one(conn, "SELECT delivery_attempts FROM jobs WHERE id = ?", (job_id,))
            )

    async def mark_user_notified(self, job_id: str, now: float) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE jobs SET user_notified_at = ? WHERE id = ? AND user_notified_at IS NULL",
                (now, job_id),
            )

    async def unnotified_endings(self, since: float) -> list[Job]:
        """Failed or cancelled jobs since ``since`` whose requester was not told yet."""
        rows = await self._fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ('failed', 'cancelled')"
            " AND user_notified_at IS NULL AND updated_at >= ? ORDER BY updated_at",
            (since,),
        )
        return [_job_from_row(row) for row in rows]

    async def job_by_webhook_token_hash(self, digest: str) -> Job | None:
        row = await self._fetchone(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE webhook_token_hash = ?", (digest,)
        )
        return _job_from_row(row) if row else None

    async def known_task_ids(self, candidates: Iterable[str]) -> set[str]:
        """Which of ``candidates`` already belong to a job (checked in batches, by index)."""
        wanted = list(dict.fromkeys(candidates))
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            rows = await self._fetchall(
                f"SELECT task_id FROM jobs WHERE task_id IN ({_placeholders(len(batch))})", batch
            )
            known.update(row[0] for row in rows)
        return known

    async def ids_in_state(self, state: JobState) -> list[str]:
        rows = await self._fetchall(
            "SELECT id FROM jobs WHERE state = ? ORDER BY created_at", (state.value,)
        )
        return [row[0] for row in rows]

    async def unfinished_states(self) -> list[tuple[str, JobState]]:
        """(id, state) of every unfinished job: all a restart needs, without parsing requests."""
        rows = await self._fetchall(
            "SELECT id, state FROM jobs"
            f" WHERE state NOT IN ({_placeholders(len(FINISHED_STATES))}) ORDER BY created_at",
            sorted(FINISHED_STATES),
        )
        return [(row[0], JobState(row[1])) for row in rows]

    async def latest_job_in_thread(self, thread_id: int) -> Job | None:
        row = await self._fetchone(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE thread_id = ?"
            " ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (thread_id,),
        )
        return _job_from_row(row) if row else None

    async def jobs_for_user(
        self, guild_id: int, user_id: int, *, limit: int, offset: int = 0
    ) -> list[Job]:
        rows = await self._fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND user_id = ?"
            " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (guild_id, user_id, limit, offset),
        )
        return [_job_from_row(row) for row in rows]

    async def count_jobs_for_user(self, guild_id: int, user_id: int) -> int:
        row = await self._fetchone(
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
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE guild_id = ?"
        params: list[Any] = [guild_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        if states is not None:
            wanted = sorted(states)
            sql += f" AND state IN ({_placeholders(len(wanted))})"
            params.extend(wanted)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        params.append(limit)
        return [_job_from_row(row) for row in await self._fetchall(sql, params)]

    async def recent_completions(self, limit: int) -> list[tuple[str, int, float]]:
        """(resolution, duration, seconds from submission to completion) of the latest
        completed tasks, newest first: what the run-time model learns from at start-up."""
        rows = await self._fetchall(
            "SELECT json_extract(request_json, '$.resolution'),"
            " json_extract(request_json, '$.duration'), completed_at - submitted_at FROM jobs"
            " WHERE completed_at IS NOT NULL AND submitted_at IS NOT NULL"
            " ORDER BY completed_at DESC LIMIT ?",
            (limit,),
        )
        return [(str(row[0]), int(row[1]), float(row[2])) for row in rows if row[1] is not None]

    # ----------------------------------------------------------------- quota ledger

    @staticmethod
    async def _ledger(
        conn: aiosqlite.Connection,
        guild_id: int,
        user_id: int,
        job_id: str | None,
        kind: str,
        seconds: int,
        day: str,
        now: float,
        actor_id: int | None = None,
        note: str | None = None,
    ) -> None:
        await conn.execute(
            "INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, seconds, day, actor_id,"
            " note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (guild_id, user_id, job_id, kind, seconds, day, actor_id, note, now),
        )

    async def _usage(
        self, conn: aiosqlite.Connection, guild_id: int, user_id: int, day: str
    ) -> int:
        used = await self._one(
            conn,
            "SELECT COALESCE(SUM(seconds), 0) FROM quota_ledger"
            " WHERE guild_id = ? AND user_id = ? AND day = ?",
            (guild_id, user_id, day),
        )
        return int(used)

    async def usage(self, guild_id: int, user_id: int, day: str) -> int:
        """Seconds the member has used on ``day`` (UTC), grants and resets subtracted."""
        async with self._read_lock:
            return await self._usage(self._reader, guild_id, user_id, day)

    async def unfinished_count(self, guild_id: int, user_id: int) -> int:
        row = await self._fetchone(
            "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ?"
            f" AND state IN ({_placeholders(len(UNFINISHED_STATES))})",
            (guild_id, user_id, *sorted(UNFINISHED_STATES)),
        )
        return int(row[0]) if row else 0

    async def grant(
        self,
        guild_id: int,
        user_id: int,
        seconds: int,
        actor_id: int,
        now: float,
        note: str | None = None,
        audit: AuditRecord | None = None,
    ) -> None:
        """Give the member ``seconds`` extra for today (a ledger row, never an edit)."""
        if seconds <= 0:
            raise ValueError("a grant must be a positive number of seconds")
        async with self._tx() as conn:
            await self._ledger(
                conn, guild_id, user_id, None, "grant", -seconds, utc_day(now), now, actor_id, note
            )
            await self._audit(conn, audit, now)

    async def reset_usage(
        self,
        guild_id: int,
        user_id: int,
        actor_id: int,
        now: float,
        audit: AuditRecord | None = None,
    ) -> int:
        """Bring today's usage back to zero; returns the seconds that were used.

        The audit row's before/after are the figures read inside the same transaction.
        """
        day = utc_day(now)
        async with self._tx() as conn:
            used = await self._usage(conn, guild_id, user_id, day)
            if used != 0:
                await self._ledger(
                    conn, guild_id, user_id, None, "reset", -used, day, now, actor_id
                )
            if audit is not None:
                audit = replace(audit, before={"used_seconds": used}, after={"used_seconds": 0})
            await self._audit(conn, audit, now)
            return used

    async def ledger_entries(
        self, guild_id: int, *, since_day: str, user_id: int | None = None
    ) -> list[LedgerEntry]:
        sql = (
            "SELECT id, guild_id, user_id, job_id, kind, seconds, day, actor_id, note, created_at"
            " FROM quota_ledger WHERE guild_id = ? AND day >= ?"
        )
        params: list[Any] = [guild_id, since_day]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        rows = await self._fetchall(sql + " ORDER BY id", params)
        return [LedgerEntry(*row) for row in rows]

    async def usage_report(self, guild_id: int, since_day: str) -> list[UsageRow]:
        """Seconds generated (delivered jobs), jobs made and jobs failed, per member."""
        rows = await self._fetchall(
            "SELECT user_id,"
            " COALESCE(SUM(CASE WHEN state = 'delivered' THEN cost_seconds END), 0),"
            " COUNT(*), SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END)"
            " FROM jobs WHERE guild_id = ? AND quota_day >= ?"
            " GROUP BY user_id ORDER BY 2 DESC, 3 DESC",
            (guild_id, since_day),
        )
        return [UsageRow(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]

    # ----------------------------------------------------------------- guild rules

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        row = await self._fetchone(
            "SELECT guild_id, daily_seconds, max_concurrent, max_duration, max_resolution,"
            " exempt_role_id, moderator_role_id, paused, pause_reason, nsfw_only"
            " FROM guild_settings WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return GuildSettings(guild_id)
        values = list(row)
        values[7] = bool(values[7])
        values[9] = bool(values[9])
        return GuildSettings(*values)

    async def save_guild_settings(
        self, settings: GuildSettings, now: float, audit: AuditRecord | None = None
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO guild_settings (guild_id, daily_seconds, max_concurrent, max_duration,"
                " max_resolution, exempt_role_id, moderator_role_id, paused, pause_reason,"
                " nsfw_only, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id) DO UPDATE SET daily_seconds = excluded.daily_seconds,"
                " max_concurrent = excluded.max_concurrent, max_duration = excluded.max_duration,"
                " max_resolution = excluded.max_resolution,"
                " exempt_role_id = excluded.exempt_role_id,"
                " moderator_role_id = excluded.moderator_role_id, paused = excluded.paused,"
                " pause_reason = excluded.pause_reason, nsfw_only = excluded.nsfw_only,"
                " updated_at = excluded.updated_at",
                (
                    settings.guild_id,
                    settings.daily_seconds,
                    settings.max_concurrent,
                    settings.max_duration,
                    settings.max_resolution,
                    settings.exempt_role_id,
                    settings.moderator_role_id,
                    int(settings.paused),
                    settings.pause_reason,
                    int(settings.nsfw_only),
                    now,
                ),
            )
            await self._audit(conn, audit, now)

    async def user_override(self, guild_id: int, user_id: int) -> UserOverride:
        row = await self._fetchone(
            "SELECT guild_id, user_id, daily_seconds, max_concurrent FROM user_overrides"
            " WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        return UserOverride(*row) if row else UserOverride(guild_id, user_id)

    async def save_user_override(
        self, override: UserOverride, now: float, audit: AuditRecord | None = None
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO user_overrides (guild_id, user_id, daily_seconds, max_concurrent,"
                " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE"
                " SET daily_seconds = excluded.daily_seconds,"
                " max_concurrent = excluded.max_concurrent, updated_at = excluded.updated_at",
                (
                    override.guild_id,
                    override.user_id,
                    override.daily_seconds,
                    override.max_concurrent,
                    now,
                ),
            )
            await self._audit(conn, audit, now)

    async def ban(
        self,
        guild_id: int,
        user_id: int,
        reason: str | None,
        actor_id: int,
        now: float,
        audit: AuditRecord | None = None,
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO bans (guild_id, user_id, reason, actor_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE"
                " SET reason = excluded.reason, actor_id = excluded.actor_id",
                (guild_id, user_id, reason, actor_id, now),
            )
            await self._audit(conn, audit, now)

    async def unban(
        self, guild_id: int, user_id: int, now: float, audit: AuditRecord | None = None
    ) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute(
                "DELETE FROM bans WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            if cur.rowcount != 1:
                return False
            await self._audit(conn, audit, now)
            return True

    async def get_ban(self, guild_id: int, user_id: int) -> Ban | None:
        row = await self._fetchone(
            "SELECT guild_id, user_id, reason, actor_id, created_at FROM bans"
            " WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        return Ban(*row) if row else None

    async def set_channel_rule(
        self,
        guild_id: int,
        channel_id: int,
        rule: str | None,
        now: float,
        audit: AuditRecord | None = None,
    ) -> None:
        """``rule`` is 'allow', 'deny', or None to remove the channel's rule."""
        async with self._tx() as conn:
            if rule is None:
                await conn.execute(
                    "DELETE FROM channel_rules WHERE guild_id = ? AND channel_id = ?",
                    (guild_id, channel_id),
                )
            else:
                await conn.execute(
                    "INSERT INTO channel_rules (guild_id, channel_id, rule) VALUES (?, ?, ?)"
                    " ON CONFLICT (guild_id, channel_id) DO UPDATE SET rule = excluded.rule",
                    (guild_id, channel_id, rule),
                )
            await self._audit(conn, audit, now)

    async def channel_rules(self, guild_id: int) -> dict[int, str]:
        rows = await self._fetchall(
            "SELECT channel_id, rule FROM channel_rules WHERE guild_id = ?", (guild_id,)
        )
        return {int(row[0]): str(row[1]) for row in rows}

    # ----------------------------------------------------------------- audit

    @staticmethod
    async def _audit(conn: aiosqlite.Connection, record: AuditRecord | None, now: float) -> None:
        if record is None:
            return
        await conn.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, target, before_json,"
            " after_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.guild_id,
                record.actor_id,
                record.action,
                record.target,
                json.dumps(record.before, default=str),
                json.dumps(record.after, default=str),
                now,
            ),
        )

    async def audit_entries(self, guild_id: int, limit: int = 20) -> list[AuditEntry]:
        rows = await self._fetchall(
            "SELECT id, guild_id, actor_id, action, target, before_json, after_json, created_at"
            " FROM audit_log WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        )
        return [
            AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), r[7])
            for r in rows
        ]


async def _connect(path: Path | str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(str(path), isolation_level=None)  # we BEGIN ourselves
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA busy_timeout = 5000")
    await conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, fast commits
    return conn


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations keep ';' out of literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
