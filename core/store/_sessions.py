"""Dedicated PostgreSQL sessions: one connection taken out of the engine's pool for as long as
its holder lives (the LISTEN of :mod:`core.store._signals`, the advisory lock of
:mod:`core.store._budget`), in autocommit (no transaction left open while it idles), and told the
moment asyncpg sees it close. Such a connection is never given back to the pool: it is thrown
away (invalidated), so no other caller ever gets a session that still listens or holds a lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


async def open_dedicated(
    engine: AsyncEngine, on_lost: Callable[[], None]
) -> tuple[AsyncConnection, Any]:
    """A dedicated session and its asyncpg driver connection; ``on_lost()`` is called (from the
    event loop, once) when asyncpg finds the connection closed: the server ended the session,
    or the socket broke."""
    conn = await engine.connect()
    try:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg.Connection
        driver.add_termination_listener(lambda _driver: on_lost())
    except BaseException:
        await throw_away(conn)
        raise
    return conn, driver


async def throw_away(conn: AsyncConnection) -> None:
    """End a dedicated session for good (its LISTENs and session locks end with it)."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()
