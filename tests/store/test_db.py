"""The database under the store: reads see every commit, transactions are all or nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.store import Database, HintQueries, QuotaLimits, Store
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

        seen = await asyncio.gather(*(create_then_read(i) for i in range(300)))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert all(seen)


async def test_a_transaction_that_raises_writes_nothing(tmp_path: Path) -> None:
    async with Database.open(tmp_path / "db.sqlite3") as db:
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO thread_hints (thread_id, created_at) VALUES (1, 0)")
                raise RuntimeError("the check after the write failed")
        assert await db.fetchall("SELECT * FROM thread_hints") == []
        async with db.transaction() as conn:  # the writer is free again
            await conn.execute("INSERT INTO thread_hints (thread_id, created_at) VALUES (1, 0)")
        assert len(await db.fetchall("SELECT * FROM thread_hints")) == 1


async def test_one_concern_runs_on_a_database_of_its_own(tmp_path: Path) -> None:
    async with Database.open(tmp_path / "db.sqlite3") as db:
        hints = HintQueries(db)
        assert await hints.mark_thread_hinted(5, NOW) is True
        assert await hints.mark_thread_hinted(5, NOW) is False


async def test_the_store_needs_a_file() -> None:
    with pytest.raises(ValueError, match="needs a file"):
        async with Store.open(":memory:"):
            pass
