"""All SQL lives in this package: jobs, the quota ledger, moderators' settings, the audit log,
characters and thread hints, each in its own module on one shared :class:`Database`.

| module | what |
|---|---|
| ``_db`` | the writer and reader connections, transactions, read turns, migrations |
| ``_job_rows`` | the jobs table's one column mapping (SELECT list, INSERT, row → Job) |
| ``_jobs`` | accepting jobs, legal transitions, Discord ids, counters, job queries |
| ``_ledger`` | the quota ledger: the reservation check, grants, resets, usage, reports |
| ``_moderation`` | server defaults, member overrides, bans, channel rules |
| ``_audit`` | audit rows, written in the transaction of the change they describe |
| ``_characters`` / ``_hints`` | saved characters and their library; one-time thread hints |
| ``types`` | the values the store takes and returns, and its errors |

Callers get plain dataclasses and call ``store.method(...)``; nothing outside this package
writes SQL, so another backend (PostgreSQL) can implement the same methods without touching them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from core.store._audit import AuditQueries
from core.store._characters import CharacterQueries
from core.store._db import Database
from core.store._hints import HintQueries
from core.store._jobs import JobQueries
from core.store._ledger import LedgerObserver, LedgerQueries
from core.store._moderation import ModerationQueries
from core.store.types import (
    AuditEntry,
    AuditRecord,
    Ban,
    CapExceeded,
    Character,
    DaySpend,
    Files,
    GuildSettings,
    LedgerEntry,
    NameTaken,
    NewCharacter,
    NewJob,
    QuotaExceeded,
    QuotaLimits,
    TooManyJobs,
    UsageRow,
    UserOverride,
    day_end,
    next_utc_midnight,
    quota_advice,
    utc_day,
)

__all__ = [
    "AuditEntry",
    "AuditQueries",
    "AuditRecord",
    "Ban",
    "CapExceeded",
    "Character",
    "CharacterQueries",
    "Database",
    "DaySpend",
    "Files",
    "GuildSettings",
    "HintQueries",
    "JobQueries",
    "LedgerEntry",
    "LedgerQueries",
    "ModerationQueries",
    "NameTaken",
    "NewCharacter",
    "NewJob",
    "QuotaExceeded",
    "QuotaLimits",
    "Store",
    "TooManyJobs",
    "UsageRow",
    "UserOverride",
    "day_end",
    "next_utc_midnight",
    "quota_advice",
    "utc_day",
]


class Store(
    JobQueries, LedgerQueries, ModerationQueries, AuditQueries, CharacterQueries, HintQueries
):
    """The SQLite store: every concern's queries on one database.

    Open with ``async with Store.open(path) as store``. Each concern class works on its own
    (``JobQueries(db)``); the store is all of them sharing one :class:`Database`, so callers keep
    one object and one flat set of method names (the concerns' names never overlap: tested).
    """

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | str) -> AsyncIterator[Store]:
        async with Database.open(path) as db:
            yield cls(db)

    def observe_ledger(self, observer: LedgerObserver) -> None:
        """Call ``observer(kind, seconds)`` for every ledger row once it is committed (metrics)."""
        self._db.ledger_observers.append(observer)
