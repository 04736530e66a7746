"""The API budget's lock: one PostgreSQL session-level advisory lock (see :mod:`core.budget`).

A session lock is held until it is unlocked or its session ends, however it ends (``kill -9`` of
the process closes its socket, and the server ends the session and frees the lock at once), so
"who holds the lock" is "who may call the API". It is taken with ``pg_try_advisory_lock``, never
waited for inside the server: the caller keeps its session free to ping.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# "wanbot" + 0x0001: a key of its own in the one advisory-lock key space of the database (the
# store's transaction locks and the gateway's IDENTIFY turns use other keys).
BUDGET_KEY = 0x77616E626F740001

_TRY = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")
_PING = text("SELECT 1")


async def try_take_budget(conn: AsyncConnection) -> bool:
    """Take the budget's lock on this session if nobody holds it (never waits)."""
    return bool((await conn.execute(_TRY, {"key": BUDGET_KEY})).scalar())


async def give_back_budget(conn: AsyncConnection) -> bool:
    """Unlock it (True when this session held it)."""
    return bool((await conn.execute(_UNLOCK, {"key": BUDGET_KEY})).scalar())


async def ping(conn: AsyncConnection) -> None:
    """A round trip on the session: raises when it is gone."""
    await conn.execute(_PING)
