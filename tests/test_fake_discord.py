"""The local Discord stand-in, driven by the real discord.py client through our endpoint override.

Each test runs a plain ``commands.Bot`` in the test's event loop against a fresh fake, so what is
proven here is what the bot will meet: discord.py's own requests, parsing and retries.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from discord_side.endpoint import (
    DISCORD_API_BASE,
    DISCORD_GATEWAY,
    DiscordEndpointError,
    point_discord_at,
    restore_discord_defaults,
)
from tests.fakes.discord import FakeDiscord, Intent, MessageFlag, image_size

REROLL_ID = "probe:reroll"
DONE_ID = "probe:done"


def png(width: int, height: int) -> bytes:
    """A real (tiny, black) PNG, so the fake can read its size like Discord does."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class Seen:
    """What the bot's handlers saw, one queue per kind, for the test to await."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)

    def put(self, kind: str, value: Any) -> None:
        self._queues[kind].put_nowait(value)

    async def get(self, kind: str, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self._queues[kind].get(), timeout)


class ProbeView(discord.ui.View):
    """A persistent view: registered once at start-up, answers clicks on any message."""

    def __init__(self, seen: Seen) -> None:
        super().__init__(timeout=None)
        self.seen = seen

    @discord.ui.button(label="Reroll", style=discord.ButtonStyle.primary, custom_id=REROLL_ID)
    async def reroll(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await interaction.response.send_message("rerolling", ephemeral=True)
        self.seen.put("button", interaction)

    @discord.ui.button(label="Done", custom_id=DONE_ID)
    async def done(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.edit_message(content="finished", view=None)  # type 7
        self.seen.put("done", interaction)


def build_bot(fake: FakeDiscord, seen: Seen) -> commands.Bot:
    # guild_ready_timeout: on_ready fires this long after the last GUILD_CREATE (2 s by default).
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=discord.Intents.default(),
        guild_ready_timeout=0.05,
    )

    @app_commands.command(name="video", description="Make a video from references")
    @app_commands.describe(prompt="What happens", image="First reference", extra="Another one")
    async def video(
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment,
        extra: discord.Attachment | None = None,
    ) -> None:
        await interaction.response.defer(thinking=True)
        data = await image.read()
        await interaction.followup.send(f"{prompt}: {image.filename} {len(data)} bytes")
        seen.put("video", (interaction, image, extra, data))

    @app_commands.command(name="slow", description="Waits before answering")
    async def slow(interaction: discord.Interaction) -> None:
        await seen.get("go")
        try:
            await interaction.response.defer()
        except discord.HTTPException as exc:
            seen.put("slow", exc)

    admin = app_commands.Group(name="admin", description="Moderator tools")
    quota = app_commands.Group(name="quota", description="Quotas", parent=admin)

    @quota.command(name="set", description="Set a member's daily seconds")
    async def quota_set(
        interaction: discord.Interaction, user: discord.Member, seconds: int
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        # Fills the ephemeral "thinking" message: ephemeral whatever this call asks for.
        await interaction.followup.send(f"quota for {user.name}: {seconds}s")
        await interaction.edit_original_response(content=f"{user.name}: {seconds}s per day")
        public = await interaction.followup.send("quotas changed", wait=True)
        seen.put("admin", (interaction, user, seconds, public))

    guild = discord.Object(fake.guild_id)
    bot.tree.add_command(video, guild=guild)
    bot.tree.add_command(slow, guild=guild)
    bot.tree.add_command(admin, guild=guild)

    @bot.event
    async def on_message(message: discord.Message) -> None:
        seen.put("message", message)

    @bot.event
    async def on_thread_create(thread: discord.Thread) -> None:
        seen.put("thread", thread)

    @bot.event
    async def on_guild_update(before: discord.Guild, after: discord.Guild) -> None:
        seen.put("guild_update", after)

    return bot


@dataclass
class Harness:
    fake: FakeDiscord
    bot: commands.Bot
    seen: Seen

    @property
    def channel(self) -> discord.TextChannel:
        channel = self.bot.get_channel(self.fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        return channel


@pytest.fixture
async def harness(fake: FakeDiscord) -> AsyncIterator[Harness]:
    seen = Seen()
    bot = build_bot(fake, seen)
    task: asyncio.Task[None] | None = None
    try:
        await point_discord_at(fake.api_base, fake.token)
        await bot.login(fake.token)
        bot.add_view(ProbeView(seen))
        task = asyncio.create_task(bot.connect())
        await fake.wait_until_ready()
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        yield Harness(fake, bot, seen)
    finally:
        await bot.close()
        if task is not None:
            await asyncio.wait_for(task, 5)
        restore_discord_defaults()


# ------------------------------------------------------------------------------- endpoint


async def test_endpoint_override_patches_rest_and_gateway(fake: FakeDiscord) -> None:
    try:
        gateway = await point_discord_at(fake.api_base + "/", fake.token)
        assert gateway == yarl.URL(fake.gateway_url)
        assert fake.api_base == Route.BASE
        assert gateway == DiscordWebSocket.DEFAULT_GATEWAY
        assert fake.calls_to("GET", "/gateway/bot")[0].authorized

        # Discord's own base restores the defaults without any request.
        calls = len(fake.calls)
        assert await point_discord_at(DISCORD_API_BASE, "unused") is None
        assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == (DISCORD_API_BASE, DISCORD_GATEWAY)
        assert len(fake.calls) == calls
    finally:
        restore_discord_defaults()


async def test_endpoint_override_fails_closed_without_leaking_the_token(fake: FakeDiscord) -> None:
    with pytest.raises(DiscordEndpointError) as caught:
        await point_discord_at(fake.api_base, "not-the-token")
    assert "401" in str(caught.value) and "not-the-token" not in str(caught.value)
    assert Route.BASE == DISCORD_API_BASE
    with pytest.raises(ValueError):
        await point_discord_at("ftp://example.com", fake.token)


async def test_a_request_cut_off_by_its_client_is_dropped_not_a_fault(fake: FakeDiscord) -> None:
    # What a bot stopped mid-upload leaves: headers and part of a body, then a closed socket.
    port = yarl.URL(fake.api_base).port
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    route = f"/channels/{fake.channel_id}/messages"
    path = yarl.URL(fake.api_base).path + route
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bot {fake.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
    )
    await writer.drain()
    await fake.wait_for(lambda: fake.calls_to("POST", route), what="the call")
    writer.close()
    [dropped] = await fake.wait_for(lambda: fake.dropped, what="the drop")
    assert dropped.status == 0 and fake.server_errors == []  # the fixture checks again


# ------------------------------------------------------------------------------- the bot


async def test_login_ready_and_guild_create(harness: Harness) -> None:
    fake, bot = harness.fake, harness.bot
    assert bot.user is not None and bot.user.id == fake.bot_user.id
    assert bot.application_id == fake.application_id
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.me is not None
    assert {c.name for c in guild.text_channels} == {"general", "videos"}
    assert guild.get_role(fake.moderator_role_id) is not None
    assert guild.filesize_limit == fake.upload_limit == 10 * 1024 * 1024
    for route in ("/users/@me", "/oauth2/applications/@me"):
        assert fake.calls_to("GET", route)[0].status == 200
    # discord.py asks for zlib-stream; the fake answers in it (binary, Z_SYNC_FLUSH-terminated).
    assert fake.gateway_queries == [{"v": "10", "encoding": "json", "compress": "zlib-stream"}]
    identify = next(op for op in fake.gateway_received if op["op"] == 2)
    assert identify["d"]["token"] == "<redacted>"
    assert identify["d"]["intents"] == discord.Intents.default().value
    assert fake.unhandled == []


async def test_slash_command_with_attachments_defer_and_follow_up(harness: Harness) -> None:
    fake, bot, seen = harness.fake, harness.bot, harness.seen
    synced = await bot.tree.sync(guild=discord.Object(fake.guild_id))
    assert {c.name for c in synced} == {"video", "slow", "admin"}
    stored = fake.find_command("video")
    assert stored is not None and stored["guild_id"] == str(fake.guild_id)
    assert [o["type"] for o in stored["options"]] == [3, 11, 11]
    assert fake.command_creations[fake.guild_id] == 3
    await bot.tree.sync(guild=discord.Object(fake.guild_id))
    assert fake.command_creations[fake.guild_id] == 3  # a re-sync updates, creates nothing

    image = fake.register_file(png(4, 3), "ref one.png")
    extra = fake.register_file(b"\x00" * 64, "clip.mp4", width=640, height=360, duration_secs=2.5)
    iid = await fake.dispatch_slash_command(
        "video", {"prompt": "a cat", "image": image, "extra": extra}, user=fake.moderator
    )
    interaction, got_image, got_extra, data = await seen.get("video")

    assert interaction.id == iid and interaction.user.id == fake.moderator.id
    assert interaction.permissions.manage_guild and interaction.guild_id == fake.guild_id
    assert (got_image.filename, got_image.width, got_image.height) == ("ref_one.png", 4, 3)
    assert got_image.ephemeral and got_image.content_type == "image/png"
    assert data == png(4, 3)
    assert (got_extra.duration, got_extra.width) == (2.5, 640)

    record = fake.interactions[iid]
    assert record.response_type == 5 and record.loading
    callback = fake.calls_to("POST", "/interactions/{id}/{token}/callback")[0]
    assert callback.query == {"with_response": "1"}
    assert fake.calls_to("POST", "/webhooks/{app}/{token}")[0].query["wait"] == "1"
    # The first follow-up after a "thinking" defer fills the deferred message itself.
    [shown] = fake.interaction_messages(iid)
    assert shown["content"] == f"a cat: ref_one.png {len(data)} bytes"
    assert shown["flags"] & (MessageFlag.LOADING | MessageFlag.EPHEMERAL) == 0
    assert shown["interaction_metadata"]["user"]["id"] == str(fake.moderator.id)


async def test_interaction_answered_too_late_is_unknown(harness: Harness) -> None:
    fake, bot, seen = harness.fake, harness.bot, harness.seen
    await bot.tree.sync(guild=discord.Object(fake.guild_id))
    await fake.dispatch_slash_command("slow")
    fake.advance_clock(fake.response_window + 1)
    seen.put("go", None)
    error = await seen.get("slow")
    assert isinstance(error, discord.NotFound) and error.code == 10062


async def test_upload_thread_and_post_in_thread(harness: Harness) -> None:
    fake, seen, channel = harness.fake, harness.seen, harness.channel
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(2000)
    sent = await channel.send("done", file=discord.File(io.BytesIO(video), "result.mp4"))

    upload = fake.calls_to("POST", "/channels/{channel_id}/messages")[-1]
    assert [(f.field, f.filename, f.size) for f in upload.files] == [
        ("files[0]", "result.mp4", 2000 + 12)
    ]
    assert upload.json["attachments"] == [{"id": 0, "filename": "result.mp4"}]
    stored = fake.message(sent.id)
    assert stored["attachments"][0]["size"] == len(video)
    assert stored["attachments"][0]["content_type"] == "video/mp4"
    assert await sent.attachments[0].read() == video  # served by the fake CDN

    # As DISCORD_NOTES advise: create through the channel, from a message reference.
    thread = await channel.create_thread(name="result", message=discord.Object(sent.id))
    assert thread.id == sent.id and fake.threads[sent.id]["type"] == 11
    assert (await seen.get("thread")).id == sent.id  # THREAD_CREATE reached the bot's cache
    await thread.send("reference kept here")
    [in_thread] = fake.channel_messages(thread.id)
    assert in_thread["content"] == "reference kept here"
    with pytest.raises(discord.HTTPException) as twice:
        await channel.create_thread(name="again", message=discord.Object(sent.id))
    assert twice.value.code == 160004


async def test_button_on_persistent_view_and_ephemeral_answer(harness: Harness) -> None:
    fake, seen, channel = harness.fake, harness.seen, harness.channel
    sent = await channel.send("video ready", view=ProbeView(seen))
    iid = await fake.click_button(sent.id, REROLL_ID, user=fake.member)
    interaction = await seen.get("button")
    assert interaction.id == iid and interaction.message.id == sent.id
    assert not interaction.permissions.manage_guild

    record = fake.interactions[iid]
    assert (record.response_type, record.ephemeral) == (4, True)
    [answer] = fake.interaction_messages(iid)
    assert answer["content"] == "rerolling" and answer["flags"] & MessageFlag.EPHEMERAL
    assert answer not in fake.channel_messages(fake.channel_id)
    with pytest.raises(discord.NotFound):  # only the token can reach an ephemeral message
        await channel.fetch_message(int(answer["id"]))


async def test_reply_arrives_with_content_only_when_it_pings_the_bot(harness: Harness) -> None:
    fake, seen, channel = harness.fake, harness.seen, harness.channel
    sent = await channel.send("video ready")
    assert (await seen.get("message")).id == sent.id  # the bot sees its own message

    await fake.post_message(fake.channel_id, "make it blue", message_reference=sent.id)
    reply = await seen.get("message")
    assert reply.content == "make it blue" and reply.reference.message_id == sent.id
    assert reply.author.id == fake.member.id

    # No Message Content intent: a message that does not ping the bot arrives empty.
    await fake.post_message(fake.channel_id, "just chatting")
    chatter = await seen.get("message")
    assert chatter.content == "" and fake.message(chatter.id)["content"] == "just chatting"


async def test_attachment_urls_expire_and_refresh(harness: Harness) -> None:
    fake, bot, channel = harness.fake, harness.bot, harness.channel
    sent = await channel.send(file=discord.File(io.BytesIO(png(2, 2)), "ref.png"))
    old_url = sent.attachments[0].url
    fake.advance_clock(2 * 24 * 3600)
    with pytest.raises(discord.NotFound):
        await sent.attachments[0].read()

    route = Route("POST", "/attachments/refresh-urls")
    answer = await bot.http.request(route, json={"attachment_urls": [old_url]})
    [pair] = answer["refreshed_urls"]
    assert pair["original"] == old_url and pair["refreshed"] != old_url
    assert await bot.http.get_from_cdn(pair["refreshed"]) == png(2, 2)

    # Fetching the message also returns working links (documented Discord behaviour).
    fetched = await channel.fetch_message(sent.id)
    assert await fetched.attachments[0].read() == png(2, 2)


async def test_rate_limited_request_is_retried_by_discord_py(harness: Harness) -> None:
    fake, channel = harness.fake, harness.channel
    fake.rate_limit_next("POST", "/channels/{channel_id}/messages", retry_after=0.01)
    sent = await channel.send("after a 429")
    statuses = [c.status for c in fake.calls_to("POST", "/channels/{channel_id}/messages")]
    assert statuses == [429, 200]
    assert [m["id"] for m in fake.channel_messages(fake.channel_id)] == [str(sent.id)]


async def test_thread_creation_forbidden(harness: Harness) -> None:
    fake, channel = harness.fake, harness.channel
    sent = await channel.send("video ready")
    fake.forbid_thread_creation()
    with pytest.raises(discord.Forbidden) as caught:
        await channel.create_thread(name="result", message=discord.Object(sent.id))
    assert caught.value.code == 50013
    thread = await channel.create_thread(name="result", message=discord.Object(sent.id))
    assert thread.id == sent.id


async def test_upload_too_large_and_server_error(harness: Harness) -> None:
    fake, channel = harness.fake, harness.channel
    fake.upload_limit = 1024
    with pytest.raises(discord.HTTPException) as too_large:
        await channel.send(file=discord.File(io.BytesIO(bytes(2048)), "big.mp4"))
    assert (too_large.value.status, too_large.value.code) == (413, 40005)

    fake.upload_limit = None
    await fake.set_premium_tier(2)
    guild = await harness.seen.get("guild_update")
    assert guild.filesize_limit == fake.upload_limit == 50 * 1024 * 1024
    fake.fail_uploads(status=503)
    with pytest.raises(discord.DiscordServerError):
        await channel.send(file=discord.File(io.BytesIO(bytes(16)), "small.mp4"))
    assert fake.channel_messages(fake.channel_id) == []
    await channel.send("text still works")  # the fault only hit the upload


async def test_nonce_returns_the_earlier_message(harness: Harness) -> None:
    fake, channel = harness.fake, harness.channel
    first = await channel.send("delivered", nonce="job-42")
    again = await channel.send("delivered", nonce="job-42")
    assert again.id == first.id and len(fake.channel_messages(fake.channel_id)) == 1


async def test_gateway_drop_resumes_and_replays_missed_events(harness: Harness) -> None:
    fake, seen = harness.fake, harness.seen
    await fake.drop_gateway(code=4000)
    await fake.wait_for(lambda: not fake.connected, what="the drop")
    missed = await fake.post_message(fake.channel_id, f"{fake.bot_user.mention} still there?")
    await fake.wait_for(lambda: fake.resume_count == 1 and fake.connected, what="a RESUME")
    got = await seen.get("message")
    assert got.id == int(missed["id"]) and got.content.endswith("still there?")
    assert fake.identify_count == 1


async def test_member_chunk_and_unknown_endpoint(harness: Harness) -> None:
    fake, bot = harness.fake, harness.bot
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.get_member(fake.moderator.id) is None  # not in GUILD_CREATE
    [moderator] = await guild.query_members(user_ids=[fake.moderator.id])
    assert moderator.guild_permissions.manage_guild
    member = await guild.fetch_member(fake.member.id)
    assert member.name == "alice"

    with pytest.raises(discord.NotFound):
        await bot.http.request(Route("GET", "/channels/{channel_id}/pins", channel_id=1))
    assert [c.path for c in fake.unhandled] == ["/channels/1/pins"]


async def test_subcommand_group_ephemeral_defer_and_original_edit(harness: Harness) -> None:
    fake, bot, seen = harness.fake, harness.bot, harness.seen
    await bot.tree.sync(guild=discord.Object(fake.guild_id))
    iid = await fake.dispatch_slash_command(
        "admin quota set", {"user": fake.member, "seconds": 90}, user=fake.moderator
    )
    interaction, user, seconds, public = await seen.get("admin")
    assert (user.id, seconds) == (fake.member.id, 90)
    assert (
        interaction.command is not None and interaction.command.qualified_name == "admin quota set"
    )

    original, announced = fake.interaction_messages(iid)
    assert original["content"] == "alice: 90s per day" and original["flags"] & MessageFlag.EPHEMERAL
    assert original["edited_timestamp"] is not None
    assert announced["id"] == str(public.id) and not announced["flags"] & MessageFlag.EPHEMERAL
    assert fake.channel_messages(fake.channel_id) == [announced]

    # The fake refuses what Discord could never send for a synced command.
    with pytest.raises(ValueError, match="no subcommand"):
        await fake.dispatch_slash_command("admin quota nope")
    with pytest.raises(ValueError, match="required options missing"):
        await fake.dispatch_slash_command("admin quota set", {"seconds": 5})


async def test_every_answer_to_an_interaction_is_heard_as_it_arrives(harness: Harness) -> None:
    """``on_interaction_response`` hears each answer in order, even one refused as too late."""
    fake, bot, seen = harness.fake, harness.bot, harness.seen
    heard: list[tuple[int, str]] = []
    fake.on_interaction_response.append(lambda record, kind: heard.append((record.id, kind)))
    await bot.tree.sync(guild=discord.Object(fake.guild_id))

    iid = await fake.dispatch_slash_command(
        "admin quota set", {"user": fake.member, "seconds": 90}, user=fake.moderator
    )
    await seen.get("admin")
    # The thinking defer, the follow-up that fills it, the edit, the public follow-up.
    assert heard == [(iid, "callback"), (iid, "followup"), (iid, "edit"), (iid, "followup")]

    late = await fake.dispatch_slash_command("slow")
    fake.advance_clock(fake.response_window + 1)
    seen.put("go", None)
    assert isinstance(await seen.get("slow"), discord.NotFound)
    assert heard[-1] == (late, "callback") and fake.interactions[late].response_type is None


async def test_component_update_then_channel_edit_and_delete(harness: Harness) -> None:
    fake, seen, channel = harness.fake, harness.seen, harness.channel
    sent = await channel.send(
        "rendering", view=ProbeView(seen), file=discord.File(io.BytesIO(b"x" * 10), "a.mp4")
    )
    await fake.click_button(sent.id, DONE_ID)
    await seen.get("done")
    stored = fake.message(sent.id)
    assert (stored["content"], stored["components"]) == ("finished", [])

    edited = await sent.edit(content="finished (edited)")
    assert edited.edited_at is not None and fake.message(sent.id)["content"] == "finished (edited)"
    url = fake.message(sent.id)["attachments"][0]["url"]
    await sent.delete()
    assert sent.id in fake.deleted_messages and sent.id not in fake.messages
    with pytest.raises(discord.NotFound):  # a deleted message's files go with it
        await harness.bot.http.get_from_cdn(url)


async def test_members_intent_chunks_the_guild_at_start() -> None:
    async with FakeDiscord() as fake:
        intents = discord.Intents.default()
        intents.members = True
        bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        task: asyncio.Task[None] | None = None
        try:
            await point_discord_at(fake.api_base, fake.token)
            await bot.login(fake.token)
            task = asyncio.create_task(bot.connect())
            await asyncio.wait_for(bot.wait_until_ready(), 5)
            guild = bot.get_guild(fake.guild_id)
            assert guild is not None and guild.chunked
            moderator = guild.get_member(fake.moderator.id)
            assert moderator is not None and moderator.guild_permissions.manage_guild
            assert any(op["op"] == 8 for op in fake.gateway_received)
        finally:
            await bot.close()
            restore_discord_defaults()
            if task is not None:
                await asyncio.wait_for(task, 5)


def test_image_size_reads_headers() -> None:
    assert image_size(png(7, 5)) == (7, 5)
    assert image_size(b"GIF89a" + struct.pack("<HH", 9, 4)) == (9, 4)
    assert image_size(b"not an image") is None


async def test_privileged_intent_not_enabled_is_refused() -> None:
    async with FakeDiscord(allowed_privileged_intents=0) as fake:
        intents = discord.Intents.default()
        intents.message_content = True
        bot = commands.Bot(command_prefix="!", intents=intents)
        try:
            await point_discord_at(fake.api_base, fake.token)
            await bot.login(fake.token)
            # Close code 4014; discord.py names it only on its reconnecting path.
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(bot.connect(reconnect=True), 5)
        finally:
            await bot.close()
            restore_discord_defaults()
        assert fake.identify_count == 0
        identify = next(op for op in fake.gateway_received if op["op"] == 2)
        assert identify["d"]["intents"] & Intent.MESSAGE_CONTENT


# ------------------------------------------------------------------------------- thread faults


async def started_thread(harness: Harness) -> tuple[discord.Message, discord.Thread]:
    sent = await harness.channel.send("video ready")
    thread = await harness.channel.create_thread(name="result", message=discord.Object(sent.id))
    await harness.seen.get("thread")
    return sent, thread


async def test_thread_creation_at_the_servers_limit(harness: Harness) -> None:
    fake, channel = harness.fake, harness.channel
    sent = await channel.send("video ready")
    fake.refuse_thread_creation_at_limit()
    with pytest.raises(discord.HTTPException) as caught:
        await channel.create_thread(name="result", message=discord.Object(sent.id))
    assert (caught.value.status, caught.value.code) == (400, 160006)
    thread = await channel.create_thread(name="result", message=discord.Object(sent.id))
    assert thread.id == sent.id


async def test_a_deleted_thread_is_gone_for_discord_py_and_the_api(harness: Harness) -> None:
    fake, bot = harness.fake, harness.bot
    sent, thread = await started_thread(harness)
    inside = await thread.send("kept files")
    deleted = asyncio.create_task(bot.wait_for("raw_thread_delete"))

    await fake.delete_thread(thread.id)

    await asyncio.wait_for(deleted, 5)
    assert harness.channel.guild.get_thread(thread.id) is None
    with pytest.raises(discord.NotFound) as caught:
        await thread.send("too late")
    assert caught.value.code == 10003
    assert int(inside.id) in fake.deleted_messages
    assert fake.message(sent.id)["flags"] & MessageFlag.HAS_THREAD == 0  # the starter stays


async def test_a_locked_thread_refuses_posts_and_edits(harness: Harness) -> None:
    fake, bot = harness.fake, harness.bot
    _sent, thread = await started_thread(harness)
    status = await thread.send("status")
    updated = asyncio.create_task(bot.wait_for("raw_thread_update"))

    await fake.archive_thread(thread.id, locked=True)

    await asyncio.wait_for(updated, 5)
    assert harness.channel.guild.get_thread(thread.id) is None  # discord.py drops archived ones
    for attempt in (thread.send("hello"), status.edit(content="edited")):
        with pytest.raises(discord.HTTPException) as caught:
            await attempt
        assert (caught.value.status, caught.value.code) == (400, 50083)


async def test_a_post_unarchives_a_thread_after_the_message(harness: Harness) -> None:
    fake, bot = harness.fake, harness.bot
    _sent, thread = await started_thread(harness)
    archived = asyncio.create_task(bot.wait_for("raw_thread_update"))
    await fake.archive_thread(thread.id)
    await asyncio.wait_for(archived, 5)
    unarchived = asyncio.create_task(bot.wait_for("thread_join"))

    posted = await fake.post_message(thread.id, f"{fake.bot_user.mention} wake up")

    message = await harness.seen.get("message")
    while message.id != int(posted["id"]):  # the bot's own posts came first
        message = await harness.seen.get("message")
    # The message came before the thread's update: discord.py did not know the thread yet.
    assert not isinstance(message.channel, discord.Thread)
    assert message.channel.id == thread.id
    joined = await asyncio.wait_for(unarchived, 5)
    assert joined.id == thread.id and not joined.archived
    assert not fake.threads[thread.id]["thread_metadata"]["archived"]


async def test_dms_reach_members_unless_they_closed_them(harness: Harness) -> None:
    fake, bot = harness.fake, harness.bot
    member = await harness.channel.guild.fetch_member(fake.member.id)
    await member.send("about your reply")
    assert [m["content"] for m in fake.dm_messages(fake.member)] == ["about your reply"]

    fake.close_dms(fake.moderator)
    channel = await bot.create_dm(discord.Object(fake.moderator.id))
    with pytest.raises(discord.Forbidden) as caught:
        await channel.send("hello")
    assert caught.value.code == 50007
    assert fake.dm_messages(fake.moderator) == []
