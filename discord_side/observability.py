"""What the operator sees of the Discord side: ``/healthz``'s verdict and Discord REST errors.

Health is the truth, not a liveness ping: 200 only while the gateway is connected and ready and
the database answers a query; otherwise 503 with the problems, so Docker's HEALTHCHECK or a
Kubernetes probe restarts or flags a bot that cannot serve.

REST errors are counted through discord.py's public ``http_trace`` hook (an aiohttp
``TraceConfig`` on its session): every answer >= 400 and every request that got no answer,
by coarse route and status. Nothing in discord.py is patched.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from core.metrics import Metrics
from discord_side.client import AppClient
from discord_side.shards import gateway_open

log = logging.getLogger(__name__)

STORE_TIMEOUT_SECONDS = 3.0  # a database that takes longer to count a few rows is not well


def rest_error_trace(metrics: Metrics) -> aiohttp.TraceConfig:
    """A trace for discord.py's HTTP session that counts its failed requests."""

    async def on_end(
        session: aiohttp.ClientSession,
        context: object,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        if params.response.status >= 400:
            metrics.discord_error(params.url.path, params.response.status)

    async def on_exception(
        session: aiohttp.ClientSession,
        context: object,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        failure = "timeout" if isinstance(params.exception, TimeoutError) else "connection_error"
        metrics.discord_error(params.url.path, failure)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace


class BotHealth:
    """Follows the gateway connection through discord.py's events and reports on request."""

    def __init__(self, bot: AppClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._bot = bot
        self._clock = clock
        self._down_since: float | None = None
        bot.add_listener(self._on_disconnect, "on_disconnect")
        bot.add_listener(self._on_up, "on_ready")
        bot.add_listener(self._on_up, "on_resumed")
        bot.add_listener(self._on_up, "on_shard_ready")  # one shard IDENTIFYed again

    async def _on_disconnect(self) -> None:
        if self._bot.is_closed():
            return  # shutting down, not a lost connection
        if self._down_since is None:
            self._down_since = self._clock()
            log.warning("Discord gateway disconnected; reconnecting")

    async def _on_up(self, *_shard_id: int) -> None:
        if self._down_since is not None:
            log.info(
                "Discord gateway connected again after %.1f s", self._clock() - self._down_since
            )
        self._down_since = None

    def gateway_problem(self) -> str | None:
        bot = self._bot
        if bot.is_closed():
            return "the bot is shutting down"
        if not bot.is_ready():
            return "not connected to the Discord gateway yet (starting)"
        if self._down_since is not None or not gateway_open(bot):
            since = self._down_since if self._down_since is not None else self._clock()
            return (
                f"the Discord gateway connection is down ({self._clock() - since:.0f} s);"
                " reconnecting"
            )
        return None

    async def report(self) -> dict[str, Any]:
        """``ok`` and the ``problems`` if not; the gateway's latency and the jobs under way."""
        problems: list[str] = []
        gateway = self.gateway_problem()
        if gateway is not None:
            problems.append(gateway)
        jobs: dict[str, int] | None = None
        try:
            async with asyncio.timeout(STORE_TIMEOUT_SECONDS):
                counts = await self._bot.store.count_unfinished_by_state()
            jobs = {state.value: count for state, count in sorted(counts.items())}
        except Exception as exc:
            problems.append(f"the database does not answer ({type(exc).__name__})")
        latency = self._bot.latency
        report: dict[str, Any] = {
            "ok": not problems,
            "problems": problems,
            "gateway_latency_ms": round(latency * 1000) if math.isfinite(latency) else None,
            "guilds": len(self._bot.guilds),
            "unfinished_jobs": jobs,
            **self._bot.tracker.stats(),
        }
        return report
