"""Which video threads were given the "how to ask for a new video" hint (a mixin of the store)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import aiosqlite


class HintQueries:
    if TYPE_CHECKING:

        def _tx(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

    async def mark_thread_hinted(self, thread_id: int, now: float) -> bool:
        """Record that ``thread_id`` got its hint; False when it already had one."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO thread_hints (thread_id, created_at) VALUES (?, ?)",
                (thread_id, now),
            )
            return cur.rowcount == 1
