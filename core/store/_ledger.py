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
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    case,
    desc,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from core.jobs import UNFINISHED_STATES
from core.request import GenerationRequest
from core.store._audit import write_audit
from core.store._db import Database, Queries
from core.store._tables import jobs, quota_ledger
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
_UNFINISHED = sorted(state.value for state in UNFINISHED_STATES)
_ENTRY = (
    quota_ledger.c.id,
    quota_ledger.c.guild_id,
    quota_ledger.c.user_id,
    quota_ledger.c.job_id,
    quota_ledger.c.kind,
    quota_ledger.c.seconds,
    quota_ledger.c.day,
    quota_ledger.c.actor_id,
    quota_ledger.c.note,
    quota_ledger.c.created_at,
)

LedgerObserver = Callable[[str, int], None]  # (kind, signed seconds), after the commit


def ledger_written(db: Database, kind: str, seconds: int) -> None:
    """Tell the observers of ``db`` about a committed ledger row."""
    for observer in db.ledger_observers:
        observer(kind, seconds)


async def add_entry(
    conn: AsyncConnection,
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
        _ADD_ENTRY,
        {
            "guild_id": guild_id,
            "user_id": user_id,
            "job_id": job_id,
            "kind": kind,
            "seconds": seconds,
            "day": day,
            "actor_id": actor_id,
            "note": note,
            "created_at": now,
        },
    )


def _sum(*where: ColumnElement[bool]) -> ScalarSelect[Any]:
    return (
        select(func.coalesce(func.sum(quota_ledger.c.seconds), 0)).where(*where).scalar_subquery()
    )


# The figures a reservation checks, built once: values are bound by name (guild_id, user_id,
# day) when they run.
_ledger = quota_ledger.c
USED = _sum(  # a member's usage of the day: every row (grants and resets give room back)
    _ledger.guild_id == bindparam("guild_id"),
    _ledger.user_id == bindparam("user_id"),
    _ledger.day == bindparam("day"),
)
SPENT = _sum(_ledger.day == bindparam("day"), _ledger.kind.in_(SPENDING_KINDS))  # every server
SPENT_HERE = _sum(  # one server's
    _ledger.guild_id == bindparam("guild_id"),
    _ledger.day == bindparam("day"),
    _ledger.kind.in_(SPENDING_KINDS),
)
UNFINISHED = (
    select(func.count())
    .select_from(jobs)
    .where(jobs.c.guild_id == bindparam("guild_id"), jobs.c.user_id == bindparam("user_id"))
    .where(jobs.c.state.in_(_UNFINISHED))
    .scalar_subquery()
)
_ADD_ENTRY = insert(quota_ledger)
_USAGE = select(USED)
_UNFINISHED_COUNT = select(UNFINISHED)


@cache
def _figures(member: bool, server: bool, budget: bool) -> Select[Any]:
    """One SELECT of every figure a reservation with these limits checks, in this order:
    unfinished jobs and usage (the member's, unless exempt), the server's spend, the bot's."""
    figures = [UNFINISHED, USED] if member else []
    figures += [SPENT_HERE] if server else []
    figures += [SPENT] if budget else []
    return select(*figures)


async def check_room(
    conn: AsyncConnection,
    guild_id: int,
    user_id: int,
    cost_seconds: int,
    limits: QuotaLimits,
    day: str,
    request: GenerationRequest | None = None,
) -> None:
    """Raise :class:`TooManyJobs`, :class:`QuotaExceeded` or :class:`CapExceeded` unless a job
    of this cost fits the member's limits (unless exempt), the server's cap and the bot's budget.

    Call it inside the reservation that inserts (``Database.reservation``): the check and the
    reservation are one. Every figure comes from one statement. When several limits have no
    room, the tightest is told (on a tie the broader one: shortening the video or asking a
    moderator does not help against the bot's budget).
    """
    server = limits.server_daily_seconds is not None
    budget = limits.budget_daily_seconds is not None
    if limits.exempt and not server and not budget:
        return
    query = _figures(not limits.exempt, server, budget)
    params = {"guild_id": guild_id, "user_id": user_id, "day": day}
    values = iter((await conn.execute(query, params)).one())
    # (room left, rank: broader first, which limit)
    rooms: list[tuple[int, int, Cap | None]] = []
    if not limits.exempt:
        if int(next(values)) >= limits.max_concurrent:
            raise TooManyJobs(limits.max_concurrent)
        rooms.append((limits.daily_seconds - int(next(values)), 2, None))
    if limits.server_daily_seconds is not None:
        rooms.append((limits.server_daily_seconds - int(next(values)), 1, "server"))
    if limits.budget_daily_seconds is not None:
        rooms.append((limits.budget_daily_seconds - int(next(values)), 0, "budget"))
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
        if guild_id is None:
            return int(await self._db.scalar(select(SPENT), {"day": day}))
        return int(await self._db.scalar(select(SPENT_HERE), {"guild_id": guild_id, "day": day}))

    async def spend_by_guild(self, since_day: str) -> list[DaySpend]:
        """What each day from ``since_day`` cost, per server (days with no spending omitted)."""
        ledger = quota_ledger.c
        rows = await self._db.fetchall(
            select(ledger.guild_id, ledger.day, func.sum(ledger.seconds))
            .where(ledger.day >= since_day, ledger.kind.in_(SPENDING_KINDS))
            .group_by(ledger.guild_id, ledger.day)
            .order_by(ledger.day, ledger.guild_id)
        )
        return [DaySpend(str(r[1]), int(r[2]), int(r[0])) for r in rows if int(r[2]) != 0]

    async def usage(self, guild_id: int, user_id: int, day: str) -> int:
        """Seconds the member has used on ``day`` (UTC), grants and resets subtracted."""
        return int(
            await self._db.scalar(_USAGE, {"guild_id": guild_id, "user_id": user_id, "day": day})
        )

    async def unfinished_count(self, guild_id: int, user_id: int) -> int:
        return int(
            await self._db.scalar(_UNFINISHED_COUNT, {"guild_id": guild_id, "user_id": user_id})
        )

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

        The audit row's before/after are the figures read inside the same transaction (a
        reservation's, so no concurrent one is counted twice or missed).
        """
        day = utc_day(now)
        async with self._db.reservation() as conn:
            params = {"guild_id": guild_id, "user_id": user_id, "day": day}
            used = int((await conn.execute(_USAGE, params)).scalar() or 0)
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
        ledger = quota_ledger.c
        query = select(*_ENTRY).where(ledger.guild_id == guild_id, ledger.day >= since_day)
        if user_id is not None:
            query = query.where(ledger.user_id == user_id)
        rows = await self._db.fetchall(query.order_by(ledger.id))
        return [LedgerEntry(*row) for row in rows]

    async def usage_report(self, guild_id: int, since_day: str) -> list[UsageRow]:
        """Seconds generated (delivered jobs), jobs made and jobs failed, per member, with the
        name the member had on their latest job."""
        named = jobs.alias("named")
        latest_name = (
            select(named.c.user_name)
            .where(
                named.c.guild_id == guild_id,
                named.c.user_id == jobs.c.user_id,
                named.c.user_name.is_not(None),
            )
            .order_by(named.c.created_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        delivered = case((jobs.c.state == "delivered", jobs.c.cost_seconds))
        rows = await self._db.fetchall(
            select(
                jobs.c.user_id,
                func.coalesce(func.sum(delivered), 0).label("seconds"),
                func.count().label("made"),
                func.sum(case((jobs.c.state == "failed", 1), else_=0)),
                latest_name,
            )
            .where(and_(jobs.c.guild_id == guild_id, jobs.c.quota_day >= since_day))
            .group_by(jobs.c.user_id)
            .order_by(desc("seconds"), desc("made"))
        )
        return [UsageRow(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]
