"""Helpers for the tests of the coordination primitives (signals, the API budget) and of several
trackers on one PostgreSQL database: engines on fresh databases, and ending a session from the
server side, as a crash or a network cut would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.postgres import admin_url, fresh_database


def async_url(url: str) -> str:
    """``postgresql://…`` as SQLAlchemy's asyncpg driver wants it."""
    return "postgresql+asyncpg://" + url.removeprefix("postgresql://")


@asynccontextmanager
async def pg_engine() -> AsyncIterator[tuple[AsyncEngine, str]]:
    """An engine on a fresh, empty database, and that database's plain URL."""
    async with fresh_database() as url:
        engine = create_async_engine(async_url(url))
        try:
            yield engine, url
        finally:
            await engine.dispose()


async def terminate_sessions(database_url: str, where: str, **params: object) -> int:
    """``pg_terminate_backend`` every session of the database matching ``where`` (SQL over
    ``pg_stat_activity``, with ``:name`` parameters); how many were ended."""
    admin = create_async_engine(async_url(admin_url()))
    try:
        async with admin.begin() as conn:
            result = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE datname = :database AND pid <> pg_backend_pid() AND ({where})"
                ),
                {"database": urlsplit(database_url).path.lstrip("/"), **params},
            )
            return sum(1 for row in result if row[0])
    finally:
        await admin.dispose()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until ``predicate()`` holds (checked every 10 ms), or fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
