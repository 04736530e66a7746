"""Taking turns to IDENTIFY with Discord's gateway, across every process of one bot.

Discord lets a bot start ``max_concurrency`` sessions per 5 s: shard N is in bucket
``N % max_concurrency``, and each bucket takes one IDENTIFY per 5 s (a second one is refused
with INVALID_SESSION, and the shard retries later). One process spaces its own shards; processes
starting together (a deploy, a restart after a crash) must share the buckets, so each turn is
promised by PostgreSQL (``core.store._identify``): the next free slot of the bucket, 5 s after
the last one, and this process waits for it.

Times come from the database's clock unless a clock is injected (tests), so hosts whose clocks
disagree still agree on the turns. Nothing here knows of discord.py: the bot's
``before_identify_hook`` asks :meth:`IdentifyTurns.wait_turn` for the shard's bucket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.store import IdentifyQueries

log = logging.getLogger(__name__)

IDENTIFY_INTERVAL = 5.0  # Discord: one IDENTIFY per bucket per 5 s
# A turn is when this process lets its IDENTIFY go; Discord times when it arrives. The margin
# absorbs the send (a busy event loop, the network), so arrivals are never under 5 s apart.
SEND_MARGIN = 0.5

Sleep = Callable[[float], Awaitable[None]]


def identify_bucket(shard_id: int | None, max_concurrency: int) -> int:
    """The bucket of a shard (an unsharded session is shard 0)."""
    return (shard_id or 0) % max(1, max_concurrency)


class IdentifyTurns:
    """Waits for a bucket's turn to IDENTIFY, shared through PostgreSQL with every process."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Sleep = asyncio.sleep,
        gap: float = IDENTIFY_INTERVAL + SEND_MARGIN,
    ) -> None:
        self._slots = IdentifyQueries(engine)
        self._clock = clock  # None: the database's clock
        self._sleep = sleep
        self.gap = gap

    async def wait_turn(self, bucket: int) -> float | None:
        """Return once this process may IDENTIFY in ``bucket``; the slot (epoch seconds) is
        stamped, so the next turn is a gap later. If the database cannot promise one (None),
        waits one full gap: this process keeps the rule by itself, and a collision with another
        costs only a retry."""
        now = self._clock() if self._clock is not None else None
        try:
            slot, now_there = await self._slots.reserve(bucket, self.gap, now=now)
        except (SQLAlchemyError, OSError) as exc:
            log.warning(
                "IDENTIFY turn for bucket %d: the database did not answer (%s); waiting %.1f s",
                bucket,
                type(exc).__name__,
                self.gap,
            )
            await self._sleep(self.gap)
            return None
        delay = slot - now_there
        if delay > 0:
            log.info("IDENTIFY bucket %d: waiting %.1f s for its turn", bucket, delay)
            await self._sleep(delay)
        return slot
