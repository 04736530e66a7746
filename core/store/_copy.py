"""Copying a SQLite database into an empty PostgreSQL one (``bot.py --migrate-from-sqlite``).

The SQLite file is upgraded to the newest revision first (as any open does), and so is the
PostgreSQL database (created if it has no tables). Then, in ONE PostgreSQL transaction, every
table is copied in the order its foreign keys need, in batches read by rowid (insertion order:
a reroll's parent job comes before it), the row counts are compared, and the id sequences are
moved past the copied ids. Anything wrong rolls the whole copy back: the target stays empty.

The target must be empty: a copy never merges into a database that has rows already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Double,
    Integer,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnClause

from core.store._db import Database, database_url, redact
from core.store._tables import metadata

log = logging.getLogger(__name__)

BATCH = 1000


class CopyRefused(Exception):
    """The copy cannot start; the message says why and what to do, in one line."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    rows: dict[str, int]  # table → rows copied
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def copy_sqlite_to_postgres(
    source: Path,
    target: str,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy the SQLite file ``source`` into the empty PostgreSQL database at ``target``.

    Raises :class:`CopyRefused` (nothing written) when the target is not PostgreSQL, the
    source is missing, or the target already has rows. ``progress(table, rows)`` is told of
    each table once it is copied.
    """
    try:
        url = database_url(target)
    except ValueError as exc:
        raise CopyRefused(str(exc)) from None
    if url.get_backend_name() != "postgresql":
        raise CopyRefused(
            "the target must be PostgreSQL: set DATABASE_URL to postgresql://user:password@host/"
            "database (an empty database)"
        )
    if not await asyncio.to_thread(source.is_file):
        raise CopyRefused(f"no SQLite database at {source}: give the path of the bot's file")
    started = time.perf_counter()
    async with (
        Database.open(source) as sqlite,
        Database.open(target) as postgres,
        postgres.transaction() as conn,
    ):
        found = await _rows_in(conn)
        if found:
            listed = ", ".join(f"{table} ({count})" for table, count in found.items())
            raise CopyRefused(
                f"the PostgreSQL database {redact(target)} is not empty: it has rows in"
                f" {listed}; copy only into an empty database"
            )
        copied: dict[str, int] = {}
        for table in metadata.sorted_tables:
            copied[table.name] = await _copy_table(sqlite, conn, table, batch)
            if progress is not None:
                progress(table.name, copied[table.name])
        await _check_counts(sqlite, conn, copied)
        await _move_sequences(conn)
    return CopyReport(copied, time.perf_counter() - started)


async def _rows_in(conn: AsyncConnection) -> dict[str, int]:
    """Each table of ours with rows in it, and how many."""
    found: dict[str, int] = {}
    for table in metadata.sorted_tables:
        count = int((await conn.execute(select(func.count()).select_from(table))).scalar() or 0)
        if count:
            found[table.name] = count
    return found


def _converters(table: Table) -> dict[str, Callable[[Any], Any]]:
    """asyncpg wants the exact Python type of each column: SQLite may hand back an int for a
    REAL (a whole number) and stores booleans as integers."""
    converters: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        if isinstance(column.type, Double):
            converters[column.name] = float
        elif isinstance(column.type, Integer):
            converters[column.name] = int
    return converters


async def _copy_table(sqlite: Database, conn: AsyncConnection, table: Table, batch: int) -> int:
    rowid: ColumnClause[int] = literal_column("rowid")
    names = [column.name for column in table.columns]
    converters = _converters(table)
    query = select(rowid, *table.columns).where(rowid > bindparam("after")).order_by(rowid)
    statement = insert(table)
    after, copied = 0, 0
    while True:
        rows = await sqlite.fetchall(query.limit(batch), {"after": after})
        if not rows:
            return copied
        values = []
        for row in rows:
            record = dict(zip(names, row[1:], strict=True))
            for name, convert in converters.items():
                if record[name] is not None:
                    record[name] = convert(record[name])
            values.append(record)
        await conn.execute(statement, values)
        copied += len(rows)
        after = int(rows[-1][0])


async def _check_counts(sqlite: Database, conn: AsyncConnection, copied: dict[str, int]) -> None:
    for table in metadata.sorted_tables:
        there = int((await conn.execute(select(func.count()).select_from(table))).scalar() or 0)
        here = int(await sqlite.scalar(select(func.count()).select_from(table)) or 0)
        if not here == there == copied[table.name]:
            raise RuntimeError(
                f"copy of {table.name} incomplete: {here} rows in SQLite, {there} in PostgreSQL"
            )


async def _move_sequences(conn: AsyncConnection) -> None:
    """Each id sequence past the largest copied id, so new rows never collide with old ones."""
    for table in metadata.sorted_tables:
        key = table.autoincrement_column
        if key is None:
            continue
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{key.name}'),"
                f" COALESCE(MAX({key.name}), 1), MAX({key.name}) IS NOT NULL) FROM {table.name}"
            )
        )
