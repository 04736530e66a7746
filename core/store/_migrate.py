"""Migrations at open: Alembic's numbered revisions (core/migrations/versions/), and the way in
for SQLite files made before Alembic.

A SQLite file from the older code has ``PRAGMA user_version`` 1-7 (the legacy SQL files in
core/migrations/legacy/ it had applied) and no ``alembic_version``: the legacy files it lacks are
applied as that code applied them, the file is stamped 0001 (exactly their schema) and then
upgraded like any other database. Every revision above the current one runs in one transaction
(both engines have transactional DDL); on PostgreSQL processes starting together take turns
under an advisory lock. No alembic.ini is needed: the configuration is built here.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Dialect, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, CreateTable

from core.store._sqlite import outside_transaction
from core.store._tables import metadata

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
LEGACY_PACKAGE = "core.migrations.legacy"
LEGACY_REVISION = "0001"  # the schema legacy 001-007 made
MIGRATION_LOCK = 0x77616E_0000  # PostgreSQL: one process migrates at a time


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer version of the bot than this one."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def legacy_migrations() -> list[tuple[int, str]]:
    """(version, sql) for every ``core/migrations/legacy/NNN_name.sql``, in order."""
    found: list[tuple[int, str]] = []
    for entry in resources.files(LEGACY_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), entry.read_text(encoding="utf-8")))
    found.sort()
    return found


async def migrate(conn: AsyncConnection) -> None:
    """Bring the database on ``conn`` (not in a transaction) to the newest revision."""
    postgres = conn.dialect.name == "postgresql"
    if not postgres:
        await _from_legacy(conn)
    async with conn.begin():
        if postgres:
            await conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        await conn.run_sync(_to_head)


def _to_head(sync: Connection) -> None:
    tables = set(inspect(sync).get_table_names())
    if not tables:
        # An empty database: today's tables at once, stamped head (Alembic's recipe for a
        # new database; tests check that this and every revision in turn build one schema).
        for statement in _schema(sync.dialect):
            sync.exec_driver_sql(statement)
        MigrationContext.configure(sync).stamp(_script(), "head")
        return
    current = (
        sync.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if "alembic_version" in tables
        else None
    )
    if current == head():
        return
    if current is not None and current not in _known_revisions():
        raise SchemaTooNew(
            f"the database is at revision {current}, which this version of the bot does"
            " not know: it was migrated by a newer version (run that, or restore a backup)"
        )
    log.info("migrating the database from revision %s to %s", current, head())
    command.upgrade(alembic_config(sync), "head")


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision."""
    revision = _script().get_current_head()
    assert revision is not None
    return revision


@cache
def _known_revisions() -> frozenset[str]:
    return frozenset(revision.revision for revision in _script().walk_revisions())


_SCHEMAS: dict[str, tuple[str, ...]] = {}


def _schema(dialect: Dialect) -> tuple[str, ...]:
    """CREATE TABLE and CREATE INDEX for every table, in this dialect (compiled once)."""
    if dialect.name not in _SCHEMAS:
        statements: list[str] = []
        for table in metadata.sorted_tables:
            statements.append(str(CreateTable(table).compile(dialect=dialect)))
            for index in sorted(table.indexes, key=lambda index: str(index.name)):
                statements.append(str(CreateIndex(index).compile(dialect=dialect)))
        _SCHEMAS[dialect.name] = tuple(statements)
    return _SCHEMAS[dialect.name]


def _stamp_legacy(sync: Connection) -> None:
    MigrationContext.configure(sync).stamp(_script(), LEGACY_REVISION)


# ----------------------------------------------------------------- SQLite before Alembic


async def _from_legacy(conn: AsyncConnection) -> None:
    """A file made before Alembic: finish its legacy migrations, then stamp it 0001."""
    tables = set(
        (
            await conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        ).scalars()
    )
    await conn.commit()
    if "alembic_version" in tables or "jobs" not in tables:
        return  # already under Alembic, or a new file
    version = int((await conn.exec_driver_sql("PRAGMA user_version")).scalar() or 0)
    await conn.commit()
    legacy = legacy_migrations()
    if not 1 <= version <= legacy[-1][0]:
        raise SchemaTooNew(
            f"the database has user_version {version} and no Alembic revision: it was not made"
            " by this bot, or by a newer version of it"
        )
    await apply_legacy(conn, version, legacy)
    async with conn.begin():
        log.info("the database's legacy migrations are done: stamping revision 0001")
        await conn.run_sync(_stamp_legacy)


async def apply_legacy(conn: AsyncConnection, current: int, legacy: list[tuple[int, str]]) -> None:
    """Apply every legacy migration above ``current``, each in its own transaction, as the old
    store did (the VACUUM a migration ends with runs after its commit)."""
    vacuum = False
    for version, sql in legacy:
        if version <= current:
            continue
        log.info("applying legacy database migration %03d", version)
        statements = split_sql(sql)
        # A migration that scrubs secrets ends in VACUUM, which cannot run in a transaction.
        if statements and statements[-1].upper() == "VACUUM":
            statements.pop()
            vacuum = True
        async with conn.begin():
            for statement in statements:
                await conn.exec_driver_sql(statement)
            await conn.exec_driver_sql(f"PRAGMA user_version = {version:d}")
    if vacuum:
        # Rewritten rows leave their old bytes in free space and in the WAL: rebuild the
        # file, then empty the WAL, so that nothing scrubbed can be read back from disk.
        log.info("rewriting the database file to drop scrubbed data")
        await outside_transaction(conn, "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)")


def split_sql(script: str) -> list[str]:
    """Split a legacy migration into statements (they keep ';' out of literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
