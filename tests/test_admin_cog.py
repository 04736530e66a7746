"""/admin, driven through its callbacks against the real store, quota, service and tracker."""

from __future__ import annotations

import csv
import io
from typing import Any
from unittest.mock import AsyncMock

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from cogs.admin import AdminCog, setup
from core.errors import Refused, UserError
from core.jobs import Job, JobState
from core.quota import quota_status
from core.store import GuildSettings, QuotaExceeded, UserOverride, utc_day
from discord_side.errors import BotCommandTree, report_error
from discord_side.permissions import NotModerator, is_moderator
from tests.discord_mocks import (
    BotHarness,
    accept_job,
    last_reply,
    make_guild,
    make_interaction,
    make_member,
    make_role,
    make_text_channel,
    make_thread,
    make_user,
    move_job,
    requester_for,
)


@pytest.fixture
def cog(harness: BotHarness) -> AdminCog:
    return AdminCog(harness.bot, clock=harness.clock)


@pytest.fixture
def channel(guild):
    return make_text_channel(guild, name="videos")


@pytest.fixture
def mod(guild):
    """A moderator through Manage Server (from a role, as Discord computes it)."""
    staff = make_role(guild, name="staff", permissions=discord.Permissions(manage_guild=True))
    return make_member(guild, name="mod", roles=[staff])


def as_(member, harness, channel):
    return make_interaction(member, channel=channel, client=harness.bot)


async def audit_count(harness: BotHarness, guild) -> int:
    return len(await harness.store.audit_entries(guild.id, limit=1000))


async def allowed(harness: BotHarness, member, channel) -> bool:
    try:
        await harness.service.check_allowed(requester_for(member, channel))
    except Refused:
        return False
    return True


def admin_commands(cog: AdminCog) -> list[app_commands.Command[Any, ..., Any]]:
    return [c for c in cog.walk_app_commands() if isinstance(c, app_commands.Command)]


# ----------------------------------------------------------------- registration and checks


async def test_admin_group_is_hidden_by_default_and_guild_only(harness):
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none(), tree_cls=BotCommandTree)
    for name in ("settings", "store", "service"):
        setattr(bot, name, getattr(harness, name))

    await setup(bot)

    admin = bot.tree.get_command("admin")
    payload = admin.to_dict(bot.tree)
    assert payload["default_member_permissions"] == discord.Permissions(manage_guild=True).value
    assert payload["dm_permission"] is False
    assert payload["contexts"] == [0]  # guild only
    subcommands = {option["name"]: option for option in payload["options"]}
    assert set(subcommands) == {
        "quota",
        "defaults",
        "ban",
        "unban",
        "pause",
        "resume",
        "channels",
        "jobs",
        "cancel",
        "usage",
        "audit",
    }
    quota = {option["name"]: option for option in subcommands["quota"]["options"]}
    assert set(quota) == {"show", "set", "reset", "grant"}
    seconds = next(o for o in quota["grant"]["options"] if o["name"] == "seconds")
    assert (seconds["min_value"], seconds["required"]) == (1, True)
    days = next(o for o in subcommands["usage"]["options"] if o["name"] == "days")
    assert (days["min_value"], days["max_value"]) == (1, 90)
    await bot.close()


async def invoke(command: app_commands.Command[Any, ..., Any], interaction) -> None:
    """What the tree does with a slash command: discord.py runs the checks (the parent group's
    and the cog's ``interaction_check``, then the command's own), then the callback."""
    await command._invoke_with_namespace(interaction, app_commands.Namespace(interaction, {}, []))


async def test_every_subcommand_refuses_non_moderators_when_run(cog, harness, guild, alice):
    # default_permissions only hides /admin: a server may let anyone call it.
    commands_ = admin_commands(cog)
    assert len(commands_) == 18
    for command in commands_:
        interaction = as_(alice, harness, None)
        with pytest.raises(NotModerator):
            await invoke(command, interaction)
        assert not interaction.response.defer.await_count, f"/{command.qualified_name} ran"
    assert await audit_count(harness, guild) == 0


async def test_moderator_role_and_manage_server_pass_the_check(cog, harness, guild, mod):
    helper_role = make_role(guild, name="helpers")
    helper = make_member(guild, name="helper", roles=[helper_role])
    bot = harness.bot
    assert await is_moderator(bot, mod)
    assert not await is_moderator(bot, helper)

    await harness.store.save_guild_settings(
        GuildSettings(guild.id, moderator_role_id=helper_role.id), harness.clock()
    )

    assert await is_moderator(bot, helper)  # read fresh: no restart, no cache
    for member in (mod, helper):
        interaction = as_(member, harness, None)
        for command in admin_commands(cog):
            assert await command._check_can_run(interaction), command.qualified_name


async def test_check_uses_the_permissions_discord_resolved(harness, guild):
    # Interaction members carry Discord's own computation; it wins over the role cache.
    member = make_member(
        guild, resolved_permissions=discord.Permissions(manage_guild=True), name="cached-late"
    )
    assert await is_moderator(harness.bot, member)
    owner = make_member(guild, id=guild.owner_id, name="owner")
    assert await is_moderator(harness.bot, owner)


async def test_check_refuses_direct_messages(cog, harness):
    interaction = make_interaction(make_user(), client=harness.bot)
    with pytest.raises(app_commands.NoPrivateMessage):
        await invoke(cog.ban, interaction)


async def test_refusal_reaches_the_member_ephemerally(harness, alice):
    interaction = as_(alice, harness, None)

    await report_error(interaction, NotModerator())

    reply = last_reply(interaction)
    assert reply.ephemeral
    assert "Manage Server" in reply.text and "moderator role" in reply.text


# ----------------------------------------------------------------- /admin quota


async def test_quota_set_overrides_and_applies_to_the_next_request(
    cog, harness, guild, channel, mod, alice
):
    interaction = as_(mod, harness, channel)

    await cog.quota_set.callback(cog, interaction, alice, daily_seconds=4, max_concurrent=1)

    assert await harness.store.user_override(guild.id, alice.id) == UserOverride(
        guild.id, alice.id, 4, 1
    )
    reply = last_reply(interaction)
    assert reply.ephemeral and "daily 4 s" in reply.text
    (entry,) = await harness.store.audit_entries(guild.id)
    assert (entry.actor_id, entry.action, entry.target) == (mod.id, "quota.set", f"user:{alice.id}")
    assert entry.before == {"daily_seconds": None, "max_concurrent": None}
    assert entry.after == {"daily_seconds": 4, "max_concurrent": 1}
    with pytest.raises(QuotaExceeded):
        await accept_job(harness, alice, channel, duration=5)

    back = as_(mod, harness, channel)
    await cog.quota_set.callback(cog, back, alice, use_server_defaults=True)

    assert await harness.store.user_override(guild.id, alice.id) == UserOverride(guild.id, alice.id)
    await accept_job(harness, alice, channel, duration=5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"daily_seconds": 0},
        {"daily_seconds": -30},
        {"max_concurrent": 0},
        {"daily_seconds": 10, "use_server_defaults": True},
        {},
    ],
)
async def test_quota_set_refuses_bad_arguments_and_changes_nothing(
    cog, harness, guild, mod, alice, kwargs
):
    interaction = as_(mod, harness, None)

    with pytest.raises(UserError, match="Nothing was changed"):
        await cog.quota_set.callback(cog, interaction, alice, **kwargs)

    assert await harness.store.user_override(guild.id, alice.id) == UserOverride(guild.id, alice.id)
    assert await audit_count(harness, guild) == 0


async def test_quota_show_reports_limits_usage_and_sources(
    cog, harness, guild, channel, mod, alice
):
    await accept_job(harness, alice, channel, duration=5)
    await harness.store.save_user_override(UserOverride(guild.id, alice.id, 100), harness.clock())
    await harness.store.grant(guild.id, alice.id, 20, mod.id, harness.clock())
    interaction = as_(mod, harness, channel)

    await cog.quota_show.callback(cog, interaction, alice)

    text = last_reply(interaction).text
    assert "Daily allowance: 100 s (member override)" in text
    assert "Videos at once: 2 (bot default)" in text
    assert "Used today: -15 s (net of 20 s granted today); left: 115 s" in text
    assert "Unfinished jobs: 1" in text


async def test_quota_reset_gives_back_todays_seconds_once(cog, harness, guild, channel, mod, alice):
    job = await accept_job(harness, alice, channel, duration=8)
    await move_job(harness, job, JobState.DELIVERED)
    today = utc_day(harness.clock())

    await cog.quota_reset.callback(cog, as_(mod, harness, channel), alice)

    assert await harness.store.usage(guild.id, alice.id, today) == 0
    resets = [
        e
        for e in await harness.store.ledger_entries(guild.id, since_day=today, user_id=alice.id)
        if e.kind == "reset"
    ]
    assert [(e.seconds, e.actor_id) for e in resets] == [(-8, mod.id)]
    (entry,) = await harness.store.audit_entries(guild.id)
    assert (entry.action, entry.before, entry.after) == (
        "quota.reset",
        {"used_seconds": 8},
        {"used_seconds": 0},
    )

    again = as_(mod, harness, channel)
    await cog.quota_reset.callback(cog, again, alice)

    assert "has used nothing today" in last_reply(again).text
    assert await audit_count(harness, guild) == 1


async def test_quota_grant_adds_a_ledger_row(cog, harness, guild, channel, mod, alice):
    interaction = as_(mod, harness, channel)

    await cog.quota_grant.callback(cog, interaction, alice, 30, note="contest winner")

    today = utc_day(harness.clock())
    (grant,) = await harness.store.ledger_entries(guild.id, since_day=today, user_id=alice.id)
    assert (grant.kind, grant.seconds, grant.actor_id, grant.note) == (
        "grant",
        -30,
        mod.id,
        "contest winner",
    )
    assert "they now have 90 s left" in last_reply(interaction).text
    status = await quota_status(
        harness.store, harness.settings, guild.id, alice.id, [], harness.clock()
    )
    assert status.remaining == 90
    (entry,) = await harness.store.audit_entries(guild.id)
    assert entry.action == "quota.grant" and entry.after["granted"] == 30


@pytest.mark.parametrize("seconds", [0, -5, 86_401])
async def test_quota_grant_refuses_bad_seconds(cog, harness, guild, mod, alice, seconds):
    with pytest.raises(UserError, match="`seconds` must be a whole number from 1"):
        await cog.quota_grant.callback(cog, as_(mod, harness, None), alice, seconds)

    assert await harness.store.ledger_entries(guild.id, since_day="2000-01-01") == []
    assert await audit_count(harness, guild) == 0


# ----------------------------------------------------------------- /admin defaults


async def test_defaults_without_options_shows_them(cog, harness, guild, mod):
    interaction = as_(mod, harness, None)

    await cog.defaults.callback(cog, interaction)

    text = last_reply(interaction).text
    assert "Daily seconds per member: 60 s (bot default)" in text
    assert "Max resolution: 1080P (bot default)" in text
    assert await audit_count(harness, guild) == 0


async def test_defaults_change_applies_at_once(cog, harness, guild, channel, mod, alice):
    vip = make_role(guild, name="vip")
    interaction = as_(mod, harness, channel)

    await cog.defaults.callback(
        cog,
        interaction,
        daily_seconds=30,
        max_concurrent=3,
        max_duration=4,
        max_resolution="720P",
        exempt_role=vip,
    )

    saved = await harness.store.guild_settings(guild.id)
    assert (saved.daily_seconds, saved.max_concurrent, saved.max_duration) == (30, 3, 4)
    assert (saved.max_resolution, saved.exempt_role_id) == ("720P", vip.id)
    assert "Daily seconds per member: 30 s" in last_reply(interaction).text
    (entry,) = await harness.store.audit_entries(guild.id)
    assert entry.action == "defaults"
    assert entry.before["daily_seconds"] is None and entry.after["daily_seconds"] == 30
    with pytest.raises(Refused, match="at most 4 s"):
        await accept_job(harness, alice, channel, duration=5)
    with pytest.raises(Refused, match="at most 720P"):
        await accept_job(harness, alice, channel, duration=4, resolution="1080P")

    await cog.defaults.callback(cog, as_(mod, harness, channel), unset="max_duration")

    assert (await harness.store.guild_settings(guild.id)).max_duration is None
    await accept_job(harness, alice, channel, duration=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_duration": 11}, "`max_duration` must be a whole number from 2 to 10"),
        ({"max_duration": 1}, "`max_duration` must be a whole number from 2 to 10"),
        ({"daily_seconds": 0}, "`daily_seconds` must be"),
        ({"daily_seconds": 10, "unset": "daily_seconds"}, "both set and unset"),
        ({"max_resolution": "4K"}, "`max_resolution` must be one of"),
    ],
)
async def test_defaults_refuses_bad_arguments(cog, harness, guild, mod, kwargs, message):
    with pytest.raises(UserError, match=message):
        await cog.defaults.callback(cog, as_(mod, harness, None), **kwargs)

    assert await harness.store.guild_settings(guild.id) == GuildSettings(guild.id)
    assert await audit_count(harness, guild) == 0


async def test_everyone_role_cannot_be_the_moderator_role(cog, harness, guild, mod):
    with pytest.raises(UserError, match="can't be @everyone"):
        await cog.defaults.callback(cog, as_(mod, harness, None), moderator_role=guild.default_role)

    assert await harness.store.guild_settings(guild.id) == GuildSettings(guild.id)


async def test_only_manage_server_can_change_the_moderator_role(cog, harness, guild, mod):
    helpers = make_role(guild, name="helpers")
    helper = make_member(guild, roles=[helpers])
    await cog.defaults.callback(cog, as_(mod, harness, None), moderator_role=helpers)
    assert (await harness.store.guild_settings(guild.id)).moderator_role_id == helpers.id
    anyone = make_role(guild, name="anyone")

    with pytest.raises(UserError, match="Manage Server"):
        await cog.defaults.callback(cog, as_(helper, harness, None), moderator_role=anyone)

    assert (await harness.store.guild_settings(guild.id)).moderator_role_id == helpers.id
    await cog.defaults.callback(cog, as_(helper, harness, None), daily_seconds=90)
    assert (await harness.store.guild_settings(guild.id)).daily_seconds == 90


# ----------------------------------------------------------------- /admin ban, pause, channels


async def test_ban_and_unban(cog, harness, guild, channel, mod, alice):
    await cog.ban.callback(cog, as_(mod, harness, channel), alice, reason="spam")

    with pytest.raises(Refused, match=r"not allowed to make videos in this server\. Reason: spam"):
        await harness.service.check_allowed(requester_for(alice, channel))
    (entry,) = await harness.store.audit_entries(guild.id)
    assert (entry.action, entry.after) == ("ban", {"banned": True, "reason": "spam"})

    unban = as_(mod, harness, channel)
    await cog.unban.callback(cog, unban, alice, reason="apologised")

    assert await allowed(harness, alice, channel)
    assert "can make videos here again" in last_reply(unban).text
    assert [e.action for e in await harness.store.audit_entries(guild.id)] == ["unban", "ban"]

    with pytest.raises(UserError, match="is not banned here"):
        await cog.unban.callback(cog, as_(mod, harness, channel), alice)
    assert await audit_count(harness, guild) == 2


async def test_ban_mentions_videos_still_in_progress(cog, harness, channel, mod, alice):
    await accept_job(harness, alice, channel)
    interaction = as_(mod, harness, channel)

    await cog.ban.callback(cog, interaction, alice)

    assert "Their 1 video(s) in progress will still finish" in last_reply(interaction).text


async def test_pause_and_resume(cog, harness, guild, channel, mod, alice):
    await cog.pause.callback(cog, as_(mod, harness, channel), reason="maintenance")

    with pytest.raises(Refused, match=r"paused in this server \(maintenance\)"):
        await harness.service.check_allowed(requester_for(alice, channel))
    with pytest.raises(UserError, match="already paused"):
        await cog.pause.callback(cog, as_(mod, harness, channel))
    assert (await harness.store.guild_settings(guild.id)).pause_reason == "maintenance"

    await cog.resume.callback(cog, as_(mod, harness, channel), reason="done")

    assert await allowed(harness, alice, channel)
    with pytest.raises(UserError, match="not paused"):
        await cog.resume.callback(cog, as_(mod, harness, channel))
    resume, pause = await harness.store.audit_entries(guild.id)
    assert pause.after == {"paused": True, "pause_reason": "maintenance"}
    assert resume.after == {"paused": False, "pause_reason": None, "reason": "done"}


async def test_channel_rules_follow_into_threads(cog, harness, guild, channel, mod, alice):
    other = make_text_channel(guild, name="chat")
    thread = make_thread(channel)

    await cog.channels_deny.callback(cog, as_(mod, harness, channel), channel)

    assert not await allowed(harness, alice, channel)
    assert not await allowed(harness, alice, thread)
    assert await allowed(harness, alice, other)

    await cog.channels_allow.callback(cog, as_(mod, harness, channel), other)
    listing = as_(mod, harness, channel)
    await cog.channels_list.callback(cog, listing)

    assert f"Videos only in: <#{other.id}>" in last_reply(listing).text
    assert f"Never in: <#{channel.id}>" in last_reply(listing).text
    await cog.channels_clear.callback(cog, as_(mod, harness, channel), channel)
    await cog.channels_clear.callback(cog, as_(mod, harness, channel), other)
    assert await allowed(harness, alice, thread)
    assert [e.action for e in await harness.store.audit_entries(guild.id)] == [
        "channel.clear",
        "channel.clear",
        "channel.allow",
        "channel.deny",
    ]
    with pytest.raises(UserError, match="has no rule"):
        await cog.channels_clear.callback(cog, as_(mod, harness, channel), channel)
    assert await audit_count(harness, guild) == 4


async def test_nsfw_only(cog, harness, guild, channel, mod, alice):
    nsfw = make_text_channel(guild, name="after-dark", nsfw=True)

    await cog.channels_nsfw_only.callback(cog, as_(mod, harness, channel), True)

    assert not await allowed(harness, alice, channel)
    assert await allowed(harness, alice, nsfw)
    assert await allowed(harness, alice, make_thread(nsfw))
    with pytest.raises(UserError, match="already on"):
        await cog.channels_nsfw_only.callback(cog, as_(mod, harness, channel), True)
    assert await audit_count(harness, guild) == 1


# ----------------------------------------------------------------- /admin jobs, cancel


class RecordingEvents:
    """The tracker's JobEvents, as the video cog registers them."""

    def __init__(self) -> None:
        self.job_changed = AsyncMock()
        self.deliver = AsyncMock(return_value=0)


async def test_jobs_lists_unfinished_and_recent_with_ids_and_ages(
    cog, harness, guild, channel, mod, alice
):
    bob = make_member(guild, name="bob")
    old = await move_job(harness, await accept_job(harness, alice, channel), JobState.DELIVERED)
    harness.clock.advance(300)
    running = await move_job(harness, await accept_job(harness, bob, channel), JobState.RUNNING)
    harness.clock.advance(125)
    interaction = as_(mod, harness, channel)

    await cog.jobs.callback(cog, interaction)

    embed = last_reply(interaction).embed
    unfinished, finished = embed.fields
    assert running.id in unfinished.value and "age 2 min" in unfinished.value
    assert f"<@{bob.id}>" in unfinished.value
    assert old.id in finished.value and "age 7 min" in finished.value

    only_alice = as_(mod, harness, channel)
    await cog.jobs.callback(cog, only_alice, user=alice, state="delivered")

    (delivered,) = last_reply(only_alice).embed.fields
    assert old.id in delivered.value and running.id not in delivered.value


async def test_cancel_refunds_exactly_once_and_tells_the_member(
    cog, harness, guild, channel, mod, alice
):
    events = RecordingEvents()
    harness.tracker.set_events(events)
    job = await move_job(harness, await accept_job(harness, alice, channel), JobState.SUBMITTED)
    interaction = as_(mod, harness, channel)

    await cog.cancel.callback(cog, interaction, job.id, reason="wrong server")

    assert "5 s refunded" in last_reply(interaction).text
    cancelled = await harness.store.get_job(job.id)
    assert cancelled.state is JobState.CANCELLED
    (told,) = [call.args[0] for call in events.job_changed.await_args_list]
    assert told.state is JobState.CANCELLED
    assert told.error == "Cancelled by a moderator: wrong server"

    with pytest.raises(Refused, match="already ended"):
        await cog.cancel.callback(cog, as_(mod, harness, channel), job.id)

    ledger = await harness.store.ledger_entries(guild.id, since_day=cancelled.quota_day)
    assert [(e.kind, e.seconds) for e in ledger if e.job_id == job.id] == [
        ("reserve", 5),
        ("refund", -5),
    ]
    assert await harness.store.usage(guild.id, alice.id, cancelled.quota_day) == 0
    assert events.job_changed.await_count == 1
    (entry,) = await harness.store.audit_entries(guild.id)
    assert (entry.action, entry.actor_id, entry.target) == ("cancel", mod.id, job.id)


async def test_cancel_refuses_unknown_ids_and_other_servers_jobs(cog, harness, guild, channel, mod):
    other_guild = make_guild()
    stranger = make_member(other_guild)
    theirs = await accept_job(harness, stranger, make_text_channel(other_guild))

    with pytest.raises(Refused, match="There is no job `nope` in this server"):
        await cog.cancel.callback(cog, as_(mod, harness, channel), "nope")
    with pytest.raises(Refused, match="There is no job"):
        await cog.cancel.callback(cog, as_(mod, harness, channel), theirs.id)
    with pytest.raises(UserError, match="Give the job's id"):
        await cog.cancel.callback(cog, as_(mod, harness, channel), "   ")

    assert (await harness.store.get_job(theirs.id)).state is JobState.RESERVED
    assert await audit_count(harness, guild) == 0


async def test_cancel_autocomplete_only_for_moderators(cog, harness, guild, channel, mod, alice):
    job = await accept_job(harness, alice, channel, prompt="Image 1 rides a horse")
    done = await move_job(harness, await accept_job(harness, alice, channel), JobState.FAILED)

    for_mod = await cog._cancel_job_ids(as_(mod, harness, channel), "HORSE")
    for_member = await cog._cancel_job_ids(as_(alice, harness, channel), "")

    assert [choice.value for choice in for_mod] == [job.id]
    assert done.id not in [choice.value for choice in for_mod]
    assert for_member == []


# ----------------------------------------------------------------- /admin usage, audit


async def finished_jobs(harness: BotHarness, guild, channel) -> tuple[Job, ...]:
    """Two delivered (5 s, 8 s), one failed, one cancelled: 13 s charged in the end."""
    alice = make_member(guild, name="alice")
    bob = make_member(guild, name="=HYPERLINK(bob)")
    jobs = (
        await move_job(
            harness, await accept_job(harness, alice, channel, duration=5), JobState.DELIVERED
        ),
        await move_job(
            harness, await accept_job(harness, bob, channel, duration=8), JobState.DELIVERED
        ),
        await move_job(
            harness, await accept_job(harness, alice, channel, duration=3), JobState.FAILED
        ),
        await move_job(
            harness, await accept_job(harness, bob, channel, duration=4), JobState.CANCELLED
        ),
    )
    return jobs


async def test_usage_totals_match_the_ledger_and_the_csv(cog, harness, guild, channel, mod):
    jobs = await finished_jobs(harness, guild, channel)
    interaction = as_(mod, harness, channel)

    await cog.usage.callback(cog, interaction, days=1)

    reply = last_reply(interaction)
    assert reply.ephemeral
    ledger = await harness.store.ledger_entries(guild.id, since_day=utc_day(harness.clock()))
    charged = sum(entry.seconds for entry in ledger if entry.job_id is not None)
    assert charged == 13
    assert f"**{charged} s** of video delivered, 4 job(s) by 2 member(s), 1 failed" in reply.text
    rows = list(csv.DictReader(io.StringIO(reply.file.fp.read().decode("utf-8"))))
    assert sum(int(row["seconds"]) for row in rows) == charged
    by_user = {int(row["user_id"]): row for row in rows}
    alice_id, bob_id = jobs[0].user_id, jobs[1].user_id
    assert (by_user[bob_id]["seconds"], by_user[bob_id]["jobs"]) == ("8", "2")
    assert (by_user[alice_id]["seconds"], by_user[alice_id]["failed"]) == ("5", "1")
    assert by_user[bob_id]["member"] == "'=HYPERLINK(bob)"  # no formula in a spreadsheet
    top = reply.embed.fields[0].value.splitlines()
    assert top[0].startswith(f"1. <@{bob_id}>: 8 s")


async def test_usage_csv_names_members_the_bot_has_no_cache_for(cog, harness, guild, channel, mod):
    # Without the Members intent discord.py knows almost nobody: names come from the jobs.
    names = ["carol", "-2+3", "@here", "\tcmd", "\r=1", "+SUM(A1)", "bob = fine"]
    members = [make_member(guild, name=name) for name in names]
    for member in members:
        await accept_job(harness, member, channel)
    guild.get_member.side_effect = lambda _user_id: None
    interaction = as_(mod, harness, channel)

    await cog.usage.callback(cog, interaction, days=1)

    data = last_reply(interaction).file.fp.read().decode("utf-8")
    rows = {int(row["user_id"]): row for row in csv.DictReader(io.StringIO(data))}
    shown = [rows[member.id]["member"] for member in members]
    assert shown == ["carol", "'-2+3", "'@here", "'\tcmd", "'\r=1", "'+SUM(A1)", "bob = fine"]


async def test_usage_csv_shows_a_members_latest_name(cog, harness, guild, channel, mod, alice):
    await accept_job(harness, alice, channel)
    alice.display_name = "Alice the Second"
    await accept_job(harness, alice, channel)
    guild.get_member.side_effect = lambda _user_id: None
    interaction = as_(mod, harness, channel)

    await cog.usage.callback(cog, interaction, days=1)

    data = last_reply(interaction).file.fp.read().decode("utf-8")
    [row] = list(csv.DictReader(io.StringIO(data)))
    assert (row["member"], row["jobs"]) == ("Alice the Second", "2")


async def test_usage_window_excludes_older_days(cog, harness, guild, channel, mod):
    await finished_jobs(harness, guild, channel)
    harness.clock.advance(2 * 86_400)

    narrow = as_(mod, harness, channel)
    await cog.usage.callback(cog, narrow, days=2)
    wide = as_(mod, harness, channel)
    await cog.usage.callback(cog, wide, days=3)

    assert "**0 s**" in last_reply(narrow).text and last_reply(narrow).file is None
    assert "**13 s**" in last_reply(wide).text


@pytest.mark.parametrize("days", [0, -1, 91])
async def test_usage_refuses_days_out_of_range(cog, harness, mod, days):
    interaction = as_(mod, harness, None)

    with pytest.raises(UserError, match="`days` must be a whole number from 1 to 90"):
        await cog.usage.callback(cog, interaction, days=days)
    assert not interaction.followup.send.await_count


async def test_audit_shows_latest_changes_first(cog, harness, guild, channel, mod, alice):
    await cog.ban.callback(cog, as_(mod, harness, channel), alice, reason="spam")
    await cog.quota_grant.callback(cog, as_(mod, harness, channel), alice, 15)
    interaction = as_(mod, harness, channel)

    await cog.audit.callback(cog, interaction, limit=10)

    lines = last_reply(interaction).embed.description.splitlines()
    assert "**quota.grant**" in lines[0] and f"<@{alice.id}>" in lines[0]
    assert "**ban**" in lines[1] and '"reason": "spam"' in lines[1]
    assert all(f"<@{mod.id}>" in line for line in lines)
