"""The database under the store: reads see every commit, transactions are all or nothing, the
target names the engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from core.store import Database, HintQueries, QuotaLimits, Store
from core.store._db import database_url, redact
from core.store._tables import thread_hints
from tests.store.helpers import GUILD, NOW, USER, make_job


async def test_a_write_is_visible_to_the_next_read_even_under_a_storm_of_reads(
    store: Store,
) -> None:
    # Reads overlapping on one connection would keep an old snapshot open, so a job just created
    # could look missing to the tracker (and be dropped). Every read must see every commit.
    stop = asyncio.Event()

    async def keep_reading() -> None:
        while not stop.is_set():
            await store.unfinished_count(GUILD, USER)
            await store.get_job("no-such-job")

    readers = [asyncio.create_task(keep_reading()) for _ in range(20)]
    try:
        limits = QuotaLimits(daily_seconds=10**9, max_concurrent=10**9)

        async def create_then_read(index: int) -> bool:
            job = await store.create_job(make_job(user=index), limits, NOW)
            return await store.get_job(job.id) is not None

        seen = await asyncio.gather(*(create_then_read(i) for i in range(100)))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert all(seen)


async def hints(db: Database) -> int:
    return int(await db.scalar(select(func.count()).select_from(thread_hints)))


async def test_a_transaction_that_raises_writes_nothing(database: Path | str) -> None:
    async with Database.open(database) as db:
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute(insert(thread_hints).values(thread_id=1, created_at=0))
                raise RuntimeError("the check after the write failed")
        assert await hints(db) == 0
        async with db.transaction() as conn:  # the writer is free again
            await conn.execute(insert(thread_hints).values(thread_id=1, created_at=0))
        assert await hints(db) == 1


async def test_one_concern_runs_on_a_database_of_its_own(database: Path | str) -> None:
    async with Database.open(database) as db:
        hinted = HintQueries(db)
        assert await hinted.mark_thread_hinted(5, NOW) is True
        assert await hinted.mark_thread_hinted(5, NOW) is False


async def test_the_store_needs_a_file() -> None:
    with pytest.raises(ValueError, match="needs a file"):
        async with Store.open(":memory:"):
            pass


async def test_snowflakes_keep_all_64_bits(store: Store) -> None:
    thread = 1_234_567_890_123_456_789  # past 2**53 and 2**32: a real Discord id
    assert await store.mark_thread_hinted(thread, NOW) is True
    assert await store.mark_thread_hinted(thread, NOW) is False


def test_urls_name_their_engine_and_driver() -> None:
    assert database_url("postgresql://u:p@h/db").drivername == "postgresql+asyncpg"
    assert database_url("postgresql+asyncpg://h/db").drivername == "postgresql+asyncpg"
    assert database_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    for wrong in ("mysql://h/db", "postgresql+psycopg2://h/db"):
        with pytest.raises(ValueError, match="use postgresql://"):
            database_url(wrong)
    assert "secret" not in redact("postgresql://bot:secret@db/wanbot")


async def test_a_sqlite_url_opens_that_file(tmp_path: Path) -> None:
    path = tmp_path / "by-url.sqlite3"
    async with Store.open(f"sqlite:///{path}") as store:
        assert not store.is_postgres
        await store.mark_thread_hinted(1, NOW)
    assert path.is_file()
