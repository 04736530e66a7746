"""The Discord face of /video, replies, buttons and delivery, driven with spec'd discord.py fakes.

The core behind it is real (settings, store, quota, service); the tracker is not started, so no
API call can happen: "nothing was spent" is checked in the store's ledger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from unittest.mock import AsyncMock, MagicMock
from urllib.parse import urlsplit

import aiohttp
import discord
import pytest

from cogs.video import VideoCommand, VideoReplies
from core.errors import UserError
from core.jobs import Job, JobOrigin, JobState
from core.media import DownloadedVideo, MediaTooLarge
from core.sniffing import Sniffer
from core.store import UserOverride, utc_day
from discord_side import presenter
from discord_side.actions import VideoActions
from discord_side.delivery import NO_THREAD_NOTE, DiscordDelivery, NowhereToPost
from discord_side.errors import report_error
from discord_side.inputs import split_reply_attachments
from discord_side.places import MOVED_NOTES, TOO_MANY_THREADS_NOTE, Refusal
from discord_side.privately import NO_DM_NOTE
from tests.discord_mocks import (
    BotHarness,
    forbidden,
    http_error,
    last_reply,
    make_attachment,
    make_component_interaction,
    make_dm_channel,
    make_guild,
    make_interaction,
    make_member,
    make_message,
    make_partial_channel,
    make_role,
    make_text_channel,
    make_thread,
    move_job,
    next_id,
    not_found,
    open_harness,
    was_deferred,
)
from tests.e2e.harness import GIF, MP3, mp4, png

# What a file holds when a test does not say otherwise: what its name claims.
SAMPLE_BYTES = {
    ".png": png(320, 320),
    ".gif": GIF,
    ".mp4": mp4(),
    ".mp3": MP3,
    ".ogg": b"OggS\x00\x02" + bytes(64),
    ".txt": b"just some words\n",
}


class MemorySniffer(Sniffer):
    """The real sniffer with the CDN replaced by memory: ``files`` by URL, else sample bytes
    for the name's extension. ``reads`` lists every URL read, in order."""

    def __init__(self) -> None:
        super().__init__(MagicMock(spec=aiohttp.ClientSession))
        self.files: dict[str, bytes] = {}
        self.reads: list[str] = []

    async def read_head(self, url: str) -> bytes:
        self.reads.append(url)
        if url in self.files:
            return self.files[url][: self.head_bytes]
        return SAMPLE_BYTES.get(PurePosixPath(urlsplit(url).path).suffix, b"")


@dataclass
class World:
    harness: BotHarness
    guild: MagicMock
    channel: MagicMock
    alice: MagicMock
    bob: MagicMock
    moderator: MagicMock
    me: MagicMock
    sniffer: MemorySniffer
    dms: dict[int, MagicMock] = field(default_factory=dict)  # the bot's DM channels, by user
    # What the bot's setup_hook makes (delivery, actions) and the video extension's cogs.
    actions: VideoActions = field(init=False)
    command: VideoCommand = field(init=False)
    replies: VideoReplies = field(init=False)

    @property
    def delivery(self) -> DiscordDelivery:
        return self.actions.delivery

    @property
    def store(self) -> Any:
        return self.harness.store

    async def ledger(self) -> list[tuple[str, int, int]]:
        entries = await self.store.ledger_entries(
            self.guild.id, since_day=utc_day(self.harness.clock())
        )
        return [(e.kind, e.user_id, e.seconds) for e in entries]

    async def jobs(self) -> list[Job]:
        return await self.harness.store.jobs_in_guild(self.guild.id, limit=100)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_harness(tmp_path / "db.sqlite3") as harness:
        guild = make_guild()
        channel = make_text_channel(guild)
        me = make_member(guild, name="WanBot", bot=True, permissions=discord.Permissions.all())
        guild.me = me
        mod_role = make_role(guild, permissions=discord.Permissions(manage_guild=True))
        world = World(
            harness=harness,
            guild=guild,
            channel=channel,
            alice=make_member(guild, name="alice"),
            bob=make_member(guild, name="bob"),
            moderator=make_member(guild, name="mod", roles=[mod_role]),
            me=me,
            sniffer=MemorySniffer(),
        )
        bot = harness.bot
        bot.user.id = me.id
        bot.get_channel.side_effect = guild.get_channel_or_thread

        async def fetch_channel(channel_id: int) -> Any:
            found = guild.get_channel_or_thread(channel_id)
            if found is None:
                raise not_found()  # deleted, as Discord answers
            return found

        bot.fetch_channel = AsyncMock(side_effect=fetch_channel)

        async def create_dm(user: Any) -> MagicMock:
            if user.id not in world.dms:
                world.dms[user.id] = make_dm_channel(guild.get_member(user.id))
            return world.dms[user.id]

        bot.create_dm = AsyncMock(side_effect=create_dm)
        bot.http = MagicMock(spec=discord.http.HTTPClient)
        # Discord hands out fresh links: the same URL with a new signature.
        bot.http.request = AsyncMock(
            side_effect=lambda route, json: {
                "refreshed_urls": [
                    {"original": url, "refreshed": url + "&fresh=1"}
                    for url in json["attachment_urls"]
                ]
            }
        )
        # What the bot's setup_hook does, then the video extension's setup.
        delivery = DiscordDelivery(bot, edit_interval=0)
        world.actions = VideoActions(bot, delivery)
        world.actions.sniffer = world.sniffer
        bot.actions = world.actions
        harness.tracker.set_events(delivery)
        world.command = VideoCommand(bot, world.actions)
        world.replies = VideoReplies(bot, world.actions)
        yield world
        await harness.tracker.notices_sent()
        await delivery.close()


def image(name: str = "cat.png", **kwargs: Any) -> MagicMock:
    return make_attachment(filename=name, content_type="image/png", **kwargs)


def video(name: str = "clip.mp4", size: int = 5_000_000) -> MagicMock:
    return make_attachment(
        filename=name, content_type="video/mp4", size=size, width=1280, height=720
    )


def voice(name: str = "hello.mp3") -> MagicMock:
    return make_attachment(
        filename=name, content_type="audio/mpeg", size=200_000, width=None, height=None
    )


async def run_video(world: World, interaction: MagicMock, **options: Any) -> BaseException | None:
    """Invoke /video as discord.py would; errors go through the tree's one policy."""
    options.setdefault("prompt", "Image 1 waves")
    options.setdefault("ref1", image())
    callback: Any = world.command.video.callback  # discord.py passes the cog as `self`
    try:
        await callback(world.command, interaction, **options)
    except Exception as exc:
        await report_error(interaction, exc)
        return exc
    return None


def interaction_for(world: World, member: MagicMock, **kwargs: Any) -> MagicMock:
    return make_interaction(member, channel=world.channel, client=world.harness.bot, **kwargs)


# ----------------------------------------------------------------- /video


async def test_video_builds_the_api_lists_and_posts_a_status_message_with_a_thread(
    world: World,
) -> None:
    interaction = interaction_for(world, world.alice)
    clip, cat, dog, meow = video(), image("cat.png"), image("dog.png"), voice("meow.mp3")
    error = await run_video(
        world,
        interaction,
        prompt="Video 1 juggles while Image 1 and Image 2 watch",
        ref1=clip,
        ref2=cat,
        ref3=dog,
        voice2=meow,
        duration=6,
        seed=42,
        resolution="720P",
    )
    assert error is None
    assert was_deferred(interaction, ephemeral=True)
    [job] = await world.jobs()
    body = job.request.to_json()
    assert body["image_urls"] == [{"url": cat.url, "reference_voice": meow.url}, {"url": dog.url}]
    assert body["video_urls"] == [{"url": clip.url}]
    assert body["duration"] == 6 and body["seed"] == 42 and body["resolution"] == "720P"
    assert [ref.label for ref in job.references] == ["Video 1", "Image 1", "Image 2"]
    # The user privately sees the label map; the channel gets a public status message + thread.
    reply = last_reply(interaction)
    assert reply.ephemeral and "ref 2 → Image 1" in reply.text and "ref 1 → Video 1" in reply.text
    status = world.channel.send.await_args
    assert status is not None and status.kwargs["embed"].title == f"🎬 Video job {job.id}"
    stored = await world.store.get_job(job.id)
    assert stored.status_message_id is not None and stored.thread_id is not None
    assert await world.ledger() == [("reserve", world.alice.id, 6)]
    # Handed to the tracker: the next claim takes it and queues its create.
    assert await world.harness.tracker.claims.claim() == 1
    assert world.harness.tracker.stats()["scheduled"] == 1


async def test_an_omitted_seed_is_chosen_so_the_delivery_can_show_it(world: World) -> None:
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    assert job.request.seed is not None
    assert f"seed {job.request.seed}" in presenter.settings_line(job.request)


BAD_INPUTS = [
    ({"ref1": make_attachment(filename="a.gif", content_type="image/gif")}, "GIF"),
    ({"ref1": image(width=100, height=100)}, "240"),
    ({"ref1": image(size=25_000_000)}, "20 MB"),
    ({"ref1": video(size=150_000_000), "prompt": "Video 1 runs"}, "100 MB"),
    ({"voice1": image("notavoice.png")}, "voice 1"),
    ({"voice4": voice()}, "ref 4"),
    ({"prompt": "Image 3 dances"}, "Image 3"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "Image 1 " + "x" * 5000}, "5000"),
    ({"negative_prompt": "n" * 501}, "500"),
    ({"aspect_ratio": "21:9"}, "21:9"),
    ({"ref1": make_attachment(filename="notes.txt", content_type="text/plain")}, "notes.txt"),
    ({"start_image": video("start.mp4")}, "start"),
]


@pytest.mark.parametrize(("options", "expected"), BAD_INPUTS)
async def test_bad_input_gets_a_specific_private_message_and_costs_nothing(
    world: World, options: dict[str, Any], expected: str
) -> None:
    interaction = interaction_for(world, world.alice)
    error = await run_video(world, interaction, **options)
    assert error is not None
    reply = last_reply(interaction)
    assert reply.ephemeral
    assert expected.lower() in reply.text.lower()
    assert "Nothing was charged" in reply.text
    assert await world.jobs() == []
    assert await world.ledger() == []


async def test_all_problems_are_reported_at_once(world: World) -> None:
    interaction = interaction_for(world, world.alice)
    await run_video(
        world,
        interaction,
        prompt="Image 4 jumps",
        ref1=image(size=25_000_000),
        ref2=video(size=150_000_000),
        negative_prompt="n" * 600,
    )
    text = last_reply(interaction).text
    assert "20 MB" in text and "100 MB" in text and "Image 4" in text and "500" in text


async def test_missing_bot_permissions_are_named_before_anything_is_spent(world: World) -> None:
    interaction = interaction_for(
        world, world.alice, app_permissions=discord.Permissions(send_messages=True)
    )
    await run_video(world, interaction)
    text = last_reply(interaction).text
    assert "Embed Links" in text and "Attach Files" in text
    assert await world.jobs() == []


async def test_quota_and_concurrency_refusals_are_private_and_free(world: World) -> None:
    for _ in range(2):
        assert await run_video(world, interaction_for(world, world.alice), duration=5) is None
    interaction = interaction_for(world, world.alice)
    await run_video(world, interaction)
    assert "already have 2" in last_reply(interaction).text
    assert len(await world.jobs()) == 2
    await world.store.save_user_override(
        UserOverride(world.guild.id, world.bob.id, daily_seconds=3), world.harness.clock()
    )
    interaction = interaction_for(world, world.bob)
    await run_video(world, interaction, duration=5)
    assert "costs 5 s of your daily quota but you have 3 s left" in last_reply(interaction).text
    assert len(await world.jobs()) == 2
    assert [kind for kind, user, _ in await world.ledger() if user == world.bob.id] == []


async def test_banned_and_paused_are_refused(world: World) -> None:
    clock = world.harness.clock()
    await world.store.ban(world.guild.id, world.alice.id, "spam", world.moderator.id, clock)
    interaction = interaction_for(world, world.alice)
    await run_video(world, interaction)
    assert "not allowed" in last_reply(interaction).text and "spam" in last_reply(interaction).text
    settings = await world.store.guild_settings(world.guild.id)
    await world.store.save_guild_settings(
        replace(settings, paused=True, pause_reason="event"), clock
    )
    interaction = interaction_for(world, world.bob)
    await run_video(world, interaction)
    assert "paused" in last_reply(interaction).text
    assert await world.jobs() == []


# ----------------------------------------------------------------- threads and delivery


async def test_without_thread_permission_the_status_message_says_why(world: World) -> None:
    world.guild.me = make_member(
        world.guild, bot=True, permissions=discord.Permissions(send_messages=True)
    )
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    assert job.thread_id is None
    status = world.channel.send.await_args_list[0]
    assert status is not None
    # The status message (a fake) was edited with the note.
    message = await world.channel.fetch_message(job.status_message_id)
    note_edit = message.edit.await_args
    assert note_edit is not None
    assert any(field.value == NO_THREAD_NOTE for field in note_edit.kwargs["embed"].fields)


async def test_the_no_thread_note_stays_on_later_status_edits(world: World) -> None:
    world.guild.me = make_member(
        world.guild, bot=True, permissions=discord.Permissions(send_messages=True)
    )
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    message = await world.channel.fetch_message(job.status_message_id)
    world.channel.get_partial_message = MagicMock(return_value=message)
    await world.delivery.job_changed(await move_job(world.harness, job, JobState.RUNNING))
    await asyncio.gather(*list(world.delivery.edits.pending.values()))
    later = message.edit.await_args
    assert later is not None
    fields = {field.name: field.value for field in later.kwargs["embed"].fields}
    state, timing = fields["State"].splitlines()
    assert state == "🎨 Generating"
    assert timing.startswith("⏱️ started <t:")  # elapsed time; no ETA before the model knows
    assert fields["Note"] == NO_THREAD_NOTE


async def test_the_acceptance_is_shown_even_when_the_status_message_fails(world: World) -> None:
    async def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise discord.Forbidden(MagicMock(status=403, reason="Forbidden"), "Missing Access")

    world.channel.send.side_effect = refuse
    interaction = interaction_for(world, world.alice)
    await run_video(world, interaction)
    [job] = await world.jobs()
    # Accepted and charged: saying "went wrong, try again" would make the member pay twice.
    assert f"Accepted as job `{job.id}`" in last_reply(interaction).text
    assert job.status_message_id is None


async def test_status_edits_of_a_job_are_spaced_out(world: World) -> None:
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    message = await world.channel.fetch_message(job.status_message_id)
    world.channel.get_partial_message = MagicMock(return_value=message)
    delivery = DiscordDelivery(world.harness.bot, edit_interval=60)
    edits = message.edit.await_count

    await delivery.job_changed(await move_job(world.harness, job, JobState.SUBMITTED))
    await asyncio.gather(*list(delivery.edits.pending.values()))
    assert message.edit.await_count == edits + 1  # the first change shows at once
    running = await world.store.transition(job.id, JobState.RUNNING, world.harness.clock())
    assert running is not None
    await delivery.job_changed(running)
    for _ in range(20):  # ample turns for an edit that was not held back (all mocks, no I/O)
        await asyncio.sleep(0)

    assert message.edit.await_count == edits + 1  # the next one waits out the interval
    assert list(delivery.edits.pending) == [job.id]
    await delivery.close()


async def test_a_status_message_left_without_its_thread_gets_one_after_a_restart(
    world: World,
) -> None:
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    # As after a crash between posting the status message and starting its thread.
    await world.store.set_discord_ids(job.id, thread_id=None)
    message = await world.channel.fetch_message(job.status_message_id)
    world.channel.get_partial_message = MagicMock(return_value=message)
    posts = world.channel.send.await_count
    restarted = DiscordDelivery(world.harness.bot, edit_interval=0)

    updated = await restarted.ensure_status_message(job)

    assert updated.thread_id == job.status_message_id
    assert world.channel.send.await_count == posts  # no second status message
    message.create_thread.assert_awaited()


async def test_a_thread_made_before_a_crash_is_recognised(world: World) -> None:
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    await world.store.set_discord_ids(job.id, thread_id=None)
    message = await world.channel.fetch_message(job.status_message_id)
    already = discord.HTTPException(
        MagicMock(status=400, reason="Bad Request"),
        {"code": 160004, "message": "A thread has already been created for this message"},
    )
    message.create_thread = AsyncMock(side_effect=already)
    world.channel.get_partial_message = MagicMock(return_value=message)

    updated = await DiscordDelivery(world.harness.bot).ensure_status_message(job)

    assert updated.thread_id == job.status_message_id


async def test_a_forbidden_thread_creation_falls_back_to_the_channel(world: World) -> None:
    async def forbidden(*_args: Any, **_kwargs: Any) -> None:
        raise discord.Forbidden(MagicMock(status=403, reason="Forbidden"), "Missing Permissions")

    original_send = world.channel.send.side_effect

    async def send_and_forbid(*args: Any, **kwargs: Any) -> Any:
        message = await original_send(*args, **kwargs)
        message.create_thread = AsyncMock(side_effect=forbidden)
        return message

    world.channel.send.side_effect = send_and_forbid
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    assert job.thread_id is None and job.status_message_id is not None


class FakeSource:
    """A VideoSource stand-in: 'downloads' a small file, or says it is too large."""

    def __init__(self, tmp_path: Path, job: Job, size: int = 2048, too_large: bool = False):
        self.job = job
        self.url = "https://cdn.wan.example/video.mp4?token=exp=1900000000~hmac=ab"
        self.size = size
        self.too_large = too_large
        self.path = tmp_path / f"{job.id}.mp4"
        self.max_bytes: int | None = None

    def open(self, max_bytes: int) -> Any:
        source = self

        class Opened:
            async def __aenter__(self) -> DownloadedVideo:
                source.max_bytes = max_bytes
                if source.too_large:
                    raise MediaTooLarge(source.size, max_bytes)
                source.path.write_bytes(b"\0" * source.size)
                return DownloadedVideo(source.path, source.size, "video/mp4", "wan.mp4")

            async def __aexit__(self, *exc: object) -> None:
                source.path.unlink(missing_ok=True)

        return Opened()


async def completed_job(world: World) -> Job:
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    job = await move_job(world.harness, job, JobState.COMPLETED)
    return job


async def test_delivery_uploads_the_file_in_the_thread_with_buttons(
    world: World, tmp_path: Path
) -> None:
    job = await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    source = FakeSource(tmp_path, job)
    message_id = await world.delivery.deliver(job, source)  # type: ignore[arg-type]
    world.harness.bot.wait_until_ready.assert_awaited()  # the guild's upload limit is known
    call = thread.send.await_args
    assert call is not None
    assert call.kwargs["file"].filename == "wan.mp4"
    assert call.kwargs["nonce"] == job.delivery_nonce
    assert f"<@{world.alice.id}>" in call.args[0]
    custom_ids = [item.custom_id for item in call.kwargs["view"].children]
    assert custom_ids == [f"wan:reroll:{job.id}", f"wan:delete:{job.id}"]
    assert (await thread.fetch_message(message_id)).id == message_id  # posted in the thread
    # Downloads are capped at what the server accepts.
    assert source.max_bytes is not None and source.max_bytes < world.guild.filesize_limit
    assert not source.path.exists()  # the temporary file is gone
    # Counted as a file, with the time from "completed" to the post.
    metrics, completed_at = world.harness.bot.metrics, job.completed_at
    assert completed_at is not None
    assert metrics.value("wanbot_deliveries_total", {"outcome": "file"}) == 1
    assert metrics.value("wanbot_deliveries_total", {"outcome": "link"}) == 0
    assert metrics.value("wanbot_completion_to_post_seconds_count") == 1
    assert 0 < metrics.value("wanbot_completion_to_post_seconds_sum") <= time.time() - completed_at


async def test_a_video_over_the_upload_limit_is_posted_as_a_link(
    world: World, tmp_path: Path
) -> None:
    job = await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    await world.delivery.deliver(job, FakeSource(tmp_path, job, 30_000_000, too_large=True))  # type: ignore[arg-type]
    call = thread.send.await_args
    assert call is not None
    text = call.args[0]
    assert "too large to upload" in text and "<t:1900000000:R>" in text
    assert "file" not in call.kwargs or call.kwargs["file"] is discord.utils.MISSING
    metrics = world.harness.bot.metrics
    assert metrics.value("wanbot_deliveries_total", {"outcome": "link"}) == 1
    assert metrics.value("wanbot_deliveries_total", {"outcome": "file"}) == 0
    assert metrics.value("wanbot_completion_to_post_seconds_count") == 1


async def test_delivery_is_not_repeated_when_an_earlier_post_exists(
    world: World, tmp_path: Path
) -> None:
    job = await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    earlier = make_message(thread, author=world.me, content=presenter.delivery_text(job))

    async def history(limit: int) -> Any:
        yield earlier

    thread.history = MagicMock(side_effect=history)
    sends_before = thread.send.await_count
    assert await world.delivery.deliver(job, FakeSource(tmp_path, job)) == earlier.id  # type: ignore[arg-type]
    assert thread.send.await_count == sends_before


async def test_a_failed_job_tells_the_requester_and_the_refund(world: World) -> None:
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    failed = await world.harness.tracker.fail(job, "the video service could not generate this")
    assert failed is not None
    await world.harness.tracker.notices_sent()
    thread = world.guild.get_thread(job.thread_id)
    texts = [call.args[0] for call in thread.send.await_args_list if call.args]
    assert any("could not be made" in text and "refunded" in text for text in texts)
    await asyncio.sleep(0)  # let the throttled status edit run
    assert await world.ledger() == [
        ("reserve", world.alice.id, 5),
        ("refund", world.alice.id, -5),
    ]


# ----------------------------------------------------------------- buttons


async def test_reroll_refreshes_the_links_and_charges_the_clicker(world: World) -> None:
    job = await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    click = make_component_interaction(world.bob, channel=thread, client=world.harness.bot)
    await world.actions.reroll(click, job.id)
    jobs = await world.jobs()
    reroll = next(j for j in jobs if j.id != job.id)
    assert reroll.origin is JobOrigin.REROLL and reroll.parent_job_id == job.id
    assert reroll.user_id == world.bob.id and reroll.thread_id == job.thread_id
    assert reroll.request.prompt == job.request.prompt
    assert reroll.request.image_refs[0].url == job.request.image_refs[0].url + "&fresh=1"
    assert reroll.request.seed != job.request.seed or reroll.request.seed is not None
    refreshed = world.harness.bot.http.request.await_args.kwargs["json"]["attachment_urls"]
    assert refreshed == [job.references[0].media.url]
    assert ("reserve", world.bob.id, 5) in await world.ledger()
    assert last_reply(click).ephemeral


async def test_reroll_with_expired_references_explains_and_costs_nothing(world: World) -> None:
    job = await completed_job(world)
    world.harness.bot.http.request = AsyncMock(return_value={"refreshed_urls": []})
    click = make_component_interaction(world.bob, channel=world.channel, client=world.harness.bot)
    try:
        await world.actions.reroll(click, job.id)
    except Exception as exc:
        await report_error(click, exc)
    assert "no longer available" in last_reply(click).text
    assert len(await world.jobs()) == 1


async def test_delete_is_for_the_requester_or_a_moderator(world: World) -> None:
    job = await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    for member, allowed in ((world.bob, False), (world.alice, True), (world.moderator, True)):
        message = make_message(thread, author=world.me, content="video")
        click = make_component_interaction(
            member, message=message, channel=thread, client=world.harness.bot
        )
        try:
            await world.actions.delete(click, job.id)
        except Exception as exc:
            await report_error(click, exc)
        assert message.delete.await_count == (1 if allowed else 0)
        reply = last_reply(click)
        assert reply.ephemeral
        assert ("Deleted" in reply.text) == allowed


# ----------------------------------------------------------------- replies in a thread


async def reply_in_thread(
    world: World, job: Job, author: MagicMock, content: str, **kwargs: Any
) -> MagicMock:
    thread = world.guild.get_thread(job.thread_id)
    message = make_message(thread, author=author, content=content, **kwargs)
    await world.replies.on_message(message)
    return message


async def test_a_reply_mentioning_the_bot_makes_a_new_video_with_the_same_characters(
    world: World,
) -> None:
    job = await completed_job(world)
    message = await reply_in_thread(
        world,
        job,
        world.bob,
        f"<@{world.me.id}> Image 1 now dances in the rain --seed 42 --duration 8 --ar 9:16",
        mentions=[world.me],
    )
    new = next(j for j in await world.jobs() if j.id != job.id)
    assert new.origin is JobOrigin.REPLY and new.user_id == world.bob.id
    assert new.request.prompt == "Image 1 now dances in the rain"
    assert (new.request.seed, new.request.duration, new.request.aspect_ratio) == (42, 8, "9:16")
    assert new.request.image_refs[0].url.endswith("&fresh=1")
    assert new.thread_id == job.thread_id
    assert "Accepted" in message.reply.await_args.args[0]
    assert ("reserve", world.bob.id, 8) in await world.ledger()


async def test_a_reply_with_new_files_replaces_the_references(world: World) -> None:
    job = await completed_job(world)
    dog, bark = image("dog.png"), voice("bark.mp3")
    reply = await reply_in_thread(
        world,
        job,
        world.alice,
        f"<@{world.me.id}> Image 1 barks",
        mentions=[world.me],
        attachments=[dog, bark],
    )
    new = next(j for j in await world.jobs() if j.id != job.id)
    assert new.request.to_json()["image_urls"] == [{"url": dog.url, "reference_voice": bark.url}]
    # The reply's files live on the reply itself: that is where later reuse reads them.
    assert new.reference_copies == {
        "ref:1": [job.thread_id, reply.id, 0],
        "voice:1": [job.thread_id, reply.id, 1],
    }


async def test_a_reply_without_a_mention_makes_nothing_and_gets_one_hint_per_thread(
    world: World,
) -> None:
    job = await completed_job(world)
    message = await reply_in_thread(world, job, world.bob, "Image 1 again please")
    assert len(await world.jobs()) == 1
    [hint] = message.reply.await_args_list
    assert "mention me" in hint.args[0] and world.harness.bot.user.mention in hint.args[0]
    assert hint.kwargs["allowed_mentions"].users is False  # no pings
    later = await reply_in_thread(world, job, world.alice, "and again")
    assert later.reply.await_count == 0
    # Remembered in the database: a restart (a new cog) does not hint again.
    again = VideoReplies(world.harness.bot, world.actions)
    message = make_message(
        world.guild.get_thread(job.thread_id), author=world.bob, content="hello?"
    )
    await again.on_message(message)
    assert message.reply.await_count == 0
    assert len(await world.jobs()) == 1


async def test_a_bad_reply_is_answered_privately_and_costs_nothing(world: World) -> None:
    job = await completed_job(world)
    ledger_before = await world.ledger()
    message = await reply_in_thread(
        world, job, world.bob, f"<@{world.me.id}> Image 2 --duration 99", mentions=[world.me]
    )
    [text] = world.bob.dms
    assert "duration 99" in text.lower() and "2 to 10" in text
    assert message.jump_url in text  # which message the DM is about
    assert message.reply.await_count == 0  # nothing in the thread
    assert len(await world.jobs()) == 1
    assert await world.ledger() == ledger_before


async def refuse_reply(
    world: World, member: MagicMock, job: Job | None = None
) -> tuple[MagicMock, list[str]]:
    """A reply by ``member`` that the bot refuses; returns it and what the thread saw."""
    job = job or await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    public_before = thread.send.await_count
    jobs_before = len(await world.jobs())
    message = await reply_in_thread(
        world, job, member, f"<@{world.me.id}> Image 1 jumps", mentions=[world.me]
    )
    public = [call.args[0] for call in thread.send.await_args_list[public_before:] if call.args]
    assert len(await world.jobs()) == jobs_before
    return message, public


async def test_a_banned_member_reply_is_refused_by_dm_with_the_reason(world: World) -> None:
    reason = "posted gore twice"
    await world.store.ban(world.guild.id, world.bob.id, reason, 1, world.harness.clock())
    _message, public = await refuse_reply(world, world.bob)
    [text] = world.bob.dms
    assert "not allowed" in text and reason in text
    assert public == []  # the moderator's reason never reaches the thread


async def test_with_dms_closed_a_refused_reply_gets_a_public_note_without_the_reason(
    world: World,
) -> None:
    closed = make_member(world.guild, name="private", dms_closed=True)
    reason = "posted gore twice"
    await world.store.ban(world.guild.id, closed.id, reason, 1, world.harness.clock())
    message, public = await refuse_reply(world, closed)
    assert public == [NO_DM_NOTE]
    assert message.reply.await_args.args == (NO_DM_NOTE,)
    assert reason not in NO_DM_NOTE and "not allowed" not in NO_DM_NOTE


async def test_pause_channel_rule_and_quota_refusals_of_replies_are_private(world: World) -> None:
    job = await completed_job(world)
    clock = world.harness.clock()
    settings = await world.store.guild_settings(world.guild.id)
    await world.store.save_guild_settings(
        replace(settings, paused=True, pause_reason="mods only today"), clock
    )
    _message, public = await refuse_reply(world, world.bob, job)
    assert "paused" in world.bob.dms[-1] and "mods only today" in world.bob.dms[-1]
    assert public == []

    await world.store.save_guild_settings(settings, clock)
    await world.store.set_channel_rule(world.guild.id, world.channel.id, "deny", clock)
    carol = make_member(world.guild, name="carol")
    _message, public = await refuse_reply(world, carol, job)
    assert "can't be made in this channel" in carol.dms[-1]
    assert public == []

    await world.store.set_channel_rule(world.guild.id, world.channel.id, None, clock)
    dave = make_member(world.guild, name="dave")
    await world.store.save_user_override(
        UserOverride(world.guild.id, dave.id, daily_seconds=1), clock
    )
    _message, public = await refuse_reply(world, dave, job)
    assert "you have 1 s left" in dave.dms[-1]
    assert public == []


async def test_messages_in_other_threads_are_ignored(world: World) -> None:
    other = make_thread(world.channel)
    message = make_message(other, author=world.bob, content="<@x> hi", mentions=[world.me])
    await world.replies.on_message(message)
    assert message.reply.await_count == 0


def test_reply_attachments_split_into_references_and_voices() -> None:
    files = [image("a.png"), voice("a.mp3"), video("b.mp4"), voice("b.ogg")]
    references, stray = split_reply_attachments(files)
    assert [(r.slot, r.media.filename, r.voice and r.voice.filename) for r in references] == [
        (1, "a.png", "a.mp3"),
        (2, "b.mp4", "b.ogg"),
    ]
    assert stray == {}


async def test_the_member_hears_before_the_status_message_is_posted(world: World) -> None:
    # The channel's rate limit is far stricter than the interaction's: answer first.
    order: list[str] = []
    interaction = interaction_for(world, world.alice)
    answer_after = interaction.followup.send.side_effect
    post_after = world.channel.send.side_effect

    sent: list[Any] = []

    async def answer(*args: Any, **kwargs: Any) -> Any:
        order.append("answer")
        sent.append(answer_after(*args, **kwargs))
        return sent[-1]

    async def post(*args: Any, **kwargs: Any) -> Any:
        order.append("status")
        return await post_after(*args, **kwargs)

    interaction.followup.send.side_effect = answer
    world.channel.send.side_effect = post
    assert await run_video(world, interaction) is None
    assert order == ["answer", "status"]
    [job] = await world.jobs()
    # Then the answer gains the link to the status message.
    edit = sent[0].edit.await_args
    assert edit is not None
    assert f"/{job.channel_id}/{job.status_message_id}" in edit.kwargs["content"]


async def test_button_errors_go_through_the_one_error_policy(world: World) -> None:
    from discord_side.views import DeleteButton, RerollButton

    click = make_component_interaction(world.bob, channel=world.channel, client=world.harness.bot)
    await RerollButton("abcdef123456").callback(click)  # no such job
    assert last_reply(click).ephemeral
    assert "no longer exists" in last_reply(click).text
    template = DeleteButton.__discord_ui_compiled_template__
    match = template.fullmatch("wan:delete:abcdef123456")
    assert match is not None
    button = await DeleteButton.from_custom_id(click, MagicMock(), match)
    assert button.job_id == "abcdef123456" and button.item.custom_id == "wan:delete:abcdef123456"


# ----------------------------------------------------------------- when the thread is gone


def http_400(code: int, text: str) -> discord.HTTPException:
    return http_error(discord.HTTPException, 400, code, text)


async def status_message_of(world: World, job: Job) -> MagicMock:
    """The job's status message in the channel, also what ``get_partial_message`` returns."""
    message: MagicMock = await world.channel.fetch_message(job.status_message_id)
    world.channel.get_partial_message = MagicMock(return_value=message)
    return message


async def test_a_deleted_thread_gets_the_video_in_the_channel_as_a_reply_to_the_status(
    world: World, tmp_path: Path
) -> None:
    job = await completed_job(world)
    world.guild.threads.clear()  # deleted: discord.py forgets it, Discord answers 404

    message_id = await world.delivery.deliver(job, FakeSource(tmp_path, job))  # type: ignore[arg-type]

    call = world.channel.send.await_args
    assert call is not None
    assert (await world.channel.fetch_message(message_id)).id == message_id
    assert call.kwargs["nonce"] == job.delivery_nonce  # still posted once only
    assert call.kwargs["file"].filename == "wan.mp4"
    reference = call.kwargs["reference"]
    assert reference.message_id == job.status_message_id
    assert reference.fail_if_not_exists is False
    assert MOVED_NOTES[Refusal.GONE] in call.args[0]


async def test_a_locked_thread_gets_the_video_in_the_channel(world: World, tmp_path: Path) -> None:
    job = await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    thread.send.side_effect = http_400(50083, "Thread is archived")

    message_id = await world.delivery.deliver(job, FakeSource(tmp_path, job))  # type: ignore[arg-type]

    assert (await world.channel.fetch_message(message_id)).id == message_id
    assert MOVED_NOTES[Refusal.LOCKED] in world.channel.send.await_args.args[0]


async def test_a_server_at_its_thread_limit_gets_the_video_in_the_channel(
    world: World, tmp_path: Path
) -> None:
    original_send = world.channel.send.side_effect

    async def send_and_refuse_threads(*args: Any, **kwargs: Any) -> Any:
        message = await original_send(*args, **kwargs)
        limit = http_400(160006, "Maximum number of active threads reached")
        message.create_thread = AsyncMock(side_effect=limit)
        return message

    world.channel.send.side_effect = send_and_refuse_threads
    job = await completed_job(world)
    assert job.thread_id is None
    status = await status_message_of(world, job)
    note_edit = status.edit.await_args
    assert note_edit is not None
    assert note_edit.kwargs["embed"].fields[-1].value == TOO_MANY_THREADS_NOTE

    message_id = await world.delivery.deliver(job, FakeSource(tmp_path, job))  # type: ignore[arg-type]

    assert (await world.channel.fetch_message(message_id)).id == message_id
    # Later edits keep saying why (not the permission note: the bot has the permission).
    await world.delivery.job_changed(await move_job(world.harness, job, JobState.FAILED))
    await asyncio.gather(*list(world.delivery.edits.pending.values()))
    fields = {f.name: f.value for f in status.edit.await_args.kwargs["embed"].fields}
    assert fields["Note"] == TOO_MANY_THREADS_NOTE


async def test_when_thread_and_channel_refuse_the_status_message_and_a_dm_show_the_way(
    world: World, tmp_path: Path
) -> None:
    job = await completed_job(world)
    status = await status_message_of(world, job)
    world.guild.threads.clear()
    world.channel.send.side_effect = forbidden(50013, "Missing Permissions")
    source = FakeSource(tmp_path, job)

    delivered = await world.delivery.deliver(job, source)  # type: ignore[arg-type]

    assert delivered == job.status_message_id  # where the member finds the video
    note = status.edit.await_args.kwargs["embed"].fields[-1].value
    assert source.url in note and "<t:1900000000:R>" in note
    [dm] = [call.args[0] for call in world.dms[world.alice.id].send.await_args_list]
    assert source.url in dm and "/history" in dm and presenter.delivery_marker(job) in dm
    assert f"/{job.channel_id}/{job.status_message_id}" in dm  # a link to the status message
    metrics = world.harness.bot.metrics  # the video itself was posted nowhere
    assert metrics.value("wanbot_deliveries_total", {"outcome": "failed"}) == 1
    assert metrics.value("wanbot_deliveries_total", {"outcome": "file"}) == 0
    assert metrics.value("wanbot_completion_to_post_seconds_count") == 0
    # The note stays once the job is marked delivered on that message.
    done = await world.store.transition(
        job.id,
        JobState.DELIVERED,
        world.harness.clock(),
        delivered_message_id=delivered,
        result_url=source.url,
    )
    assert done is not None
    await world.delivery.job_changed(done)
    await asyncio.gather(*list(world.delivery.edits.pending.values()))
    assert source.url in status.edit.await_args.kwargs["embed"].fields[-1].value


async def test_when_nothing_takes_the_video_nor_a_dm_delivery_fails_to_be_retried(
    world: World, tmp_path: Path
) -> None:
    job = await completed_job(world)
    status = await status_message_of(world, job)
    status.edit.side_effect = not_found(10008, "Unknown Message")
    world.guild.threads.clear()
    world.channel.send.side_effect = forbidden(50001, "Missing Access")
    world.dms[world.alice.id] = make_dm_channel(world.alice, closed=True)

    with pytest.raises(NowhereToPost):
        await world.delivery.deliver(job, FakeSource(tmp_path, job))  # type: ignore[arg-type]


async def test_a_failure_notice_for_a_deleted_thread_goes_to_the_channel(world: World) -> None:
    await run_video(world, interaction_for(world, world.alice))
    [job] = await world.jobs()
    await status_message_of(world, job)
    world.guild.threads.clear()
    failed = await move_job(world.harness, job, JobState.FAILED)

    await world.delivery.job_changed(failed)

    call = world.channel.send.await_args
    assert call is not None and "could not be made" in call.args[0]
    assert call.kwargs["nonce"] == f"fl{job.id}"
    assert call.kwargs["reference"].message_id == job.thread_id


async def test_a_reply_whose_thread_is_gone_before_its_status_message_moves_to_the_channel(
    world: World, tmp_path: Path
) -> None:
    job = await completed_job(world)
    await reply_in_thread(
        world, job, world.bob, f"<@{world.me.id}> Image 1 bows", mentions=[world.me]
    )
    reply_job = next(j for j in await world.jobs() if j.id != job.id)
    assert reply_job.status_message_id is None  # posted by its first change (tracker not run)
    thread = world.guild.get_thread(job.thread_id)
    thread.send.side_effect = http_400(50083, "Thread is archived")

    moved = await world.delivery.ensure_status_message(reply_job)

    assert moved.thread_id is None and moved.status_message_id is not None
    status = world.channel.send.await_args
    assert status is not None
    assert status.kwargs["reference"].message_id == job.thread_id
    assert status.kwargs["embed"].fields[-1].value == MOVED_NOTES[Refusal.LOCKED]
    completed = await move_job(world.harness, moved, JobState.COMPLETED)
    message_id = await world.delivery.deliver(completed, FakeSource(tmp_path, completed))  # type: ignore[arg-type]
    assert (await world.channel.fetch_message(message_id)).id == message_id


# ----------------------------------------------------------------- delete, mentions, threads


async def test_deleting_a_video_that_is_already_gone_is_a_polite_success(world: World) -> None:
    job = await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    message = make_message(thread, author=world.me, content="video")
    message.delete.side_effect = not_found(10008, "Unknown Message")  # the other click won
    click = make_component_interaction(
        world.alice, message=message, channel=thread, client=world.harness.bot
    )

    await world.actions.delete(click, job.id)  # raises nothing: no "went wrong", no ERROR

    reply = last_reply(click)
    assert reply.ephemeral and "Already deleted" in reply.text


async def test_mentions_never_reach_the_api_prompt(world: World) -> None:
    job = await completed_job(world)
    dancers = make_role(world.guild, name="Dancers")
    gone = next_id()  # a member the bot has never seen
    content = (
        f"Image 1 hugs <@{world.alice.id}> and <@!{world.moderator.id}> in <#{world.channel.id}>"
        f" with <@&{dancers.id}>, @everyone and <@{gone}> too"
        f' --neg "<@{world.alice.id}> blurry" <@{world.me.id}>'
    )

    await reply_in_thread(
        world,
        job,
        world.bob,
        content,
        mentions=[world.me, world.alice, world.moderator],
        role_mentions=[dancers],
    )

    new = next(j for j in await world.jobs() if j.id != job.id)
    assert new.request.prompt == (
        "Image 1 hugs alice and mod in general with Dancers, everyone and too"
    )
    assert new.request.negative_prompt == "alice blurry"


async def test_a_reply_in_a_thread_discord_py_does_not_know_is_answered_after_a_restart(
    world: World,
) -> None:
    job = await completed_job(world)
    delivery = DiscordDelivery(world.harness.bot, edit_interval=0)
    await delivery.load_threads()  # the known threads come from the store (setup_hook)
    restarted = VideoReplies(world.harness.bot, VideoActions(world.harness.bot, delivery))
    try:
        # An archived thread, or one whose THREAD_CREATE never came: not in discord.py's cache.
        uncached = make_partial_channel(world.guild, id=job.thread_id)
        message = make_message(
            uncached,
            author=world.bob,
            content=f"Image 1 again, slower <@{world.me.id}>",
            mentions=[world.me],
        )
        await restarted.on_message(message)
        new = next(j for j in await world.jobs() if j.id != job.id)
        assert (new.thread_id, new.channel_id) == (job.thread_id, world.channel.id)
        assert new.request.prompt == "Image 1 again, slower"
        assert "Accepted" in message.reply.await_args.args[0]

        # The channel's rules hold in its threads, known to discord.py or not.
        clock = world.harness.clock()
        await world.store.set_channel_rule(world.guild.id, world.channel.id, "deny", clock)
        again = make_message(
            uncached, author=world.bob, content=f"<@{world.me.id}> once more", mentions=[world.me]
        )
        await restarted.on_message(again)
        assert "can't be made in this channel" in world.bob.dms[-1]
        assert len(await world.jobs()) == 2
    finally:
        await delivery.close()


async def test_messages_outside_video_threads_cost_no_database_query(world: World) -> None:
    await completed_job(world)
    lookups = AsyncMock(wraps=world.store.latest_job_in_thread)
    world.store.latest_job_in_thread = lookups
    for place in (world.channel, make_thread(world.channel)):
        message = make_message(
            place, author=world.bob, content=f"<@{world.me.id}> hi", mentions=[world.me]
        )
        await world.replies.on_message(message)
        assert message.reply.await_count == 0
    assert lookups.await_count == 0


# ----------------------------------------------------------------- what the files really are


HTML = b"<!DOCTYPE html><html><head><title>cat</title></head><body></body></html>\n"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40)


async def test_a_file_that_is_not_what_it_claims_is_refused_before_anything_is_spent(
    world: World,
) -> None:
    cat, song = image("cat.png"), voice("song.mp3")
    world.sniffer.files[cat.url] = HTML
    world.sniffer.files[song.url] = png(320, 320)
    interaction = interaction_for(world, world.alice)
    error = await run_video(world, interaction, ref1=cat, voice1=song)
    assert error is not None
    text = last_reply(interaction).text
    assert "ref 1 (cat.png) says it is a PNG image but its contents are not" in text
    assert "voice 1 (song.mp3) says it is MP3 audio but its contents are a PNG image" in text
    assert await world.jobs() == [] and await world.ledger() == []


async def test_the_bytes_decide_the_type_and_the_size_when_discord_gave_none(
    world: World,
) -> None:
    untyped = make_attachment(filename="photo", content_type=None, width=None, height=None)
    world.sniffer.files[untyped.url] = png(100, 100)
    interaction = interaction_for(world, world.alice)
    await run_video(world, interaction, ref1=untyped)
    assert "ref 1 (photo) is 100×100 px" in last_reply(interaction).text
    world.sniffer.files[untyped.url] = png(640, 480)
    assert await run_video(world, interaction_for(world, world.alice), ref1=untyped) is None
    [job] = await world.jobs()
    # Kept as found, so that a reroll (which reads nothing again) still knows it is a PNG.
    media = job.references[0].media
    assert (media.content_type, media.width, media.height) == ("image/png", 640, 480)


async def test_every_file_is_read_at_once_after_the_interaction_is_deferred(
    world: World,
) -> None:
    interaction = interaction_for(world, world.alice)
    files = {
        **{f"ref{slot}": image(f"r{slot}.png") for slot in range(1, 6)},
        **{f"voice{slot}": voice(f"v{slot}.mp3") for slot in range(1, 6)},
        "start_image": image("start.png"),
    }
    everyone_started = asyncio.Event()
    started: list[str] = []
    read = world.sniffer.read_head

    async def read_head(url: str) -> bytes:
        assert was_deferred(interaction, ephemeral=True), "read before the deferral"
        started.append(url)
        if len(started) == len(files):
            everyone_started.set()
        # Read one after another, the first read would wait here for ever.
        await asyncio.wait_for(everyone_started.wait(), timeout=10)
        return await read(url)

    world.sniffer.read_head = read_head  # type: ignore[method-assign]
    prompt = "Image 1 Image 2 Image 3 Image 4 Image 5 dance"
    assert await run_video(world, interaction, prompt=prompt, **files) is None
    assert sorted(started) == sorted(att.url for att in files.values())


async def test_a_reroll_reads_no_file_again(world: World) -> None:
    job = await completed_job(world)
    reads = list(world.sniffer.reads)
    click = make_component_interaction(world.bob, channel=world.channel, client=world.harness.bot)
    await world.actions.reroll(click, job.id)
    assert len(await world.jobs()) == 2
    assert world.sniffer.reads == reads


async def test_a_reply_with_a_spoofed_file_is_refused_and_costs_nothing(world: World) -> None:
    job = await completed_job(world)
    ledger = await world.ledger()
    photo = make_attachment(filename="dog.jpg", content_type="image/jpeg")
    world.sniffer.files[photo.url] = ZIP
    message = await reply_in_thread(
        world,
        job,
        world.bob,
        f"<@{world.me.id}> Image 1 barks",
        mentions=[world.me],
        attachments=[photo],
    )
    assert message.reply.await_count == 0  # refusals of a reply are private
    [text] = world.bob.dms
    assert "ref 1 (dog.jpg) says it is a JPEG image but its contents are a ZIP archive" in text
    assert len(await world.jobs()) == 1 and await world.ledger() == ledger


async def test_a_reply_of_only_invisible_characters_keeps_the_prompt(world: World) -> None:
    job = await completed_job(world)
    await reply_in_thread(
        world,
        job,
        world.bob,
        f"<@{world.me.id}> \u200b\u2060\ufeff --seed 7",
        mentions=[world.me],
    )
    new = next(j for j in await world.jobs() if j.id != job.id)
    assert (new.request.prompt, new.request.seed) == (job.request.prompt, 7)


# ----------------------------------------------------------------- Discord's length limits


async def test_an_error_longer_than_discord_allows_is_cut_to_fit(world: World) -> None:
    interaction = interaction_for(world, world.alice)
    await report_error(
        interaction, UserError("\n".join(f"line {n} " + "x" * 50 for n in range(99)))
    )
    text = last_reply(interaction).text
    assert len(text) <= 2000 and text.startswith("line 0 ")
    assert text.endswith(" more") and "…and " in text


async def test_a_refusal_with_many_problems_lists_what_fits_and_says_nothing_was_charged(
    world: World,
) -> None:
    interaction = interaction_for(world, world.alice)
    # Every file has a long name and a problem or two, and more: over 2,000 characters.
    long_names = {
        **{
            f"ref{slot}": image(f"{'n' * 55}{slot}.png", size=25_000_000, width=10, height=10)
            for slot in range(1, 6)
        },
        **{f"voice{slot}": image(f"{'v' * 55}{slot}.png") for slot in range(1, 6)},
        "start_image": video(f"{'s' * 55}.mp4"),
    }
    error = await run_video(
        world,
        interaction,
        prompt="Image 9 " + "x" * 4995,
        negative_prompt="n" * 600,
        aspect_ratio="w" * 6000,
        **long_names,
    )
    assert error is not None and len(error.message) > 2000  # type: ignore[attr-defined]
    text = last_reply(interaction).text
    assert len(text) <= 2000
    assert text.startswith("I can't make this video yet:") and text.endswith("Nothing was charged.")
    assert "…and " in text
