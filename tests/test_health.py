"""BotHealth's verdict for each state the bot can be in (the e2e test covers a real outage)."""

from __future__ import annotations

from typing import Any, cast

from core.jobs import JobState
from discord_side.observability import BotHealth


class _Socket:
    def __init__(self, is_open: bool) -> None:
        self.open = is_open


class _Store:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def count_unfinished_by_state(self) -> dict[JobState, int]:
        if self.error is not None:
            raise self.error
        return {JobState.RUNNING: 2}


class _Tracker:
    def stats(self) -> dict[str, int]:
        return {"scheduled": 1, "running": 0}


class _Bot:
    """What BotHealth reads of the bot, settable per test."""

    def __init__(self) -> None:
        self.listeners: dict[str, Any] = {}
        self.closed = False
        self.ready = True
        self.ws: _Socket | None = _Socket(True)
        self.latency = 0.042
        self.guilds = [object(), object()]
        self.store = _Store()
        self.tracker = _Tracker()

    def add_listener(self, func: Any, name: str) -> None:
        self.listeners.setdefault(name, []).append(func)

    def is_closed(self) -> bool:
        return self.closed

    def is_ready(self) -> bool:
        return self.ready

    async def dispatch(self, name: str) -> None:
        for func in self.listeners.get(name, []):
            await func()


def _health(bot: _Bot) -> BotHealth:
    return BotHealth(cast(Any, bot), clock=lambda: 100.0)


async def test_connected_ready_and_answering_is_healthy() -> None:
    report = await _health(_Bot()).report()
    assert report == {
        "ok": True,
        "problems": [],
        "gateway_latency_ms": 42,
        "guilds": 2,
        "unfinished_jobs": {"running": 2},
        "scheduled": 1,
        "running": 0,
    }


async def test_each_problem_is_named() -> None:
    starting = _Bot()
    starting.ready = False
    starting.latency = float("inf")
    report = await _health(starting).report()
    assert report["problems"] == ["not connected to the Discord gateway yet (starting)"]
    assert report["ok"] is False and report["gateway_latency_ms"] is None

    broken_store = _Bot()
    broken_store.store = _Store(RuntimeError("disk I/O error"))
    report = await _health(broken_store).report()
    assert report["problems"] == ["the database does not answer (RuntimeError)"]
    assert report["unfinished_jobs"] is None

    closing = _Bot()
    closing.closed = True
    assert (await _health(closing).report())["problems"] == ["the bot is shutting down"]


async def test_a_lost_gateway_is_unhealthy_until_it_is_back() -> None:
    bot = _Bot()
    health = _health(bot)
    await bot.dispatch("on_disconnect")
    bot.ws = _Socket(False)
    report = await health.report()
    assert report["ok"] is False
    assert report["problems"] == ["the Discord gateway connection is down (0 s); reconnecting"]
    bot.ws = _Socket(True)  # the socket is open again, but the session is not resumed yet
    assert (await health.report())["ok"] is False
    await bot.dispatch("on_resumed")
    assert (await health.report())["ok"] is True
