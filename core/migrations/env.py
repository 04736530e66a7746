"""Alembic's environment: run by ``core.store._migrate`` at every open (with the store's own
connection), or by the ``alembic`` command for a developer writing a new revision::

    alembic -c core/migrations/alembic.ini -x url=sqlite:///data/bot.sqlite3 revision -m "..."

Revisions are numbered (0001, 0002, ...) and must work on SQLite and PostgreSQL alike: SQLite
changes go through ``op.batch_alter_table`` (render_as_batch), which copies a table only when
ALTER TABLE cannot do the change.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from core.store._db import database_url
from core.store._tables import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,  # SQLite has it too: a failed revision leaves nothing behind
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    engine = create_async_engine(database_url(url))
    try:
        async with engine.connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
    finally:
        await engine.dispose()


shared = context.config.attributes.get("connection")
if shared is not None:
    run(shared)
else:  # the alembic command: -x url=... names the database
    asyncio.run(run_from_url(context.get_x_argument(as_dictionary=True)["url"]))
