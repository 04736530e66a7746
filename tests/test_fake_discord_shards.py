"""The local Discord's shards, driven by discord.py's own ``AutoShardedClient``: one gateway
session per shard, each given only its guilds (READY, GUILD_CREATE and every later event), DMs
on shard 0, ``GET /gateway/bot``'s shard count and session start limit, and the IDENTIFY record
the identify-turn tests read."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from discord_side.endpoint import point_discord_at, restore_discord_defaults
from tests.fakes.discord import FakeDiscord, FakeGuild, Identify, shard_of


class Heard:
    """What each client's handlers saw: interaction guild ids and message guild ids."""

    def __init__(self) -> None:
        self.interactions: list[int | None] = []
        self.messages: list[int | None] = []
        self.changed = asyncio.Event()

    def note(self, into: list[int | None], guild_id: int | None) -> None:
        into.append(guild_id)
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checked after each thing heard."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


class TwoBucketBot(commands.AutoShardedBot):
    """Shards 0 and 1 are in different buckets of the fake's ``max_concurrency=2``: no wait
    (discord.py's default hook sleeps 5 s before every IDENTIFY but a process's first)."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        assert shard_id in (0, 1)


AnyBot = commands.Bot | commands.AutoShardedBot


def sharded_client(
    heard: Heard, *, shard_count: int | None, shard_ids: Sequence[int] | None
) -> AnyBot:
    intents = discord.Intents.default()
    bot: AnyBot
    if shard_count is None:
        bot = commands.Bot(command_prefix=(), intents=intents, guild_ready_timeout=0.05)
    else:
        bot = TwoBucketBot(
            command_prefix=(),
            intents=intents,
            guild_ready_timeout=0.05,
            shard_count=shard_count,
            shard_ids=list(shard_ids or []),
        )

    @app_commands.command(name="ping", description="Answers where it was asked")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong", ephemeral=True)
        heard.note(heard.interactions, interaction.guild_id)

    bot.tree.add_command(ping)

    @bot.event
    async def on_message(message: discord.Message) -> None:
        heard.note(heard.messages, message.guild.id if message.guild else None)

    return bot


@asynccontextmanager
async def running(fake: FakeDiscord, bot: AnyBot) -> AsyncIterator[AnyBot]:
    task: asyncio.Task[None] | None = None
    try:
        await bot.login(fake.token)
        task = asyncio.create_task(bot.connect())
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        yield bot
    finally:
        await bot.close()
        if task is not None:
            await asyncio.wait_for(task, 5)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    # Two shards, two buckets: two clients may IDENTIFY at once without breaking the rule.
    async with FakeDiscord(shard_count=2, max_concurrency=2) as started:
        await point_discord_at(started.api_base, started.token)
        try:
            yield started
        finally:
            restore_discord_defaults()
        assert started.server_errors == [] and started.unhandled == []


def other_shard_guild(fake: FakeDiscord) -> FakeGuild:
    """A second guild, on the shard the first guild is not on."""
    first = shard_of(fake.guild_id, 2)
    guild = fake.add_guild("Second Guild", shard=(1 - first, 2))
    assert guild.shard(2) != first
    return guild


def test_guild_ids_land_on_the_shard_asked_for(fake: FakeDiscord) -> None:
    for shard_id in (0, 1, 2, 0, 3):
        assert fake.add_guild(f"g{shard_id}", shard=(shard_id, 4)).shard(4) == shard_id
    with pytest.raises(ValueError):
        fake.add_guild("nowhere", shard=(4, 4))


async def test_gateway_bot_gives_the_shard_count_and_max_concurrency(fake: FakeDiscord) -> None:
    bot = commands.AutoShardedBot(command_prefix=(), intents=discord.Intents.default())
    try:
        await bot.login(fake.token)
        limits = await bot.fetch_session_start_limits()
        shards, url, _limit = await bot.http.get_bot_gateway()
    finally:
        await bot.close()
    assert (shards, url, limits.max_concurrency) == (2, fake.gateway_url, 2)
    assert limits.remaining == limits.total == 1000


async def test_one_client_with_both_shards_gets_every_guild(fake: FakeDiscord) -> None:
    second = other_shard_guild(fake)
    heard = Heard()
    async with running(fake, sharded_client(heard, shard_count=2, shard_ids=[0, 1])) as bot:
        await bot.tree.sync()
        await fake.wait_for_shards(2)
        assert {g.id for g in bot.guilds} == {fake.guild_id, second.id}
        assert {g.id: g.shard_id for g in bot.guilds} == {
            fake.guild_id: shard_of(fake.guild_id, 2),
            second.id: second.shard(2),
        }
        await fake.dispatch_slash_command("ping")
        await fake.dispatch_slash_command("ping", channel_id=second.channel_id)
        await heard.until(lambda: len(heard.interactions) == 2)
    assert set(heard.interactions) == {fake.guild_id, second.id}
    identified = sorted((i.shard_id, i.shard_count, i.bucket) for i in fake.identifies)
    assert identified == [(0, 2, 0), (1, 2, 1)]
    assert fake.identify_rate_violations() == []


async def test_each_shard_gets_only_its_guilds_events(fake: FakeDiscord) -> None:
    second = other_shard_guild(fake)
    by_shard = {shard_of(fake.guild_id, 2): fake.guild_id, second.shard(2): second.id}
    heard = {0: Heard(), 1: Heard()}
    async with AsyncExitStack() as stack:
        bots = {
            shard_id: await stack.enter_async_context(
                running(fake, sharded_client(heard[shard_id], shard_count=2, shard_ids=[shard_id]))
            )
            for shard_id in (0, 1)
        }
        await bots[0].tree.sync()
        for shard_id, bot in bots.items():
            assert [g.id for g in bot.guilds] == [by_shard[shard_id]]
        ready = [op["d"] for op in fake.gateway_received if op["op"] == 2]
        assert sorted(tuple(d["shard"]) for d in ready) == [(0, 2), (1, 2)]

        # Interactions and messages in each guild, then a DM: only the owning shard hears them.
        for guild_id, channel_id in ((fake.guild_id, fake.channel_id), (second.id, None)):
            channel = channel_id or second.channel_id
            await fake.dispatch_slash_command("ping", channel_id=channel)
            await fake.post_message(channel, f"hello {guild_id}")
        dm = await bots[1].create_dm(discord.Object(fake.member.id))
        await fake.post_message(dm.id, "a DM")
        # Last, one more message in each guild: whatever a shard was wrongly sent came before.
        await fake.post_message(fake.channel_id, "last")
        await fake.post_message(second.channel_id, "last")
        expected = {
            shard_id: [guild_id, None, guild_id] if shard_id == 0 else [guild_id, guild_id]
            for shard_id, guild_id in by_shard.items()
        }
        for shard_id in (0, 1):

            def all_heard(s: int = shard_id) -> bool:
                got = heard[s]
                return len(got.interactions) == 1 and len(got.messages) == len(expected[s])

            await heard[shard_id].until(all_heard)
    for shard_id, guild_id in by_shard.items():
        assert heard[shard_id].interactions == [guild_id]
        assert heard[shard_id].messages == expected[shard_id]


async def test_events_about_a_guild_go_to_its_shard_only(fake: FakeDiscord) -> None:
    second = other_shard_guild(fake)
    updates: dict[int, list[int]] = defaultdict(list)
    changed = asyncio.Event()
    async with AsyncExitStack() as stack:
        for shard_id in (0, 1):
            bot = sharded_client(Heard(), shard_count=2, shard_ids=[shard_id])

            async def on_guild_update(
                before: discord.Guild, after: discord.Guild, shard_id: int = shard_id
            ) -> None:
                updates[shard_id].append(after.id)
                changed.set()

            bot.add_listener(on_guild_update)
            await stack.enter_async_context(running(fake, bot))
        await fake.set_premium_tier(2)  # GUILD_UPDATE for the first guild
        async with asyncio.timeout(5):
            while not updates:
                changed.clear()
                await changed.wait()
    assert dict(updates) == {shard_of(fake.guild_id, 2): [fake.guild_id]}
    assert second.shard(2) not in updates


async def test_an_unsharded_client_gets_every_guild(fake: FakeDiscord) -> None:
    second = other_shard_guild(fake)
    heard = Heard()
    async with running(fake, sharded_client(heard, shard_count=None, shard_ids=None)) as bot:
        assert {g.id for g in bot.guilds} == {fake.guild_id, second.id}
        await fake.post_message(second.channel_id, "hi")
        await fake.post_message(fake.channel_id, "hi")
        await heard.until(lambda: len(heard.messages) == 2)
    assert fake.identifies[0].shard_id == 0 and fake.identifies[0].shard_count == 1
    identify = next(op["d"] for op in fake.gateway_received if op["op"] == 2)
    assert "shard" not in identify


async def test_a_second_guild_works_over_rest(fake: FakeDiscord) -> None:
    second = other_shard_guild(fake)
    heard = Heard()
    async with running(fake, sharded_client(heard, shard_count=2, shard_ids=[0, 1])) as bot:
        guild = await bot.fetch_guild(second.id)
        channels = await guild.fetch_channels()
        member = await guild.fetch_member(fake.member.id)
        channel = bot.get_channel(second.channel_id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("in the second guild")
        thread = await sent.create_thread(name="a thread")
    assert guild.name == "Second Guild"
    assert {c.id for c in channels} == {second.channel_id, second.category_id}
    assert member.id == fake.member.id and member.roles == [guild.default_role]
    assert fake.channels[thread.id]["guild_id"] == str(second.id)
    assert fake.message(sent.id)["channel_id"] == str(second.channel_id)


async def test_an_invalid_shard_is_refused(fake: FakeDiscord) -> None:
    bot = commands.AutoShardedBot(
        command_prefix=(), intents=discord.Intents.default(), shard_count=2, shard_ids=[2]
    )
    try:
        await bot.login(fake.token)
        with pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(bot.connect(), 10)
    finally:
        await bot.close()
    assert closed.value.code == 4010
    assert fake.identifies == []


def test_identify_rate_violations_are_pairs_of_a_bucket_within_5_seconds() -> None:
    fake = FakeDiscord(max_concurrency=2)
    fake.identifies.extend(
        [
            Identify(at=0.0, shard_id=0, shard_count=4, bucket=0),
            Identify(at=0.1, shard_id=1, shard_count=4, bucket=1),  # another bucket: fine
            Identify(at=5.0, shard_id=2, shard_count=4, bucket=0),  # 5 s later: fine
            Identify(at=9.9, shard_id=3, shard_count=4, bucket=1),  # 9.8 s later: fine
            Identify(at=9.0, shard_id=0, shard_count=4, bucket=0),  # 4 s after shard 2
        ]
    )
    [(earlier, later)] = fake.identify_rate_violations()
    assert (earlier.at, later.at) == (5.0, 9.0)
