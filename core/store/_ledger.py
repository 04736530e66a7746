"""The quota ledger: reservations, commits, refunds, grants and resets, and usage from them.

The ledger is append-only: a member's usage of a day is the sum of its rows (reserve +cost,
refund -cost, grant -extra, reset -used, commit 0 as a marker), never an edited counter. What a
day *cost* (a server's, or the bot's over every server) is the sum of its reserve and refund
rows only: grants and resets give a member more room, they do not undo spending. The check a
reservation needs (:func:`check_room`) runs inside the job's own insert transaction, so neither
a member's quota nor the caps can be over-spent by concurrent requests.

Whoever counts ledger seconds (metrics) registers with ``Store.observe_ledger``; observers hear
of a row once its transaction has committed (:func:`ledger_written`), with the row's seconds
(a commit: the job's cost, which its row does not repeat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiosqlite

from core.jobs import UNFINISHED_STATES
from core.request import GenerationRequest
from core.store._audit import write_audit
from core.store._db import Database, Queries, placeholders, scalar
from core.store.types import (
    AuditRecord,
    Cap,
    CapExceeded,
    DaySpend,
    LedgerEntry,
    QuotaExceeded,
    QuotaLimits,
    TooManyJobs,
    UsageRow,
    utc_day,
)

# The rows that spend (reserve +cost) or give back (refund -cost) a day's seconds.
SPENDING_KINDS = ("reserve", "refund")
_SPENDING = f"kind IN ({', '.join(repr(kind) for kind in SPENDING_KINDS)})"

LedgerObserver = Callable[[str, int], None]  # (kind, signed seconds), after the commit


def ledger_written(db: Database, kind: str, seconds: int) -> None:
    """Tell the observers of ``db`` about a committed ledger row."""
    for observer in db.ledger_observers:
        observer(kind, seconds)


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


async def spent_seconds(conn: aiosqlite.Connection, day: str, guild_id: int | None = None) -> int:
    """What ``day`` cost: one server's (``guild_id``) or every server's together."""
    if guild_id is None:
        sql = f"SELECT COALESCE(SUM(seconds), 0) FROM quota_ledger WHERE day = ? AND {_SPENDING}"
        return int(await scalar(conn, sql, (day,)))
    sql = (
        "SELECT COALESCE(SUM(seconds), 0) FROM quota_ledger"
        f" WHERE guild_id = ? AND day = ? AND {_SPENDING}"
    )
    return int(await scalar(conn, sql, (guild_id, day)))


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
    """Raise :class:`TooManyJobs`, :class:`QuotaExceeded` or :class:`CapExceeded` unless a job
    of this cost fits the member's limits (unless exempt), the server's cap and the bot's budget.

    Call it inside the transaction that reserves: the check and the reservation are one. When
    several limits have no room, the tightest is told (on a tie the broader one: shortening the
    video or asking a moderator does not help against the bot's budget).
    """
    # (room left, rank: broader first, which limit)
    rooms: list[tuple[int, int, Cap | None]] = []
    if not limits.exempt:
        if await unfinished_jobs(conn, guild_id, user_id) >= limits.max_concurrent:
            raise TooManyJobs(limits.max_concurrent)
        used = await used_seconds(conn, guild_id, user_id, day)
        rooms.append((limits.daily_seconds - used, 2, None))
    if limits.server_daily_seconds is not None:
        spent = await spent_seconds(conn, day, guild_id)
        rooms.append((limits.server_daily_seconds - spent, 1, "server"))
    if limits.budget_daily_seconds is not None:
        spent = await spent_seconds(conn, day)
        rooms.append((limits.budget_daily_seconds - spent, 0, "budget"))
    short = sorted(room for room in rooms if cost_seconds > room[0])
    if not short:
        return
    remaining, _rank, cap = short[0]
    if cap is None:
        raise QuotaExceeded(cost_seconds, max(remaining, 0), request)
    raise CapExceeded(cap, cost_seconds, max(remaining, 0), day)


class LedgerQueries(Queries):
    async def day_spend(self, day: str, guild_id: int | None = None) -> int:
        """What ``day`` cost so far: one server's, or (``None``) every server's together."""
        async with self._db.reading() as conn:
            return await spent_seconds(conn, day, guild_id)

    async def spend_by_guild(self, since_day: str) -> list[DaySpend]:
        """What each day from ``since_day`` cost, per server (days with no spending omitted)."""
        rows = await self._db.fetchall(
            "SELECT guild_id, day, SUM(seconds) FROM quota_ledger"
            f" WHERE day >= ? AND {_SPENDING} GROUP BY guild_id, day ORDER BY day, guild_id",
            (since_day,),
        )
        return [DaySpend(str(r[1]), int(r[2]), int(r[0])) for r in rows if int(r[2]) != 0]

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
        ledger_written(self._db, "grant", -seconds)

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
        if used != 0:
            ledger_written(self._db, "reset", -used)
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
