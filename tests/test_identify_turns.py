"""IDENTIFY turns through PostgreSQL: per bucket, every turn a full gap after the one before,
however many processes ask at once; buckets independent; the database's clock by default; a
database that does not answer costs one gap, never a crash."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.identify import IDENTIFY_INTERVAL, IdentifyTurns, identify_bucket
from core.store._identify import IdentifyQueries
from tests.postgres import fresh_database

# The store's migration creates it; these tests stand alone on a fresh database.
CREATE_SLOTS = (
    "CREATE TABLE IF NOT EXISTS identify_slots"
    " (bucket INTEGER PRIMARY KEY, identified_at FLOAT NOT NULL)"
)


def async_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def slots_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.execute(text(CREATE_SLOTS))
    return engine


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_database() as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await slots_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


class Waits:
    """A sleep that only records: the turns' arithmetic, with no real waiting."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def test_a_shard_bucket_is_its_id_modulo_max_concurrency() -> None:
    assert [identify_bucket(shard, 4) for shard in range(9)] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert identify_bucket(None, 16) == 0  # an unsharded session is shard 0
    assert identify_bucket(5, 1) == 0


async def test_turns_of_one_bucket_are_a_gap_apart(engine: AsyncEngine) -> None:
    waits = Waits()
    turns = IdentifyTurns(engine, clock=lambda: 1000.0, sleep=waits)
    assert turns.gap >= IDENTIFY_INTERVAL
    slots = [await turns.wait_turn(0) for _ in range(3)]
    assert slots == [1000.0, 1000.0 + turns.gap, 1000.0 + 2 * turns.gap]
    assert waits.asked == [turns.gap, 2 * turns.gap]  # the first goes at once
    # Another bucket is its own queue.
    assert await turns.wait_turn(1) == 1000.0
    # Once the gap has passed, a turn is at once again.
    later = IdentifyTurns(engine, clock=lambda: 1000.0 + 10 * turns.gap, sleep=waits)
    assert await later.wait_turn(0) == 1000.0 + 10 * turns.gap


async def test_many_processes_asking_at_once_never_share_a_gap(database_url: str) -> None:
    # Four "processes" (engines of their own), each asking five times in each of two buckets,
    # all at once: 40 turns racing for the same two rows.
    engines = [await slots_engine(database_url) for _ in range(4)]
    now = 5000.0
    try:
        turns = [IdentifyTurns(e, clock=lambda: now, sleep=Waits()) for e in engines]
        buckets = [bucket for _ in turns for bucket in (0, 1) for _ in range(5)]
        asks = [t.wait_turn(bucket) for t in turns for bucket in (0, 1) for _ in range(5)]
        granted = await asyncio.gather(*asks)
    finally:
        for engine in engines:
            await engine.dispose()
    gap = turns[0].gap
    for bucket in (0, 1):
        slots = sorted(s for s, b in zip(granted, buckets, strict=True) if b == bucket and s)
        assert len(slots) == 20
        assert slots[0] == now  # the first of each bucket went at once
        assert all(b - a >= gap for a, b in itertools.pairwise(slots))


async def test_the_database_clock_is_the_default(engine: AsyncEngine) -> None:
    queries = IdentifyQueries(engine)
    before = time.time()
    slot, now = await queries.reserve(3, 5.5)
    after = time.time()
    assert slot == now
    assert before - 1 <= now <= after + 1  # the server's clock, the same machine here
    second, now2 = await queries.reserve(3, 5.5)
    assert second == slot + 5.5 and now2 >= now


async def test_an_unreachable_database_waits_one_gap() -> None:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    waits = Waits()
    try:
        assert await IdentifyTurns(engine, sleep=waits).wait_turn(0) is None
    finally:
        await engine.dispose()
    assert waits.asked == [IdentifyTurns(engine).gap]
