"""Signals: LISTEN/NOTIFY between processes (PostgreSQL), and the in-process fan-out (SQLite)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from core.store._signals import (
    CHANNEL,
    LocalSignals,
    PostgresSignals,
    SignalEvent,
    parse_payload,
    payload,
)
from tests.coordination import pg_engine, terminate_sessions
from tests.tracker_rig import until


class Heard:
    def __init__(self) -> None:
        self.signals: asyncio.Queue[tuple[SignalEvent, str]] = asyncio.Queue()

    def __call__(self, event: SignalEvent, job_id: str) -> None:
        self.signals.put_nowait((event, job_id))

    async def next(self, timeout: float = 10.0) -> tuple[SignalEvent, str]:
        return await asyncio.wait_for(self.signals.get(), timeout)


def test_payloads_round_trip_and_unknown_ones_are_refused() -> None:
    assert payload(SignalEvent.DELIVER, "j-1") == "deliver:j-1"
    assert parse_payload("deliver:j-1") == (SignalEvent.DELIVER, "j-1")
    assert parse_payload("webhook:a:b") == (SignalEvent.WEBHOOK, "a:b")
    for raw in ("", "new", "new:", "resize:j-1", ":j-1"):
        assert parse_payload(raw) is None


async def test_local_signals_reach_every_listener_of_the_process() -> None:
    signals = LocalSignals()
    first, second = Heard(), Heard()
    signals.listen(first)
    signals.listen(second)
    await signals.start()
    await signals.notify(SignalEvent.NEW, "j-1")
    assert await first.next() == (SignalEvent.NEW, "j-1")
    assert await second.next() == (SignalEvent.NEW, "j-1")
    await signals.close()


async def test_a_listener_that_raises_does_not_stop_the_others() -> None:
    signals = LocalSignals()

    def broken(_event: SignalEvent, _job_id: str) -> None:
        raise RuntimeError("boom")

    heard = Heard()
    signals.listen(broken)
    signals.listen(heard)
    await signals.notify(SignalEvent.DELIVER, "j-2")
    assert await heard.next() == (SignalEvent.DELIVER, "j-2")


async def test_a_notify_reaches_every_process_listening_on_the_database() -> None:
    async with pg_engine() as (engine, _url):
        one, two = PostgresSignals(engine), PostgresSignals(engine)
        heard_one, heard_two = Heard(), Heard()
        one.listen(heard_one)
        two.listen(heard_two)
        await one.start()
        await two.start()
        try:
            await one.notify(SignalEvent.WEBHOOK, "j-3")
            assert await heard_one.next() == (SignalEvent.WEBHOOK, "j-3")  # its own, too
            assert await heard_two.next() == (SignalEvent.WEBHOOK, "j-3")
        finally:
            await one.close()
            await two.close()


async def test_a_notify_inside_a_transaction_arrives_at_commit_and_never_on_rollback() -> None:
    async with pg_engine() as (engine, _url):
        signals = PostgresSignals(engine)
        heard = Heard()
        signals.listen(heard)
        await signals.start()
        try:
            with pytest.raises(RuntimeError):
                async with engine.begin() as conn:
                    await signals.notify(SignalEvent.NEW, "rolled-back", conn)
                    raise RuntimeError("abort")
            async with engine.begin() as conn:
                await signals.notify(SignalEvent.NEW, "committed", conn)
                # Not before the commit: a marker sent on its own goes first.
                await signals.notify(SignalEvent.NEW, "marker")
            assert await heard.next() == (SignalEvent.NEW, "marker")
            assert await heard.next() == (SignalEvent.NEW, "committed")
            assert heard.signals.empty()
        finally:
            await signals.close()


async def test_unknown_payloads_on_the_channel_are_ignored() -> None:
    async with pg_engine() as (engine, _url):
        signals = PostgresSignals(engine)
        heard = Heard()
        signals.listen(heard)
        await signals.start()
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("SELECT pg_notify(:c, 'resize:j-1'), pg_notify(:c, 'garbage')"),
                    {"c": CHANNEL},
                )
            await signals.notify(SignalEvent.NEW, "j-4")
            assert await heard.next() == (SignalEvent.NEW, "j-4")
            assert heard.signals.empty()
        finally:
            await signals.close()


async def test_listening_resumes_after_the_server_ends_the_session() -> None:
    async with pg_engine() as (engine, url):
        signals = PostgresSignals(engine, retry_base=0.05)
        heard = Heard()
        resumed = asyncio.Event()
        signals.listen(heard)
        signals.on_reconnect(resumed.set)
        await signals.start()
        try:
            ended = await terminate_sessions(url, "query LIKE 'LISTEN%'")
            assert ended == 1
            await asyncio.wait_for(resumed.wait(), 10)  # told it may have missed signals
            await until(lambda: signals.listening, timeout=10)
            await signals.notify(SignalEvent.DELIVER, "j-5")
            assert await heard.next() == (SignalEvent.DELIVER, "j-5")
        finally:
            await signals.close()


async def test_closing_leaves_no_session_listening() -> None:
    async with pg_engine() as (engine, url):
        signals = PostgresSignals(engine)
        await signals.start()
        await signals.close()
        assert await terminate_sessions(url, "query LIKE 'LISTEN%' AND state = 'idle'") == 0
