"""SQLite's connection set-up for SQLAlchemy: one thread hop per statement, the pragmas, and who
emits BEGIN.

aiosqlite runs each call on the connection's own thread; through SQLAlchemy a statement would be
four calls (make a cursor, execute, fetch, close), each a round trip between threads. The
connections of :func:`sqlite_engine` do all four in one: the cursor is made, run, read and
closed on the thread, and the rows come back with it.

The driver's own transaction handling is switched off (``isolation_level = None``) and the
``begin`` event chooses the statement that begins, from the connection's :data:`BEGIN_OPTION`
execution option: ``BEGIN IMMEDIATE`` unless told otherwise (the writer, migrations), nothing
for the reader (each statement then reads the newest commit) and for the statements that must
run outside a transaction (``journal_mode``, ``VACUUM``). The BEGIN is sent on the thread with
the transaction's first statement, in the same hop; a transaction that ran nothing ends
without a hop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

BEGIN_OPTION = "wanbot_begin"
WRITE_BEGIN = "BEGIN IMMEDIATE"  # take the write lock at once: no upgrade deadlock later


def sqlite_engine(path: Path) -> AsyncEngine:
    """An engine on the SQLite file at ``path`` (NullPool: whoever connects keeps the
    connection; the store keeps two for its whole life)."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", poolclass=NullPool, async_creator=lambda: _connect(path)
    )
    event.listen(engine.sync_engine, "connect", _connected)
    event.listen(engine.sync_engine, "begin", _begin)
    return engine


def _connect(path: Path) -> aiosqlite.Connection:
    connection = _Connection(lambda: sqlite3.connect(str(path)), 64)
    connection._thread.daemon = True  # as SQLAlchemy does for its own: never hold up exit
    return connection


class _Connection(aiosqlite.Connection):
    """An aiosqlite connection whose BEGIN travels with the transaction's first statement."""

    begin: str | None = None  # to run on the thread before the next statement

    def cursor(self) -> Any:  # the driver's cursor is made on the thread, per statement
        return _Cursor(self)

    async def commit(self) -> None:
        if self.begin is not None:  # nothing ran since BEGIN: nothing to end
            self.begin = None
            return
        await super().commit()

    async def rollback(self) -> None:
        if self.begin is not None:
            self.begin = None
            return
        await super().rollback()


class _Cursor:
    """What SQLAlchemy's adapter asks of an aiosqlite cursor, one thread hop per statement."""

    arraysize = 1

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        return await self._run(lambda cursor: cursor.execute(sql, parameters))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> _Cursor:
        return await self._run(lambda cursor: cursor.executemany(sql, rows))

    async def _run(self, statement: Callable[[sqlite3.Cursor], object]) -> _Cursor:
        begin, self._connection.begin = self._connection.begin, None

        def on_thread() -> tuple[Any, list[Any], int, int | None]:
            cursor = self._connection._conn.cursor()
            try:
                if begin is not None:
                    cursor.execute(begin)
                statement(cursor)
                rows = cursor.fetchall() if cursor.description else []
                return cursor.description, rows, cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        result = await self._connection._execute(on_thread)  # type: ignore[no-untyped-call]
        self.description, self._rows, self.rowcount, self.lastrowid = result
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def close(self) -> None:
        self._rows = []


def _connected(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver never BEGINs: _begin does
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, fast commits
    finally:
        cursor.close()


def _begin(conn: Any) -> None:
    statement = conn.get_execution_options().get(BEGIN_OPTION)
    if statement is None:
        statement = WRITE_BEGIN
    if statement:  # sent with the transaction's first statement, in the same thread hop
        conn.connection.driver_connection.begin = statement


async def outside_transaction(conn: AsyncConnection, *statements: str) -> None:
    """Run ``statements`` with no transaction around them (``conn`` must not be in one)."""
    assert conn.sync_connection is not None  # started: it came from ``engine.connect()``
    previous = conn.sync_connection.get_execution_options().get(BEGIN_OPTION)
    await conn.execution_options(**{BEGIN_OPTION: ""})
    try:
        for statement in statements:
            await conn.exec_driver_sql(statement)
        await conn.commit()  # ends SQLAlchemy's bookkeeping; nothing was begun
    finally:
        await conn.execution_options(**{BEGIN_OPTION: previous})
