"""Which video threads were given the "how to ask for a new video" hint."""

from __future__ import annotations

from core.store._db import Queries
from core.store._tables import thread_hints


class HintQueries(Queries):
    async def mark_thread_hinted(self, thread_id: int, now: float) -> bool:
        """Record that ``thread_id`` got its hint; False when it already had one."""
        async with self._db.transaction() as conn:
            result = await conn.execute(
                self._db.insert(thread_hints)
                .values(thread_id=thread_id, created_at=now)
                .on_conflict_do_nothing(index_elements=[thread_hints.c.thread_id])
            )
            return result.rowcount == 1
