"""The bot sharded, against the local Discord with several servers on different shards.

The real ``WanBot`` (settings, store, cogs, tracker) runs in the test's event loop: one process
with both shards of ``SHARD_COUNT=2``, then two "processes" with one shard each that take
IDENTIFY turns through PostgreSQL; last, several discord.py clients racing to IDENTIFY through
the same turns, the fake timing each IDENTIFY (real 5 s windows, no sleeps standing in).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import discord
import pytest
from discord.ext import commands
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import ShardedWanBot, WanBot, make_bot
from core.app import build_services
from core.config import Settings
from core.identify import IDENTIFY_INTERVAL, IdentifyTurns
from core.store import Store
from discord_side.endpoint import point_discord_at, restore_discord_defaults
from discord_side.shards import IdentifyGate, describe_shards, gateway_open
from tests.fakes.discord import FakeDiscord, FakeGuild, shard_of
from tests.fakes.wan_server import FakeWanServer
from tests.postgres import fresh_database
from tests.test_identify_turns import slots_engine

WAN_KEY = "wan-key"


@pytest.fixture
async def wan() -> AsyncIterator[FakeWanServer]:
    async with FakeWanServer(api_key=WAN_KEY) as server:
        yield server


def settings_for(
    fake: FakeDiscord, wan: FakeWanServer, db: Path, env: Mapping[str, str]
) -> Settings:
    return Settings.from_env(
        {
            "DISCORD_TOKEN": fake.token,
            "FREEPIK_API_KEY": WAN_KEY,
            "WAN_API_BASE": wan.base_url,
            "DISCORD_API_BASE": fake.api_base,
            "DATABASE_PATH": str(db),
            "WEBHOOK_PORT": "0",
            **env,
        }
    )


class Handled:
    """Which bot (by name) saw an interaction from which guild."""

    def __init__(self) -> None:
        self.by_bot: dict[str, list[int | None]] = defaultdict(list)

    def watch(self, name: str, bot: WanBot) -> None:
        async def on_interaction(interaction: discord.Interaction) -> None:
            self.by_bot[name].append(interaction.guild_id)

        bot.add_listener(on_interaction)


@asynccontextmanager
async def running_bot(
    settings: Settings, *, identify_turns: IdentifyTurns | None = None
) -> AsyncIterator[WanBot]:
    """The bot as ``bot.py`` builds it, logged in and connected until the block ends."""
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        store = await stack.enter_async_context(Store.open(settings.database_path))
        bot = make_bot(build_services(settings, store, session), identify_turns=identify_turns)
        await stack.enter_async_context(bot)
        await bot.login(settings.discord_token)
        task = asyncio.create_task(bot.connect())
        try:
            await asyncio.wait_for(bot.wait_until_ready(), 30)
            yield bot
        finally:
            await bot.close()
            await asyncio.wait_for(task, 10)


@asynccontextmanager
async def local_discord(shard_count: int, max_concurrency: int) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(shard_count=shard_count, max_concurrency=max_concurrency) as fake:
        await point_discord_at(fake.api_base, fake.token)
        try:
            yield fake
        finally:
            restore_discord_defaults()
        assert fake.server_errors == [] and fake.unhandled == []


@pytest.fixture
async def turns_engine() -> AsyncIterator[AsyncEngine]:
    async with fresh_database() as url:
        engine = await slots_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()


def second_guild(fake: FakeDiscord, shard_count: int = 2) -> FakeGuild:
    first = shard_of(fake.guild_id, shard_count)
    return fake.add_guild("Second Guild", shard=((first + 1) % shard_count, shard_count))


async def ask_help(fake: FakeDiscord, channel_id: int) -> None:
    """/help in a channel, answered by whichever bot the gateway gave it to."""
    iid = await fake.dispatch_slash_command("help", channel_id=channel_id)
    await fake.wait_for(
        lambda: fake.interactions[iid].response_type is not None, 15, "an answer to /help"
    )


def test_shards_read_as_ranges() -> None:
    assert describe_shards([0, 1, 2, 3], 8) == "shards 0-3 of 8"
    assert describe_shards([5], 8) == "shard 5 of 8"
    assert describe_shards([7, 0, 2, 5, 6], 8) == "shards 0, 2, 5-7 of 8"


async def test_unsharded_settings_make_todays_plain_bot(wan: FakeWanServer, tmp_path: Path) -> None:
    async with local_discord(1, 1) as fake:
        second = fake.add_guild("Second Guild")
        async with running_bot(settings_for(fake, wan, tmp_path / "db.sqlite3", {})) as bot:
            assert type(bot) is WanBot and not isinstance(bot, discord.AutoShardedClient)
            assert {g.id for g in bot.guilds} == {fake.guild_id, second.id}
            await ask_help(fake, second.channel_id)
            assert gateway_open(bot)
        identify = next(op["d"] for op in fake.gateway_received if op["op"] == 2)
        assert "shard" not in identify


async def test_one_process_runs_both_shards(wan: FakeWanServer, tmp_path: Path) -> None:
    async with local_discord(2, 1) as fake:
        second = second_guild(fake)
        settings = settings_for(fake, wan, tmp_path / "db.sqlite3", {"SHARD_COUNT": "2"})
        handled = Handled()
        # SQLite: one process, discord.py's own spacing (5 s before its second IDENTIFY).
        async with running_bot(settings) as bot:
            handled.watch("only", bot)
            assert isinstance(bot, ShardedWanBot) and isinstance(bot, commands.AutoShardedBot)
            assert (bot.shard_count, sorted(bot.shards)) == (2, [0, 1])
            assert {g.id: g.shard_id for g in bot.guilds} == {
                fake.guild_id: shard_of(fake.guild_id, 2),
                second.id: second.shard(2),
            }
            await ask_help(fake, fake.channel_id)
            await ask_help(fake, second.channel_id)
            report = await bot.health.report()
            assert report["ok"], report["problems"]
            assert report["guilds"] == 2
        assert len(handled.by_bot["only"]) == 2
        assert set(handled.by_bot["only"]) == {fake.guild_id, second.id}
        assert sorted(i.shard_id for i in fake.identifies) == [0, 1]


async def test_two_processes_one_shard_each_take_identify_turns(
    wan: FakeWanServer, tmp_path: Path, turns_engine: AsyncEngine
) -> None:
    async with local_discord(2, 1) as fake:
        second = second_guild(fake)
        guild_of_shard = {shard_of(fake.guild_id, 2): fake.guild_id, second.shard(2): second.id}
        handled = Handled()
        async with AsyncExitStack() as stack:

            async def start(shard_id: int) -> WanBot:
                env = {"SHARD_COUNT": "2", "SHARD_IDS": str(shard_id)}
                settings = settings_for(fake, wan, tmp_path / f"shard{shard_id}.sqlite3", env)
                turns = IdentifyTurns(turns_engine)
                return await stack.enter_async_context(running_bot(settings, identify_turns=turns))

            # Started together: one bucket (max_concurrency 1), so one of them waits its turn.
            bots = dict(zip((0, 1), await asyncio.gather(start(0), start(1)), strict=True))
            for shard_id, bot in bots.items():
                handled.watch(f"shard {shard_id}", bot)
                assert isinstance(bot, ShardedWanBot) and sorted(bot.shards) == [shard_id]
                assert [g.id for g in bot.guilds] == [guild_of_shard[shard_id]]
            await ask_help(fake, fake.channel_id)
            await ask_help(fake, second.channel_id)
        for shard_id, guild_id in guild_of_shard.items():
            assert handled.by_bot[f"shard {shard_id}"] == [guild_id]
        first, later = sorted(fake.identifies, key=lambda i: i.at)
        assert (first.bucket, later.bucket) == (0, 0)
        assert later.at - first.at >= IDENTIFY_INTERVAL
        assert fake.identify_rate_violations() == []


class GatedClient(commands.AutoShardedBot):
    """A bare discord.py client whose IDENTIFYs wait at the bot's gate."""

    def __init__(self, gate_turns: IdentifyTurns, shard_ids: list[int], shard_count: int) -> None:
        super().__init__(
            command_prefix=(),
            intents=discord.Intents.default(),
            shard_count=shard_count,
            shard_ids=shard_ids,
            guild_ready_timeout=0.05,
        )
        self.gate = IdentifyGate(gate_turns, self.http)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        await self.gate.wait(shard_id)


async def test_the_gate_reads_max_concurrency_once_and_is_safe_without_it(
    turns_engine: AsyncEngine,
) -> None:
    async with local_discord(4, 4) as fake:
        client = GatedClient(IdentifyTurns(turns_engine), [0], 4)
        try:
            await client.login(fake.token)
            fake.fail_next("GET", "/gateway/bot", 403)  # not retried by discord.py
            assert await client.gate.max_concurrency() == 1  # one bucket: always safe
            assert await client.gate.max_concurrency() == 4  # asked again, then kept
            assert await client.gate.max_concurrency() == 4
        finally:
            await client.close()
        assert len(fake.calls_to("GET", "/gateway/bot")) == 3  # point_discord_at's, then two


async def test_clients_starting_together_never_identify_twice_in_a_bucket_within_5_s(
    turns_engine: AsyncEngine,
) -> None:
    # Six shards over three processes, two buckets: three IDENTIFYs race for each bucket.
    shard_count, processes = 6, [[0, 1], [2, 3], [4, 5]]
    async with local_discord(shard_count, 2) as fake:
        guilds = {s: fake.add_guild(f"g{s}", shard=(s, shard_count)).id for s in range(6)}
        clients = [GatedClient(IdentifyTurns(turns_engine), ids, shard_count) for ids in processes]
        tasks: list[asyncio.Task[None]] = []
        try:
            for client in clients:
                await client.login(fake.token)
            tasks = [asyncio.create_task(client.connect()) for client in clients]
            await asyncio.wait_for(
                asyncio.gather(*(client.wait_until_ready() for client in clients)), 60
            )
            await fake.wait_for_shards(shard_count)
            for client, ids in zip(clients, processes, strict=True):
                assert await client.gate.max_concurrency() == 2
                first = {fake.guild_id} if shard_of(fake.guild_id, shard_count) in ids else set()
                assert {g.id for g in client.guilds} == {guilds[s] for s in ids} | first
        finally:
            for client in clients:
                await client.close()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(i.shard_id for i in fake.identifies) == list(range(6))
    by_bucket = {
        bucket: sorted(i.at for i in group)
        for bucket, group in itertools.groupby(
            sorted(fake.identifies, key=lambda i: i.bucket), key=lambda i: i.bucket
        )
    }
    assert sorted(by_bucket) == [0, 1] and all(len(times) == 3 for times in by_bucket.values())
    assert fake.identify_rate_violations() == []
