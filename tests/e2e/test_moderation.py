"""Moderator commands end to end (scenario 7): ban, pause, quota set and cancel change what
members can do at once, and every one of them is refused to a member without Manage Server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from discord_side.privately import NO_DM_NOTE
from tests.e2e.harness import Options, Reply, World, message_text
from tests.fakes.discord import FakeUser

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def world_options() -> Options:
    return Options(task_seconds=None)  # jobs stay in flight until the test moves them


async def moderate(world: World, command: str, options: dict[str, Any] | None = None) -> Reply:
    reply = await world.command(command, options, user=world.discord.moderator)
    assert reply.ephemeral
    assert "Only moderators" not in reply.text and "went wrong" not in reply.text, reply.text
    return reply


async def video(world: World, user: FakeUser, prompt: str, duration: int = 5) -> Reply:
    options = {"prompt": prompt, "ref1": world.image("hero.png"), "duration": duration}
    reply = await world.command("video", options, user=user)
    assert reply.ephemeral
    return reply


def audit(world: World, action: str) -> list[Any]:
    return world.rows("SELECT * FROM audit_log WHERE action = ? ORDER BY id", action)


# Every /admin subcommand (18), each as a member without Manage Server would call it.
REFUSED: dict[str, Callable[[World, FakeUser], tuple[str, dict[str, Any]]]] = {
    "quota show": lambda w, target: ("admin quota show", {"user": target}),
    "quota reset": lambda w, target: ("admin quota reset", {"user": target}),
    "channels allow": lambda w, target: ("admin channels allow", {"channel": w.discord.channel_id}),
    "channels clear": lambda w, target: ("admin channels clear", {"channel": w.discord.channel_id}),
    "channels list": lambda w, target: ("admin channels list", {}),
    "channels nsfw-only": lambda w, target: ("admin channels nsfw-only", {"enabled": True}),
    "usage": lambda w, target: ("admin usage", {"days": 1}),
    "ban": lambda w, target: ("admin ban", {"user": target, "reason": "nope"}),
    "unban": lambda w, target: ("admin unban", {"user": target}),
    "pause": lambda w, target: ("admin pause", {"reason": "nope"}),
    "resume": lambda w, target: ("admin resume", {}),
    "quota set": lambda w, target: ("admin quota set", {"user": target, "daily_seconds": 999}),
    "quota grant": lambda w, target: ("admin quota grant", {"user": target, "seconds": 60}),
    "cancel": lambda w, target: ("admin cancel", {"job_id": "0123456789ab"}),
    "defaults": lambda w, target: ("admin defaults", {"daily_seconds": 999}),
    "channels deny": lambda w, target: ("admin channels deny", {"channel": w.discord.channel_id}),
    "jobs": lambda w, target: ("admin jobs", {}),
    "audit": lambda w, target: ("admin audit", {}),
}


@pytest.mark.parametrize("command", REFUSED.values(), ids=list(REFUSED))
async def test_moderator_commands_are_refused_to_members(
    world: World, command: Callable[[World, FakeUser], tuple[str, dict[str, Any]]]
) -> None:
    member, target = world.new_user("member"), world.new_user("target")
    name, options = command(world, target)
    changes = len(world.rows("SELECT id FROM audit_log"))

    reply = await world.command(name, options, user=member)

    assert reply.ephemeral
    assert "Only moderators can use this" in reply.text
    assert len(world.rows("SELECT id FROM audit_log")) == changes
    assert world.rows("SELECT * FROM bans WHERE user_id = ?", target.id) == []
    assert world.rows("SELECT * FROM user_overrides WHERE user_id = ?", target.id) == []
    assert world.rows("SELECT * FROM guild_settings WHERE paused = 1") == []


async def test_a_ban_stops_a_member_until_unbanned(world: World) -> None:
    member = world.new_user("troll")
    banned = await moderate(world, "admin ban", {"user": member, "reason": "spamming"})
    assert "can no longer make videos here" in banned.text

    refused = await video(world, member, "Image 1 sneaks in")
    assert "not allowed to make videos in this server. Reason: spamming" in refused.text
    quota = await world.command("quota", user=member)
    assert "You may not make videos in this server: spamming" in quota.text
    assert world.jobs_of(member) == [] and world.ledger(member) == []

    await moderate(world, "admin unban", {"user": member, "reason": "apologised"})
    accepted = await video(world, member, "Image 1 is welcome back")
    assert world.job(accepted.job_id)["user_id"] == member.id
    [ban] = audit(world, "ban")
    assert (ban["actor_id"], ban["target"]) == (world.discord.moderator.id, f"user:{member.id}")
    assert len(audit(world, "unban")) == 1


async def test_a_pause_refuses_everyone_until_resumed(world: World) -> None:
    member = world.new_user("eager")
    await moderate(world, "admin pause", {"reason": "server event"})
    try:
        refused = await video(world, member, "Image 1 during the pause")
        assert "Video requests are paused in this server (server event)" in refused.text
        assert world.jobs_of(member) == []
    finally:
        await moderate(world, "admin resume")
    accepted = await video(world, member, "Image 1 after the pause")
    assert world.job(accepted.job_id)["state"] in ("reserved", "submitting", "submitted")


async def test_a_quota_override_applies_to_the_next_request(world: World) -> None:
    member = world.new_user("thrifty")
    updated = await moderate(world, "admin quota set", {"user": member, "daily_seconds": 7})
    assert "daily 7 s" in updated.text

    first = await video(world, member, "Image 1 within the allowance")
    assert "5 s of your daily quota" in first.text
    second = await video(world, member, "Image 1 beyond the allowance")
    assert "costs 5 s of your daily quota but you have 2 s left" in second.text
    quota = await world.command("quota", user=member)
    assert "**2 s** of video left today (daily allowance 7 s, 5 s used)" in quota.text
    assert world.ledger(member) == [("reserve", 5)]


async def test_cancel_refunds_and_tells_the_member(world: World) -> None:
    member = world.new_user("patient")
    job_id = (await video(world, member, "Image 1 waits forever")).job_id
    await world.wait_state(job_id, "submitted")

    reply = await moderate(world, "admin cancel", {"job_id": job_id, "reason": "wrong channel"})

    assert f"Cancelled job `{job_id}` of <@{member.id}>; 5 s refunded." in reply.text
    await world.wait_state(job_id, "cancelled")
    assert world.ledger(member) == [("reserve", 5), ("refund", -5)]
    [notice] = await world.until(lambda: world.failure_notices(job_id), what="the member told")
    job = world.job(job_id)  # read now: the thread may be made after the job was submitted
    assert job["thread_id"] is not None and int(notice["channel_id"]) == job["thread_id"]
    assert "was cancelled: Cancelled by a moderator: wrong channel" in notice["content"]
    status = world.discord.message(job["status_message_id"])
    await world.until(lambda: "🚫 Cancelled" in message_text(status), what="status: cancelled")
    again = await world.command("admin cancel", {"job_id": job_id}, user=world.discord.moderator)
    assert "has already ended (cancelled)" in again.text
    assert len(audit(world, "cancel")) == 1


async def test_usage_and_jobs_reports_reach_the_moderator(world: World) -> None:
    member = world.new_user("counted")
    job_id = (await video(world, member, "Image 1 is on the books")).job_id
    await world.wait_state(job_id, "submitted")

    jobs = await moderate(world, "admin jobs", {"user": member})
    assert job_id in jobs.text
    usage = await moderate(world, "admin usage", {"days": 1})
    assert "Usage, last 1 day(s)" in usage.text
    [csv] = usage.message["attachments"]
    assert csv["filename"].endswith(".csv")
    rows = world.discord.attachment_bytes(int(csv["id"])).decode().splitlines()
    assert rows[0] == "user_id,member,seconds,jobs,failed"
    # Named, though the bot has no member cache (no Members intent): as Discord shows them.
    assert any(row.startswith(f"{member.id},{member.username.title()},") for row in rows[1:])


async def thread_of_a_job(world: World) -> int:
    job_id = (await video(world, world.new_user("starter"), "Image 1 opens a thread")).job_id
    thread_id: int = await world.until(lambda: world.job(job_id)["thread_id"], what="a thread")
    return thread_id


async def test_a_banned_members_reply_in_a_thread_is_refused_in_private(world: World) -> None:
    thread_id = await thread_of_a_job(world)
    troll, hidden = world.new_user("troll"), world.new_user("hidden")
    world.discord.close_dms(hidden)
    for member in (troll, hidden):
        await moderate(world, "admin ban", {"user": member, "reason": "spammed the threads"})
    bot = world.discord.bot_user

    try:
        posted = await world.discord.post_message(
            thread_id, f"{bot.mention} Image 1 once more", author=troll
        )
        [dm] = await world.until(lambda: world.discord.dm_messages(troll), what="a DM")
        assert "not allowed to make videos in this server" in dm["content"]
        assert "spammed the threads" in dm["content"]
        assert f"/{thread_id}/{posted['id']}" in dm["content"]  # which message it is about

        # DMs closed: a short public note, without the moderator's reason.
        quiet = await world.discord.post_message(
            thread_id, f"{bot.mention} Image 1 twice more", author=hidden
        )

        def note() -> dict[str, Any] | None:
            return next(
                (
                    m
                    for m in world.discord.channel_messages(thread_id)
                    if (m.get("message_reference") or {}).get("message_id") == quiet["id"]
                ),
                None,
            )

        answered = await world.until(note, what="the public note")
        assert answered["content"] == NO_DM_NOTE
        public = [message_text(m) for m in world.discord.channel_messages(thread_id)]
        assert not any("spammed" in text or "not allowed" in text for text in public)
        assert world.jobs_of(troll) == world.jobs_of(hidden) == []
    finally:
        for member in (troll, hidden):
            await moderate(world, "admin unban", {"user": member})
