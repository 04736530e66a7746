"""The quota ledger: reservations, commits, refunds, grants and resets, and usage from them.

The ledger is append-only: a member's usage of a day is the sum of its rows (reserve +cost,
refund -cost, grant -extra, reset -used, commit 0 as a marker), never an edited counter. The
check a reservation needs (:func:`check_room`) runs inside the job's own insert transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiosqlite

from core.jobs import UNFINISHED_STATES
from core.request import GenerationRequest
from core.store._audit import write_audit
from core.store._db import Queries, placeholders, scalar
from core.store.types import (
    AuditRecord,
    LedgerEntry,
    QuotaExceeded,
    QuotaLimits,
    TooManyJobs,
    UsageRow,
    utc_day,
)


async def add_entry(
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


async def used_seconds(conn: aiosqlite.Connection, guild_id: int, user_id: int, day: str) -> int:
    used = await scalar(
        conn,
        "SELECT COALESCE(SUM(seconds), 0) FROM quota_ledger"
        " WHERE guild_id = ? AND user_id = ? AND day = ?",
        (guild_id, user_id, day),
    )
    return int(used)


async def unfinished_jobs(conn: aiosqlite.Connection, guild_id: int, user_id: int) -> int:
    count = await scalar(
        conn,
        "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ?"
        f" AND state IN ({placeholders(len(UNFINISHED_STATES))})",
        (guild_id, user_id, *sorted(UNFINISHED_STATES)),
    )
    return int(count) if count is not None else 0


async def check_room(
    conn: aiosqlite.Connection,
    guild_id: int,
    user_id: int,
    cost_seconds: int,
    limits: QuotaLimits,
    day: str,
    request: GenerationRequest | None = None,
) -> None:
    """Raise :class:`TooManyJobs` or :class:`QuotaExceeded` unless a job of this cost fits.

    Call it inside the transaction that reserves: the check and the reservation are one.
    """
    if limits.exempt:
        return
    if await unfinished_jobs(conn, guild_id, user_id) >= limits.max_concurrent:
        raise TooManyJobs(limits.max_concurrent)
    remaining = limits.daily_seconds - await used_seconds(conn, guild_id, user_id, day)
    if cost_seconds > remaining:
        raise QuotaExceeded(cost_seconds, max(remaining, 0), request)


class LedgerQueries(Queries):
    async def usage(self, guild_id: int, user_id: int, day: str) -> int:
        """Seconds the member has used on ``day`` (UTC), grants and resets subtracted."""
        async with self._db.reading() as conn:
            return await used_seconds(conn, guild_id, user_id, day)

    async def unfinished_count(self, guild_id: int, user_id: int) -> int:
        async with self._db.reading() as conn:
            return await unfinished_jobs(conn, guild_id, user_id)

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
        async with self._db.transaction() as conn:
            await add_entry(
                conn, guild_id, user_id, None, "grant", -seconds, utc_day(now), now, actor_id, note
            )
            await write_audit(conn, audit, now)

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
        async with self._db.transaction() as conn:
            used = await used_seconds(conn, guild_id, user_id, day)
            if used != 0:
                await add_entry(conn, guild_id, user_id, None, "reset", -used, day, now, actor_id)
            if audit is not None:
                audit = replace(audit, before={"used_seconds": used}, after={"used_seconds": 0})
            await write_audit(conn, audit, now)
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
        rows = await self._db.fetchall(sql + " ORDER BY id", params)
        return [LedgerEntry(*row) for row in rows]

    async def usage_report(self, guild_id: int, since_day: str) -> list[UsageRow]:
        """Seconds generated (delivered jobs), jobs made and jobs failed, per member, with the
        name the member had on their latest job."""
        rows = await self._db.fetchall(
            "SELECT user_id,"
            " COALESCE(SUM(CASE WHEN state = 'delivered' THEN cost_seconds END), 0),"
            " COUNT(*), SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END),"
            " (SELECT named.user_name FROM jobs AS named WHERE named.guild_id = jobs.guild_id"
            "  AND named.user_id = jobs.user_id AND named.user_name IS NOT NULL"
            "  ORDER BY named.created_at DESC LIMIT 1)"
            " FROM jobs WHERE guild_id = ? AND quota_day >= ?"
            " GROUP BY user_id ORDER BY 2 DESC, 3 DESC",
            (guild_id, since_day),
        )
        return [UsageRow(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]
