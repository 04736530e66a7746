"""The SQLite database under the store: two connections, transactions, numbered migrations.

Two aiosqlite connections in WAL mode: one writes, one reads. Every write runs in a
``BEGIN IMMEDIATE`` transaction under an asyncio lock, so a check and the write that depends on
it (quota reservation, state transition + refund) are atomic even with thousands of coroutines
calling at once; reads go to the other connection and never queue behind writes (WAL lets a
reader see the last committed state while a write is under way). Reads take turns on their
connection: a statement left open there would hold its snapshot, and reads overlapping without
end would then never see a newer commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "core.migrations"


class Database:
    """The writer and reader connections of one SQLite file.

    Open with ``async with Database.open(path) as db``; it is migrated before it is yielded.
    """

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()  # one write transaction at a time
        self._read_lock = asyncio.Lock()  # one read statement at a time (see the docstring)
        # Told of each committed ledger row (core.store._ledger.ledger_written): metrics.
        self.ledger_observers: list[Callable[[str, int], None]] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | str) -> AsyncIterator[Database]:
        if str(path) == ":memory:":
            raise ValueError("the store needs a file: its reader and writer share it")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path)
        try:
            await writer.execute("PRAGMA journal_mode = WAL")
            await migrate(writer)
            reader = await _connect(path)
            try:
                yield cls(writer, reader)
            finally:
                await reader.close()
        finally:
            await writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer inside ``BEGIN IMMEDIATE``: committed on exit, rolled back on any error."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """The reader, for this caller's turn only: close every cursor before leaving."""
        async with self._read_lock:
            yield self._reader

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._read_lock, self._reader.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self._read_lock, self._reader.execute(sql, params) as cur:
            return await cur.fetchone()


class Queries:
    """A concern's queries, run on a shared :class:`Database` (the store composes them)."""

    def __init__(self, db: Database) -> None:
        self._db = db


async def scalar(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row, or None: for reads inside a transaction."""
    async with conn.execute(sql, params) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


# ----------------------------------------------------------------- connections and migrations


async def _connect(path: Path | str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(str(path), isolation_level=None)  # we BEGIN ourselves
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA busy_timeout = 5000")
    await conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, fast commits
    return conn


def migrations() -> list[tuple[int, str]]:
    """(version, sql) for every ``core/migrations/NNN_name.sql``, in order."""
    found: list[tuple[int, str]] = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), entry.read_text(encoding="utf-8")))
    found.sort()
    return found


async def migrate(conn: aiosqlite.Connection) -> None:
    """Apply every migration above ``PRAGMA user_version``, each in its own transaction."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    vacuum = False
    for version, sql in migrations():
        if version <= current:
            continue
        log.info("applying database migration %03d", version)
        statements = split_sql(sql)
        # A migration that scrubs secrets ends in VACUUM, which cannot run in a transaction.
        if statements and statements[-1].upper() == "VACUUM":
            statements.pop()
            vacuum = True
        # executescript would COMMIT first; run statements one by one inside one transaction.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {version:d}")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
    if vacuum:
        # Rewritten rows leave their old bytes in free space and in the WAL: rebuild the
        # file, then empty the WAL, so that nothing scrubbed can be read back from disk.
        log.info("rewriting the database file to drop scrubbed data")
        await conn.execute("VACUUM")
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations keep ';' out of literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
