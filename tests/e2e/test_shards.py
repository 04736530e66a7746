"""Two bot processes, one shard each of ``SHARD_COUNT=2``, against one local Discord with a
server on each shard: each process gets only its server's interactions and makes its videos.

Each process keeps its own SQLite file here (sharing one database needs PostgreSQL; so does
taking IDENTIFY turns across processes, so the fake gives each shard its own bucket)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.harness import Options, World

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def world_options() -> Options:
    return Options(
        shard_count=2,
        max_concurrency=2,
        guilds=2,
        env={"SHARD_COUNT": "2", "SHARD_IDS": "0"},
    )


async def test_each_process_serves_only_its_shards_servers(world: World) -> None:
    shard1_db = world.directory / "shard1.sqlite3"
    second = world.add_bot({"SHARD_IDS": "1", "DATABASE_PATH": str(shard1_db)}, name="1")
    await world.sync_commands()  # global commands: DEV_GUILD_ID is only the first server
    await world.start(second)
    processes = {0: world.process, 1: second}
    [on_zero], [on_one] = world.guilds_of(world.process), world.guilds_of(second)
    assert {on_zero.shard(2), on_one.shard(2)} == {0, 1}
    assert world.discord.connected_shards == {(0, 2), (1, 2)}
    assert world.discord.identify_rate_violations() == []

    user = world.new_user("sharded")
    jobs = {}
    for shard_id, guild in ((0, on_zero), (1, on_one)):
        reply = await world.command(
            "video",
            {"prompt": f"a lighthouse on shard {shard_id}", "ref1": world.image()},
            user=user,
            channel_id=guild.channel_id,
        )
        jobs[shard_id] = reply.job_id

    databases = {0: world.db_path, 1: shard1_db}

    def state(job_id: str, shard_id: int) -> str | None:
        found = world.rows(
            "SELECT state FROM jobs WHERE id = ?", job_id, db_path=databases[shard_id]
        )
        return str(found[0]["state"]) if found else None

    for shard_id, job_id in jobs.items():
        assert state(job_id, 1 - shard_id) is None  # the other process never saw it

        def delivered(job_id: str = job_id, shard_id: int = shard_id) -> bool:
            return state(job_id, shard_id) == "delivered"

        await world.until(delivered, what=f"job {job_id} delivered by shard {shard_id}'s process")

    for shard_id, job_id in jobs.items():
        [video] = world.deliveries(job_id)
        guild = (on_zero, on_one)[shard_id]
        assert world.discord.channels[int(video["channel_id"])]["guild_id"] == str(guild.id)
        assert f"gateway: shard {shard_id} of 2" in processes[shard_id].log_text()

    code = await world.stop(second)
    assert code == 0
    assert world.discord.connected_shards == {(0, 2)}


async def test_a_postgres_world_gives_every_process_one_fresh_database(tmp_path: Path) -> None:
    # What a network test starts from (the chaos test): one database for every bot process.
    world = World(tmp_path, Options(postgres=True, shard_count=3, guilds=3))
    await world.open()
    try:
        url = world.database_url
        assert url is not None and world.process.env["DATABASE_URL"] == url
        assert world.add_bot({"SHARD_IDS": "2"}, name="2").env["DATABASE_URL"] == url
        assert sorted(g.shard(3) for g in world.guilds) == [0, 1, 2]
        assert await tables_in(url) == 0
    finally:
        await world.close()
    with pytest.raises(DBAPIError, match="does not exist"):  # dropped with the world
        await tables_in(url)


async def tables_in(url: str) -> int:
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as conn:
            query = text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()
