"""The Discord face of /video, replies, buttons and delivery, driven with spec'd discord.py fakes.

The core behind it is real (settings, store, quota, service); the tracker is not started, so no
API call can happen: "nothing was spent" is checked in the store's ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest

from cogs import presenter
from cogs.delivery import NO_THREAD_NOTE, DiscordDelivery
from cogs.errors import report_error
from cogs.video import VideoCog, split_reply_attachments
from core.jobs import Job, JobOrigin, JobState
from core.media import DownloadedVideo, MediaTooLarge
from core.store import UserOverride, utc_day
from tests.discord_mocks import (
    BotHarness,
    last_reply,
    make_attachment,
    make_component_interaction,
    make_guild,
    make_interaction,
    make_member,
    make_message,
    make_role,
    make_text_channel,
    make_thread,
    move_job,
    open_harness,
    was_deferred,
)


@dataclass
class World:
    harness: BotHarness
    cog: VideoCog
    guild: MagicMock
    channel: MagicMock
    alice: MagicMock
    bob: MagicMock
    moderator: MagicMock
    me: MagicMock

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
            cog=VideoCog(harness.bot),
            guild=guild,
            channel=channel,
            alice=make_member(guild, name="alice"),
            bob=make_member(guild, name="bob"),
            moderator=make_member(guild, name="mod", roles=[mod_role]),
            me=me,
        )
        bot = harness.bot
        bot.user.id = me.id
        bot.get_channel.side_effect = guild.get_channel_or_thread
        bot.fetch_channel = AsyncMock(side_effect=guild.get_channel_or_thread)
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
        world.cog.delivery = DiscordDelivery(bot, edit_interval=0)
        harness.tracker.set_events(world.cog.delivery)  # what cog_load does
        yield world
        await harness.tracker.notices_sent()
        await world.cog.delivery.close()


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
    callback: Any = world.cog.video.callback  # discord.py passes the cog as `self`
    try:
        await callback(world.cog, interaction, **options)
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
    await world.cog.delivery.job_changed(await move_job(world.harness, job, JobState.RUNNING))
    await asyncio.gather(*list(world.cog.delivery._edits.values()))
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
    await asyncio.gather(*list(delivery._edits.values()))
    assert message.edit.await_count == edits + 1  # the first change shows at once
    running = await world.store.transition(job.id, JobState.RUNNING, world.harness.clock())
    assert running is not None
    await delivery.job_changed(running)
    for _ in range(20):  # ample turns for an edit that was not held back (all mocks, no I/O)
        await asyncio.sleep(0)

    assert message.edit.await_count == edits + 1  # the next one waits out the interval
    assert list(delivery._edits) == [job.id]
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
    message_id = await world.cog.delivery.deliver(job, source)  # type: ignore[arg-type]
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


async def test_a_video_over_the_upload_limit_is_posted_as_a_link(
    world: World, tmp_path: Path
) -> None:
    job = await completed_job(world)
    thread = world.guild.get_thread(job.thread_id)
    await world.cog.delivery.deliver(job, FakeSource(tmp_path, job, 30_000_000, too_large=True))  # type: ignore[arg-type]
    call = thread.send.await_args
    assert call is not None
    text = call.args[0]
    assert "too large to upload" in text and "<t:1900000000:R>" in text
    assert "file" not in call.kwargs or call.kwargs["file"] is discord.utils.MISSING


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
    assert await world.cog.delivery.deliver(job, FakeSource(tmp_path, job)) == earlier.id  # type: ignore[arg-type]
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
    await world.cog.reroll(click, job.id)
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
        await world.cog.reroll(click, job.id)
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
            await world.cog.delete(click, job.id)
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
    await world.cog.on_message(message)
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


async def test_a_reply_without_a_mention_is_ignored_without_the_content_intent(
    world: World,
) -> None:
    job = await completed_job(world)
    message = await reply_in_thread(world, job, world.bob, "Image 1 again please")
    assert len(await world.jobs()) == 1
    assert message.reply.await_count == 0


async def test_a_bad_reply_is_answered_and_costs_nothing(world: World) -> None:
    job = await completed_job(world)
    ledger_before = await world.ledger()
    message = await reply_in_thread(
        world, job, world.bob, f"<@{world.me.id}> Image 2 --duration 99", mentions=[world.me]
    )
    text = message.reply.await_args.args[0]
    assert "duration 99" in text.lower() and "2 to 10" in text
    assert len(await world.jobs()) == 1
    assert await world.ledger() == ledger_before


async def test_a_banned_member_reply_is_refused(world: World) -> None:
    job = await completed_job(world)
    await world.store.ban(world.guild.id, world.bob.id, None, 1, world.harness.clock())
    message = await reply_in_thread(
        world, job, world.bob, f"<@{world.me.id}> Image 1 jumps", mentions=[world.me]
    )
    assert "not allowed" in message.reply.await_args.args[0]
    assert len(await world.jobs()) == 1


async def test_messages_in_other_threads_are_ignored(world: World) -> None:
    other = make_thread(world.channel)
    message = make_message(other, author=world.bob, content="<@x> hi", mentions=[world.me])
    await world.cog.on_message(message)
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
    from cogs.views import DeleteButton, RerollButton

    click = make_component_interaction(world.bob, channel=world.channel, client=world.harness.bot)
    world.harness.bot.get_cog = MagicMock(return_value=world.cog)
    await RerollButton("abcdef123456").callback(click)  # no such job
    assert last_reply(click).ephemeral
    assert "no longer exists" in last_reply(click).text
    template = DeleteButton.__discord_ui_compiled_template__
    match = template.fullmatch("wan:delete:abcdef123456")
    assert match is not None
    button = await DeleteButton.from_custom_id(click, MagicMock(), match)
    assert button.job_id == "abcdef123456" and button.item.custom_id == "wan:delete:abcdef123456"
