"""Faults on either side (scenarios 5 and 6): the API busy, rate limiting, failing a task or
refusing a request; Discord rate limiting, refusing a thread, or a video too large to upload.
Every job ends delivered, or failed with its quota refunded and the member told why.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import World, message_text
from tests.fakes.discord import MIB, FakeUser

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def restore_media(world: World) -> Iterator[None]:
    media_bytes, upload_limit = world.wan.media_bytes, world.discord.upload_limit
    yield
    world.wan.media_bytes, world.discord.upload_limit = media_bytes, upload_limit


async def request(world: World, user: FakeUser, prompt: str) -> str:
    reply = await world.command(
        "video", {"prompt": prompt, "ref1": world.image("hero.png")}, user=user
    )
    assert reply.ephemeral
    return reply.job_id


async def delivered_once(world: World, job_id: str) -> dict[str, Any]:
    job = await world.wait_state(job_id, "delivered")
    delivered = world.deliveries(job_id)
    assert len(delivered) == 1
    assert delivered[0]["id"] == str(job["delivered_message_id"])
    return delivered[0]


async def failed_and_refunded(world: World, job_id: str, user: FakeUser) -> str:
    """The member is told in the thread; returns what they were told."""
    await world.wait_state(job_id, "failed")
    assert world.ledger(user) == [("reserve", 5), ("refund", -5)]
    notices = await world.until(lambda: world.failure_notices(job_id), what="a failure notice")
    assert len(notices) == 1
    job = world.job(job_id)  # read now: a job may fail before its thread is made
    assert job["thread_id"] is not None
    assert int(notices[0]["channel_id"]) == job["thread_id"]
    assert f"<@{user.id}>" in notices[0]["content"]
    assert "Your 5 s of quota were refunded." in notices[0]["content"]
    status = world.discord.message(job["status_message_id"])
    await world.until(
        lambda: "❌ Failed" in message_text(status), what="the status message to say failed"
    )
    return str(notices[0]["content"])


# ----------------------------------------------------------------------------- the API


async def test_a_burst_of_503s_on_create_is_retried(world: World) -> None:
    user = world.new_user("busy")
    world.wan.busy_next(3, method="POST")
    job_id = await request(world, user, "Image 1 waits out a busy API")
    await delivered_once(world, job_id)
    assert len(world.creates_for("busy API")) == 4
    assert len(world.tasks_for("busy API")) == 1
    assert world.ledger(user) == [("reserve", 5), ("commit", 0)]


async def test_503s_while_polling_are_retried(world: World) -> None:
    user = world.new_user("polled")
    job_id = await request(world, user, "Image 1 is polled through errors")
    await world.wait_state(job_id, "submitted", "running")
    world.wan.busy_next(2, method="GET")
    await delivered_once(world, job_id)
    assert len(world.tasks_for("polled through errors")) == 1


async def test_a_429_with_retry_after_is_honoured(world: World) -> None:
    user = world.new_user("limited")
    world.wan.rate_limit_next(1, retry_after="1", method="POST")
    job_id = await request(world, user, "Image 1 respects the rate limit")
    await delivered_once(world, job_id)
    refused, accepted = (
        r for r in world.wan.creates if "respects the rate limit" in str(r.json.get("prompt"))
    )
    # The bot waited at least what Retry-After asked for (a lower bound the code guarantees).
    assert accepted.at - refused.at >= 0.99  # (less a hair of clock resolution)
    assert world.ledger(user) == [("reserve", 5), ("commit", 0)]


async def test_a_failed_task_is_refunded_and_the_member_told(world: World) -> None:
    user = world.new_user("unlucky")
    world.wan.fail_next_tasks = 1
    job_id = await request(world, user, "Image 1 meets a failing model")
    told = await failed_and_refunded(world, job_id, user)
    assert "could not be made: the video service could not generate this video" in told
    assert world.deliveries(job_id) == []


async def test_a_request_the_api_refuses_is_refunded_with_its_reason(world: World) -> None:
    user = world.new_user("refused")
    world.wan.fail_next(
        400,
        method="POST",
        body={
            "message": "Invalid parameters",
            "invalid_params": [{"name": "prompt", "reason": "contains blocked words"}],
        },
    )
    job_id = await request(world, user, "Image 1 says something unsayable")
    told = await failed_and_refunded(world, job_id, user)
    assert "the video service refused the request" in told
    assert "prompt: contains blocked words" in told
    assert world.tasks_for("unsayable") == []


# ----------------------------------------------------------------------------- Discord


async def test_rate_limited_messages_are_sent_after_the_wait(world: World) -> None:
    user = world.new_user("crowded")
    since = len(world.discord.calls)
    world.discord.rate_limit_next(
        "POST", "/channels/{channel_id}/messages", times=2, retry_after=0.3
    )
    job_id = await request(world, user, "Image 1 queues politely")
    await delivered_once(world, job_id)
    job = world.job(job_id)
    limited = [
        call
        for call in world.discord.calls[since:]
        if call.method == "POST"
        and call.route == "/channels/{channel_id}/messages"
        and call.status == 429
    ]
    assert len(limited) == 2
    status_posts = [
        m for m in world.discord.messages.values() if f"Video job {job_id}" in message_text(m)
    ]
    assert [m["id"] for m in status_posts] == [str(job["status_message_id"])]


async def test_no_thread_permission_falls_back_to_the_channel_and_says_why(world: World) -> None:
    user = world.new_user("threadless")
    world.discord.forbid_thread_creation()
    job_id = await request(world, user, "Image 1 stays in the channel")
    delivered = await delivered_once(world, job_id)
    job = world.job(job_id)
    assert job["thread_id"] is None
    assert int(delivered["channel_id"]) == world.discord.channel_id
    assert job["status_message_id"] not in world.discord.threads
    status = world.discord.message(job["status_message_id"])
    assert "I can't create a thread here" in message_text(status)
    assert "Create Public Threads" in message_text(status)


@pytest.mark.usefixtures("restore_media")
async def test_a_video_over_the_upload_limit_is_posted_as_a_link(world: World) -> None:
    user = world.new_user("bigfile")
    world.wan.media_bytes = 11 * MIB  # over the server's 10 MiB limit (boost tier 0)
    job_id = await request(world, user, "Image 1 in a very long take")
    delivered = await delivered_once(world, job_id)
    assert delivered["attachments"] == []
    content = delivered["content"]
    assert "too large to upload here (11.0 MB)" in content
    assert "this server's limit is 10 MB" in content
    task_id = world.tasks_for("very long take")[0]
    assert f"/_fake/media/{task_id}.mp4?token=exp=" in content
    assert "the link expires <t:" in content
    assert world.ledger(user) == [("reserve", 5), ("commit", 0)]


@pytest.mark.usefixtures("restore_media")
async def test_an_upload_discord_refuses_as_too_large_is_posted_as_a_link(world: World) -> None:
    user = world.new_user("lowlimit")
    # Smaller than the server's limit as the bot knows it, larger than what Discord takes.
    world.discord.upload_limit = 100 * 1024
    job_id = await request(world, user, "Image 1 hits an unexpected limit")
    delivered = await delivered_once(world, job_id)
    assert delivered["attachments"] == []
    assert "too large to upload here" in delivered["content"]
    refused = [c for c in world.discord.calls if c.status == 413 and c.files]
    assert len(refused) == 1


async def test_a_status_message_discord_refuses_at_first_does_not_hide_the_acceptance(
    world: World,
) -> None:
    user = world.new_user("hiccup")
    world.discord.fail_next(
        "POST", "/channels/{channel_id}/messages", 403, code=50001, message="Missing Access"
    )
    reply = await world.command(
        "video", {"prompt": "Image 1 survives a hiccup", "ref1": world.image()}, user=user
    )
    # The job was accepted and charged: the member must be told so, not that it went wrong.
    assert reply.ephemeral
    job_id = reply.job_id
    await delivered_once(world, job_id)
    assert world.ledger(user) == [("reserve", 5), ("commit", 0)]


async def test_an_unlisted_task_status_is_waited_out(world: World) -> None:
    user = world.new_user("patient")
    world.wan.task_seconds = None
    try:
        job_id = await request(world, user, "Image 1 sits in an odd queue")
        task_id = await world.until(
            lambda: next(iter(world.tasks_for("odd queue")), None), what="the task"
        )
    finally:
        world.wan.task_seconds = 0.3
    world.wan.set_status(task_id, "QUEUED_FOR_GPU")  # not a status the contract lists
    await world.until(
        lambda: world.job(job_id)["poll_count"] >= 2, what="the bot to keep reading the task"
    )
    assert world.job(job_id)["state"] in ("submitted", "running")
    world.wan.complete(task_id)
    await delivered_once(world, job_id)


# ----------------------------------------------------------------- when the thread is gone


async def in_flight(world: World, user: FakeUser, prompt: str) -> tuple[str, str, int]:
    """A job whose task waits for the test, with its thread (and kept references) in place."""
    world.wan.task_seconds = None
    try:
        job_id = await request(world, user, prompt)
        task_id = await world.until(
            lambda: next(iter(world.tasks_for(prompt)), None), what="the task"
        )
    finally:
        world.wan.task_seconds = 0.3
    # The reference files are re-posted in the thread in the background: let that finish.
    await world.until(lambda: world.job(job_id)["reference_copies_json"] != "{}", what="copies")
    return job_id, task_id, int(world.job(job_id)["thread_id"])


def assert_in_channel_replying_to_status(world: World, job_id: str, message: Any) -> None:
    job = world.job(job_id)
    assert int(message["channel_id"]) == world.discord.channel_id
    assert message["message_reference"]["message_id"] == str(job["status_message_id"])


async def test_a_server_at_its_thread_limit_gets_the_video_in_the_channel(world: World) -> None:
    user = world.new_user("crowdedthreads")
    world.discord.refuse_thread_creation_at_limit()
    job_id = await request(world, user, "Image 1 finds no room for a thread")
    delivered = await delivered_once(world, job_id)
    job = world.job(job_id)
    assert job["thread_id"] is None
    assert int(delivered["channel_id"]) == world.discord.channel_id
    status = world.discord.message(job["status_message_id"])
    assert "as many active threads as Discord allows" in message_text(status)
    assert world.ledger(user) == [("reserve", 5), ("commit", 0)]


async def test_a_thread_deleted_mid_job_gets_the_video_in_the_channel(world: World) -> None:
    user = world.new_user("deleted")
    job_id, task_id, thread_id = await in_flight(world, user, "Image 1 loses its thread")
    await world.discord.delete_thread(thread_id)

    world.wan.complete(task_id)

    delivered = await delivered_once(world, job_id)
    assert_in_channel_replying_to_status(world, job_id, delivered)
    assert "the video's thread was deleted" in delivered["content"]
    assert delivered["attachments"][0]["filename"].endswith(".mp4")
    assert world.ledger(user) == [("reserve", 5), ("commit", 0)]


async def test_a_locked_thread_gets_the_video_in_the_channel(world: World) -> None:
    user = world.new_user("locked")
    job_id, task_id, thread_id = await in_flight(world, user, "Image 1 finds its thread locked")
    await world.discord.archive_thread(thread_id, locked=True)

    world.wan.complete(task_id)

    delivered = await delivered_once(world, job_id)
    assert_in_channel_replying_to_status(world, job_id, delivered)
    assert "the video's thread is locked" in delivered["content"]


async def test_when_the_channel_refuses_too_the_member_is_told_where_the_video_is(
    world: World,
) -> None:
    user = world.new_user("nowhere")
    job_id, task_id, thread_id = await in_flight(world, user, "Image 1 has nowhere to go")
    await world.discord.delete_thread(thread_id)
    channel_posts = f"/channels/{world.discord.channel_id}/messages"
    world.discord.fail_next("POST", channel_posts, 403, code=50013, message="Missing Permissions")

    world.wan.complete(task_id)

    job = await world.wait_state(job_id, "delivered")
    # Found on its status message (which /history links to), with the download link.
    assert job["delivered_message_id"] == job["status_message_id"]
    status = world.discord.message(job["status_message_id"])
    assert "Download it here" in message_text(status) and job["result_url"] in message_text(status)
    [dm] = world.discord.dm_messages(user)
    assert job["result_url"] in dm["content"] and "/history" in dm["content"]
    assert f"/{world.discord.channel_id}/{job['status_message_id']}" in dm["content"]
    assert world.ledger(user) == [("reserve", 5), ("commit", 0)]


async def test_a_failure_in_a_deleted_thread_is_told_in_the_channel(world: World) -> None:
    user = world.new_user("failedgone")
    job_id, task_id, thread_id = await in_flight(world, user, "Image 1 fails without a thread")
    await world.discord.delete_thread(thread_id)

    world.wan.fail(task_id)

    await world.wait_state(job_id, "failed")
    [notice] = await world.until(lambda: world.failure_notices(job_id), what="a failure notice")
    assert_in_channel_replying_to_status(world, job_id, notice)
    assert "Your 5 s of quota were refunded." in notice["content"]
    assert world.ledger(user) == [("reserve", 5), ("refund", -5)]
