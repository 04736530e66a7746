"""All SQL lives in this package: jobs, leases, the quota ledger, moderators' settings, the audit
log, characters and thread hints, each in its own module on one shared :class:`Database`, on
SQLite (a file, one process) or PostgreSQL (several processes), with one copy of each query
(SQLAlchemy Core).

| module | what |
|---|---|
| ``_db`` | the engines, transactions, reservations, read turns |
| ``_sqlite`` / ``_sql`` | SQLite's connection set-up; the two expressions spelled per engine |
| ``_migrate`` | Alembic at open, and the way in for SQLite files from before it |
| ``_tables`` | every table and index (what the migrations build) |
| ``_job_rows`` | the jobs table's one column mapping (SELECT list, INSERT, row → Job) |
| ``_jobs`` | accepting jobs, legal (fenced) transitions, Discord ids, counters, job queries |
| ``_leases`` | claiming jobs, renewing and releasing leases, webhooks waiting for an owner |
| ``_copy`` | copying a SQLite file into an empty PostgreSQL database (``--migrate-from-sqlite``) |
| ``_ledger`` | the quota ledger: the reservation check, grants, resets, usage, reports |
| ``_moderation`` | server defaults, member overrides, bans, channel rules |
| ``_audit`` | audit rows, written in the transaction of the change they describe |
| ``_characters`` / ``_hints`` | saved characters and their library; one-time thread hints |
| ``types`` | the values the store takes and returns, and its errors |

Callers get plain dataclasses and call ``store.method(...)``; nothing outside this package
writes SQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from core.store._audit import AuditQueries
from core.store._budget import ping, try_take_budget
from core.store._characters import CharacterQueries
from core.store._copy import CopyRefused, copy_sqlite_to_postgres
from core.store._db import Database, database_url, redact
from core.store._hints import HintQueries
from core.store._identify import IdentifyQueries
from core.store._jobs import JobQueries
from core.store._leases import LOCAL_OWNER, LeaseQueries, owner_id
from core.store._ledger import LedgerObserver, LedgerQueries
from core.store._moderation import ModerationQueries
from core.store._sessions import open_dedicated, throw_away
from core.store._signals import LocalSignals, PostgresSignals, SignalEvent, Signals
from core.store.types import (
    AuditEntry,
    AuditRecord,
    Ban,
    CapExceeded,
    Character,
    DaySpend,
    Files,
    GuildSettings,
    Lease,
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
    "LOCAL_OWNER",
    "AuditEntry",
    "AuditQueries",
    "AuditRecord",
    "Ban",
    "CapExceeded",
    "Character",
    "CharacterQueries",
    "CopyRefused",
    "Database",
    "DaySpend",
    "Files",
    "GuildSettings",
    "HintQueries",
    "IdentifyQueries",
    "JobQueries",
    "Lease",
    "LeaseQueries",
    "LedgerEntry",
    "LedgerQueries",
    "LocalSignals",
    "ModerationQueries",
    "NameTaken",
    "NewCharacter",
    "NewJob",
    "PostgresSignals",
    "QuotaExceeded",
    "QuotaLimits",
    "SignalEvent",
    "Signals",
    "Store",
    "TooManyJobs",
    "UsageRow",
    "UserOverride",
    "copy_sqlite_to_postgres",
    "database_url",
    "day_end",
    "next_utc_midnight",
    "open_dedicated",
    "owner_id",
    "ping",
    "quota_advice",
    "redact",
    "throw_away",
    "try_take_budget",
    "utc_day",
]


class Store(
    JobQueries,
    LeaseQueries,
    LedgerQueries,
    ModerationQueries,
    AuditQueries,
    CharacterQueries,
    HintQueries,
):
    """The store: every concern's queries on one database.

    Open with ``async with Store.open(target) as store`` (a ``Path``: that SQLite file; a
    ``postgresql://`` URL: that database). Each concern class works on its own
    (``JobQueries(db)``); the store is all of them sharing one :class:`Database`, so callers keep
    one object and one flat set of method names (the concerns' names never overlap: tested).
    """

    @classmethod
    @asynccontextmanager
    async def open(cls, target: Path | str) -> AsyncIterator[Store]:
        async with Database.open(target) as db:
            yield cls(db)

    @property
    def database(self) -> Database:
        """The database under the store (its engine, for what lives beside the store)."""
        return self._db

    @property
    def is_postgres(self) -> bool:
        return self._db.is_postgres

    def observe_ledger(self, observer: LedgerObserver) -> None:
        """Call ``observer(kind, seconds)`` for every ledger row once it is committed (metrics)."""
        self._db.ledger_observers.append(observer)
