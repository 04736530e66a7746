"""Which video threads were given the "how to ask for a new video" hint."""

from __future__ import annotations

from core.store._db import Queries


class HintQueries(Queries):
    async def mark_thread_hinted(self, thread_id: int, now: float) -> bool:
        """Record that ``thread_id`` got its hint; False when it already had one."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO thread_hints (thread_id, created_at) VALUES (?, ?)",
                (thread_id, now),
            )
            return cur.rowcount == 1
