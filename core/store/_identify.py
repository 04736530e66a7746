"""The gateway's IDENTIFY slots in PostgreSQL: one row per ``max_concurrency`` bucket with the time
of its latest (or next promised) IDENTIFY, so processes starting together take turns.

``identify_slots (bucket INTEGER PRIMARY KEY, identified_at FLOAT NOT NULL)`` comes with the
store's migrations. One transaction per turn, serialized per bucket by
``pg_advisory_xact_lock(IDENTIFY_LOCK, bucket)`` (the lock is the transaction's, so a process
that dies mid-turn frees it at once): read the bucket's last IDENTIFY, promise the next one no
sooner than ``gap`` after it, stamp that, commit. Nobody holds a lock while waiting for their
turn: the promised time is in the row, and the next process queues behind it.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.store._tables import identify_slots

# pg_advisory_xact_lock(int, int): this class of lock, then the bucket. The two-key space
# never meets the one-key (bigint) locks other parts of the store take.
IDENTIFY_LOCK = 0x57414E49  # "WANI"


class IdentifyQueries:
    """Reserving IDENTIFY slots (PostgreSQL only; SQLite is one process, needing none)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def reserve(
        self, bucket: int, gap: float, *, now: float | None = None
    ) -> tuple[float, float]:
        """Promise ``bucket``'s next IDENTIFY: now, or ``gap`` after the last one if that is
        later. Returns ``(slot, now)`` in epoch seconds, the slot already stamped; ``now`` is
        the database's clock unless given (one clock for every host)."""
        async with self._engine.begin() as conn:
            await conn.execute(select(func.pg_advisory_xact_lock(IDENTIFY_LOCK, bucket)))
            if now is None:  # read after the lock: the time this turn is decided
                clock = select(func.extract("epoch", func.clock_timestamp()))
                now = float((await conn.execute(clock)).scalar_one())
            last = await conn.scalar(
                select(identify_slots.c.identified_at).where(identify_slots.c.bucket == bucket)
            )
            slot = now if last is None else max(now, float(last) + gap)
            stamp = insert(identify_slots).values(bucket=bucket, identified_at=slot)
            await conn.execute(
                stamp.on_conflict_do_update(
                    index_elements=[identify_slots.c.bucket],
                    set_={"identified_at": stamp.excluded.identified_at},
                )
            )
        return slot, now
