"""Shards on the Discord side: the IDENTIFY wait of ``before_identify_hook``, whether every
shard's gateway is up, and how a process's shards read in a log line.

discord.py's own ``before_identify_hook`` sleeps 5 s before every IDENTIFY but a process's
first, which is right for one process and knows nothing of others. With PostgreSQL the bot
waits for its bucket's turn instead (``core.identify``), so processes starting together never
IDENTIFY twice in one bucket within 5 s. The bucket needs ``max_concurrency``, which
``AutoShardedClient`` never reads (it asks ``GET /gateway/bot`` only for a shard count, and not
at all when ``SHARD_COUNT`` gives one), so :class:`IdentifyGate` asks once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import aiohttp
import discord
from discord.http import HTTPClient

from core.identify import IdentifyTurns, identify_bucket
from discord_side.client import AppClient

log = logging.getLogger(__name__)


class IdentifyGate:
    """Waits, before each IDENTIFY, for the shard's bucket's turn shared through PostgreSQL."""

    def __init__(self, turns: IdentifyTurns, http: HTTPClient) -> None:
        self._turns = turns
        self._http = http
        self._max_concurrency: int | None = None

    async def max_concurrency(self) -> int:
        """Discord's ``session_start_limit.max_concurrency``, asked once; 1 (always safe) while
        it cannot be read, asked again at the next IDENTIFY."""
        if self._max_concurrency is None:
            try:
                _shards, _url, limits = await self._http.get_bot_gateway()
                value = int(limits["max_concurrency"])
            except (discord.DiscordException, aiohttp.ClientError, OSError, KeyError, ValueError):
                log.warning("GET /gateway/bot failed: IDENTIFYing one bucket at a time for now")
                return 1
            self._max_concurrency = max(1, value)
            log.info("gateway: %d IDENTIFY bucket(s) every 5 s", self._max_concurrency)
        return self._max_concurrency

    async def wait(self, shard_id: int | None) -> None:
        bucket = identify_bucket(shard_id, await self.max_concurrency())
        await self._turns.wait_turn(bucket)


def gateway_open(bot: AppClient) -> bool:
    """Whether the gateway connection is open: every shard's, for a sharded bot (which has one
    websocket per shard and none in ``bot.ws``)."""
    if isinstance(bot, discord.AutoShardedClient):
        shards = bot.shards
        return bool(shards) and not any(shard.is_closed() for shard in shards.values())
    return bot.ws is not None and bool(bot.ws.open)


def describe_shards(shard_ids: Iterable[int], shard_count: int) -> str:
    """``"shards 0-3, 6 of 8"``: a process's shards, runs folded into ranges."""
    runs: list[list[int]] = []
    for shard in sorted(set(shard_ids)):
        if runs and shard == runs[-1][1] + 1:
            runs[-1][1] = shard
        else:
            runs.append([shard, shard])
    folded = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"
    noun = "shard" if folded.isdigit() else "shards"
    return f"{noun} {folded} of {shard_count}"
