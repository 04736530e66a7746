"""The database under the store: reads see every commit, transactions are all or nothing."""

from __future__ import annotations

import asyncio

from core.store import QuotaLimits, Store
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
