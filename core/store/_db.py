"""The database under the store: SQLAlchemy async engines, transactions, read turns.

**SQLite** (a file, one process): two connections in WAL mode, one writes, one reads. Every
write runs in a ``BEGIN IMMEDIATE`` transaction under an asyncio lock, so a check and the write
that depends on it (quota reservation, state transition + refund) are atomic even with thousands
of coroutines calling at once; reads go to the other connection and never queue behind writes
(WAL lets a reader see the last committed state while a write is under way). Reads take turns on
their connection and run outside any transaction: a statement left open there would hold its
snapshot, and reads overlapping without end would then never see a newer commit.

**PostgreSQL** (several processes): a pool. Writes are ordinary transactions (READ COMMITTED:
a transition's ``UPDATE … WHERE state IN (…)`` waits for a concurrent one and re-checks, so only
one wins); reads run in autocommit (no BEGIN/ROLLBACK round trips). What must be serialized
across processes, the quota and caps check before a reservation, is: :meth:`reservation` holds
``pg_advisory_xact_lock`` until its transaction ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Row, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.store._migrate import migrate
from core.store._sqlite import BEGIN_OPTION, outside_transaction, sqlite_engine

log = logging.getLogger(__name__)

AnyRow = Row[*tuple[Any, ...]]  # a row of any width

# The advisory lock keys (any 64-bit numbers, fixed for the life of the schema).
RESERVATION_LOCK = 0x77616E_0001  # a reservation's check + insert, across every process
CHARACTER_LOCK = 0x77616E_0002  # a character's limit check + insert
POOL_SIZE = 10


def database_url(target: str) -> URL:
    """``target`` as an async SQLAlchemy URL: ``postgresql://`` uses asyncpg, SQLite aiosqlite.

    Raises ValueError for anything else, naming what is allowed.
    """
    try:
        url = make_url(target)
    except Exception:  # an ArgumentError, whatever the text
        raise ValueError(f"not a database URL: {redact(target)}") from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "asyncpg"):
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(
        f"unsupported database URL scheme {url.drivername!r}: use postgresql:// (or"
        " postgresql+asyncpg://), or leave DATABASE_URL unset for SQLite at DATABASE_PATH"
    )


def redact(target: str) -> str:
    """A URL fit for a log line: its password hidden."""
    try:
        return make_url(target).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing in it to hide
        return target


class Database:
    """The engine of one database, its transactions and its reads.

    Open with ``async with Database.open(target) as db`` (a ``Path``: a SQLite file; a URL
    string: that database); it is migrated to the newest revision before it is yielded.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        writer: AsyncConnection | None = None,
        reader: AsyncConnection | None = None,
    ) -> None:
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._writer = writer  # SQLite only, as the reader
        self._reader = reader
        self._write_lock = asyncio.Lock()  # SQLite: one write transaction at a time
        self._read_lock = asyncio.Lock()  # SQLite: one read statement at a time (see above)
        self._reserve_lock = asyncio.Lock()  # PostgreSQL: one reservation of ours in the queue
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # Told of each committed ledger row (core.store._ledger.ledger_written): metrics.
        self.ledger_observers: list[Callable[[str, int], None]] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, target: Path | str) -> AsyncIterator[Database]:
        if isinstance(target, str) and "://" in target:
            url = database_url(target)
            if url.get_backend_name() == "postgresql":
                async with _postgres(url) as db:
                    yield db
                return
            target = Path(url.database or "")
        if str(target) in ("", ":memory:"):
            raise ValueError("the store needs a file: its reader and writer share it")
        async with _sqlite(Path(target)) as db:
            yield db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a transaction: committed on exit, rolled back on any error.

        SQLite: the writer, under ``BEGIN IMMEDIATE``, one transaction at a time.
        """
        if self._writer is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            writer = self._writer
            await writer.begin()
            try:
                yield writer
            except BaseException:
                await writer.rollback()
                raise
            await writer.commit()

    @asynccontextmanager
    async def reservation(self, key: int = RESERVATION_LOCK) -> AsyncIterator[AsyncConnection]:
        """A transaction that no other reservation under ``key`` overlaps, in any process.

        SQLite: every write transaction already is. PostgreSQL: an advisory lock held until
        the transaction ends; callers of this process queue here first, so they wait in
        asyncio (one pooled connection waiting in the server, not the whole pool).
        """
        if not self.is_postgres:
            async with self.transaction() as conn:
                yield conn
            return
        async with self._reserve_lock, self.transaction() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(key)))
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only, for this caller's turn: every commit before is seen."""
        if self._reader is None:
            async with self._autocommit.connect() as conn:
                yield conn
            return
        async with self._read_lock:
            yield self._reader

    async def fetchall(self, statement: Executable, params: Any = None) -> Sequence[AnyRow]:
        async with self.reading() as conn:
            return (await conn.execute(statement, params)).all()

    async def fetchone(self, statement: Executable, params: Any = None) -> AnyRow | None:
        async with self.reading() as conn:
            return (await conn.execute(statement, params)).first()

    async def scalar(self, statement: Executable, params: Any = None) -> Any:
        async with self.reading() as conn:
            return (await conn.execute(statement, params)).scalar()

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT with this engine's ``on_conflict_do_update`` / ``on_conflict_do_nothing``
        (the same methods on both engines: one copy of each upsert)."""
        return (postgresql.insert if self.is_postgres else sqlite.insert)(table)

    def upsert(self, table: Table, values: dict[str, Any], keys: Sequence[str]) -> Executable:
        """``INSERT values … ON CONFLICT (keys) DO UPDATE`` every other column given."""
        statement = self.insert(table).values(values)
        return statement.on_conflict_do_update(
            index_elements=[table.c[key] for key in keys],
            set_={name: statement.excluded[name] for name in values if name not in keys},
        )


class Queries:
    """A concern's queries, run on a shared :class:`Database` (the store composes them)."""

    def __init__(self, db: Database) -> None:
        self._db = db


# ----------------------------------------------------------------- the two engines


WAL_ATTEMPTS = 50  # x 0.1 s: another process switching a new file to WAL at the same moment


async def _wal(writer: AsyncConnection) -> None:
    """Put the file in WAL mode. Switching needs the file to itself, and SQLite answers "locked"
    at once (no busy wait) while another process opening the same new file does the same."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            await outside_transaction(writer, "PRAGMA journal_mode = WAL")
            return
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.1)  # the other opener holds it for a moment only


@asynccontextmanager
async def _sqlite(path: Path) -> AsyncIterator[Database]:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sqlite_engine(path)
    try:
        async with engine.connect() as writer:
            await _wal(writer)
            await migrate(writer)
            async with engine.connect() as reader:
                await reader.execution_options(**{BEGIN_OPTION: ""})
                yield Database(engine, writer=writer, reader=reader)
    finally:
        await engine.dispose()


@asynccontextmanager
async def _postgres(url: URL) -> AsyncIterator[Database]:
    engine = create_async_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=POOL_SIZE,
        connect_args={"server_settings": {"application_name": "wanbot"}},
    )
    try:
        async with engine.connect() as conn:
            await migrate(conn)
        yield Database(engine)
    finally:
        await engine.dispose()
