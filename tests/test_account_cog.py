"""/quota, /history and /help, driven through their callbacks against the real store."""

from __future__ import annotations

from typing import Any

import pytest

from cogs.account import HISTORY_PAGE_SIZE, AccountCog, setup
from core.errors import UserError
from core.jobs import JobState
from core.quota import next_reset
from core.store import GuildSettings
from tests.discord_mocks import (
    BotHarness,
    accept_job,
    edits,
    last_reply,
    make_component_interaction,
    make_guild,
    make_interaction,
    make_member,
    make_role,
    make_text_channel,
    make_user,
    move_job,
    open_harness,
    was_deferred,
)


@pytest.fixture
def cog(harness: BotHarness) -> AccountCog:
    return AccountCog(harness.bot, clock=harness.clock)


@pytest.fixture
def channel(guild):
    return make_text_channel(guild)


# ----------------------------------------------------------------- /quota


async def test_quota_shows_what_is_left_the_reset_and_unfinished_jobs(
    cog, harness, guild, channel, alice
):
    waiting = await accept_job(harness, alice, channel, duration=5, prompt="Image 1 waits")
    done = await accept_job(harness, alice, channel, duration=8, prompt="Image 1 is done")
    await move_job(harness, done, JobState.DELIVERED)
    interaction = make_interaction(alice, channel=channel, client=harness.bot)

    await cog.quota.callback(cog, interaction)

    reply = last_reply(interaction)
    assert was_deferred(interaction, ephemeral=True)
    assert reply.ephemeral
    assert "**47 s** of video left today" in reply.text  # 60 - 5 reserved - 8 delivered
    reset = int(next_reset(harness.clock()).timestamp())
    assert f"<t:{reset}:R>" in reply.text
    assert waiting.id in reply.text
    assert done.id not in reply.text  # finished jobs are not "being made"
    assert "Being made now (1)" in reply.text


async def test_quota_counts_grants_and_shows_exemption_and_ban(cog, harness, guild, channel):
    vip = make_role(guild, name="vip")
    bob = make_member(guild, name="bob", roles=[vip])
    await harness.store.save_guild_settings(
        GuildSettings(guild.id, exempt_role_id=vip.id), harness.clock()
    )
    await harness.store.ban(guild.id, bob.id, "spam", actor_id=1, now=harness.clock())
    interaction = make_interaction(bob, channel=channel, client=harness.bot)

    await cog.quota.callback(cog, interaction)

    text = last_reply(interaction).text
    assert "exempt" in text
    assert "You may not make videos in this server: spam" in text


async def test_quota_includes_seconds_granted_today(cog, harness, guild, channel, alice):
    await harness.store.grant(guild.id, alice.id, 30, actor_id=1, now=harness.clock())
    interaction = make_interaction(alice, channel=channel, client=harness.bot)

    await cog.quota.callback(cog, interaction)

    assert "**90 s** of video left today" in last_reply(interaction).text


async def test_quota_outside_a_server_is_refused_before_answering(cog, harness):
    interaction = make_interaction(make_user(), client=harness.bot)

    with pytest.raises(UserError, match="only works in a server"):
        await cog.quota.callback(cog, interaction)
    assert not interaction.response.is_done()  # the error policy answers it


# ----------------------------------------------------------------- /history


async def test_history_without_videos_says_so(cog, harness, channel, alice):
    interaction = make_interaction(alice, channel=channel, client=harness.bot)

    await cog.history.callback(cog, interaction)

    reply = last_reply(interaction)
    assert reply.ephemeral
    assert "haven't made any videos" in reply.text
    assert reply.view is None


async def test_history_pages_newest_first_with_thread_links(cog, harness, guild, channel, alice):
    other_guild = make_guild()
    elsewhere = make_member(other_guild, id=alice.id)  # same person, another server
    await accept_job(harness, elsewhere, make_text_channel(other_guild), prompt="Image 1 elsewhere")
    bob = make_member(guild, name="bob")
    await accept_job(harness, bob, channel, prompt="Image 1 is bob's")
    jobs = []
    for number in range(HISTORY_PAGE_SIZE + 2):
        harness.clock.advance(60)
        job = await accept_job(harness, alice, channel, prompt=f"Image 1 take {number}")
        jobs.append(await move_job(harness, job, JobState.FAILED))
    await harness.store.set_discord_ids(jobs[-1].id, thread_id=4242)
    interaction = make_interaction(alice, channel=channel, client=harness.bot)

    await cog.history.callback(cog, interaction)

    first = last_reply(interaction)
    assert first.ephemeral
    assert "Page 1/2" in first.text
    assert "7 video(s)" in first.text
    newest = jobs[::-1][:HISTORY_PAGE_SIZE]
    assert [f.name.split(" · ")[-1] for f in first.embed.fields] == [job.id for job in newest]
    assert f"https://discord.com/channels/{guild.id}/4242" in first.text
    assert "bob's" not in first.text and "elsewhere" not in first.text
    view = first.view
    assert view.newer.disabled and not view.older.disabled

    press = make_component_interaction(alice, client=harness.bot, channel=channel)
    assert await view.interaction_check(press)
    await view.older.callback(press)

    page_two = edits(press)[-1]
    assert "Page 2/2" in page_two.text
    assert [f.name.split(" · ")[-1] for f in page_two.embed.fields] == [
        job.id for job in jobs[::-1][HISTORY_PAGE_SIZE:]
    ]
    assert f"https://discord.com/channels/{guild.id}/{channel.id}" in page_two.text
    assert view.older.disabled and not view.newer.disabled
    view.stop()


async def test_only_the_invoker_can_turn_history_pages(cog, harness, guild, channel, alice):
    for _ in range(HISTORY_PAGE_SIZE + 1):
        await move_job(harness, await accept_job(harness, alice, channel), JobState.FAILED)
    interaction = make_interaction(alice, channel=channel, client=harness.bot)
    await cog.history.callback(cog, interaction)
    view = last_reply(interaction).view
    mallory = make_member(guild, name="mallory")
    press = make_component_interaction(mallory, client=harness.bot, channel=channel)

    assert not await view.interaction_check(press)

    refusal = last_reply(press)
    assert refusal.ephemeral and "Only the member who ran /history" in refusal.text
    view.stop()


async def test_history_timeout_removes_the_buttons(cog, harness, channel, alice):
    for _ in range(HISTORY_PAGE_SIZE + 1):
        await move_job(harness, await accept_job(harness, alice, channel), JobState.FAILED)
    interaction = make_interaction(alice, channel=channel, client=harness.bot)
    await cog.history.callback(cog, interaction)
    view = last_reply(interaction).view

    await view.on_timeout()

    interaction.edit_original_response.assert_awaited_once_with(view=None)
    view.stop()


async def test_history_with_one_page_has_no_buttons(cog, harness, channel, alice):
    await accept_job(harness, alice, channel)
    interaction = make_interaction(alice, channel=channel, client=harness.bot)

    await cog.history.callback(cog, interaction)

    reply = last_reply(interaction)
    assert reply.view is None
    assert "Page 1/1" in reply.text


# ----------------------------------------------------------------- /help


async def test_help_explains_labels_limits_and_reply_flags(cog, harness, channel, alice):
    interaction = make_interaction(alice, channel=channel, client=harness.bot)

    await cog.show_help.callback(cog, interaction)

    reply = last_reply(interaction)
    assert reply.via == "response" and reply.ephemeral
    text = reply.text
    assert "ref1 is **Video 1** and ref2 is **Image 1**" in text
    for fact in (
        "at most 5",
        "JPEG, PNG, BMP or WEBP, 240–8000 px",
        "up to 20 MB",
        "MP4 or MOV, up to 100 MB",
        "Voice clips",
        "up to 5000 characters; negative prompt up to 500",
        "Duration 2–10 s",
        "720P or 1080P",
        "16:9, 9:16, 1:1, 4:3, 3:4",
        "--seed 42 --duration 8 --ar 9:16 --res 720P",
        '--neg "blurry, text" --no-extend',
        "replace the references",
        "`/character save name ref [voice]`",
        "**`{fox}`** stands for fox",
        "`{fox} → Image 2`",
        "Apps → **Make a video**",
        "re-posted in the video's public thread",
        "🎭 Character library",
    ):
        assert fact in text, fact
    # Without the message content intent the bot only reads replies that mention it.
    assert f"Start your reply with {harness.bot.user.mention}" in text
    embed = reply.embed
    assert embed is not None and embed.description is not None
    assert len(embed.description) <= 4096
    assert all(len(field.value or "") <= 1024 for field in embed.fields)
    assert len(embed) <= 6000


async def test_help_with_message_content_needs_no_mention(tmp_path, channel, alice):
    async with open_harness(tmp_path / "db.sqlite3", env={"MESSAGE_CONTENT_INTENT": "true"}) as h:
        cog = AccountCog(h.bot, clock=h.clock)
        interaction = make_interaction(alice, channel=channel, client=h.bot)

        callback: Any = cog.show_help.callback
        await callback(cog, interaction)

    text = last_reply(interaction).text
    assert "no need to mention the bot" in text
    assert "Start your reply with" not in text


async def test_setup_adds_the_cog(harness):
    await setup(harness.bot)

    (added,), _ = harness.bot.add_cog.await_args
    assert isinstance(added, AccountCog)
    assert [c.name for c in added.get_app_commands()] == ["quota", "history", "help"]
