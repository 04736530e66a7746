"""The bot is SIGKILLed with jobs at every point of their lives and restarted over the same
database (scenario 4): every job is delivered exactly once, from exactly one API task.

The fake API runs tasks only when told (``task_seconds=None``), and faults hold a job where a
crash should find it:

- accepted, not submitted: the API answers 503 to every create attempt, so the job goes back to
  ``reserved`` to be retried later; the crash comes before that retry;
- submitted, not finished: the task is left running;
- finished, not delivered: Discord refuses the upload (503), so the job stays ``completed``
  between delivery attempts;
- submitted with the outcome unknown: the API made the task but never answered the create (with
  the default settings nothing proves that task is the job's: it is refunded, never paid twice);
- status message posted, its thread not yet made: Discord rate limits the thread creation;
- posted to Discord, not recorded: the database is put back to that state (see the test).

A graceful restart (SIGTERM) resumes a job too, and the buttons of a video posted before a
restart still work after it.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.e2e.harness import WAIT, Options, World, message_text
from tests.fakes.discord import FakeUser

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def world_options() -> Options:
    return Options(task_seconds=None)


async def request(world: World, user: FakeUser, prompt: str) -> str:
    reply = await world.command(
        "video", {"prompt": prompt, "ref1": world.image("hero.png")}, user=user
    )
    return reply.job_id


async def task_of(world: World, prompt: str) -> str:
    tasks = await world.until(lambda: world.tasks_for(prompt), what=f"a task for {prompt!r}")
    return tasks[0]


async def assert_delivered_once(world: World, job_id: str, prompt: str, user: FakeUser) -> None:
    job = await world.wait_state(job_id, "delivered")
    delivered = world.deliveries(job_id)
    assert len(delivered) == 1, f"job {job_id} delivered {len(delivered)} times"
    assert int(delivered[0]["channel_id"]) == job["thread_id"]
    assert delivered[0]["id"] == str(job["delivered_message_id"])
    assert len(world.tasks_for(prompt)) == 1, f"job {job_id}: more than one paid task"
    statuses = [
        message
        for message in world.discord.channel_messages(world.discord.channel_id)
        if any(f"Video job {job_id}" in str(e.get("title")) for e in message["embeds"])
    ]
    assert len(statuses) == 1, f"job {job_id} has {len(statuses)} status messages"
    assert world.ledger(user) == [("reserve", 5), ("commit", 0)]


async def test_jobs_at_every_stage_survive_a_crash(world: World) -> None:
    users = {stage: world.new_user(stage) for stage in ("running", "done", "queued")}
    prompts = {stage: f"Image 1 crash drill {stage}" for stage in users}

    # Submitted, still running at the API.
    running = await request(world, users["running"], prompts["running"])
    await world.wait_state(running, "submitted")

    # Finished at the API, but Discord refuses the upload: stays completed between attempts.
    world.discord.fail_uploads(status=503, times=1000)
    done = await request(world, users["done"], prompts["done"])
    await world.wait_state(done, "submitted")
    world.wan.complete(await task_of(world, prompts["done"]))
    await world.until(
        lambda: world.job(done)["delivery_attempts"] >= 1, what="a failed delivery attempt"
    )
    assert world.job(done)["state"] == "completed"

    # Accepted, but every create attempt is refused as busy: back to reserved, to retry later.
    world.wan.busy_next(4, method="POST")
    queued = await request(world, users["queued"], prompts["queued"])
    await world.until(
        lambda: world.job(queued)["state"] == "reserved" and world.job(queued)["submit_attempts"],
        timeout=20,
        what="the create to be given up for now",
    )
    assert world.tasks_for(prompts["queued"]) == []

    await world.crash_bot()
    world.discord.clear_faults()
    await world.start_bot()

    world.wan.complete(await task_of(world, prompts["running"]))
    world.wan.complete(await task_of(world, prompts["queued"]))
    for stage, job_id in (("running", running), ("done", done), ("queued", queued)):
        await assert_delivered_once(world, job_id, prompts[stage], users[stage])
    # One create each; the queued job's first four were refused (503), so made no task.
    assert [len(world.creates_for(prompts[stage])) for stage in users] == [1, 1, 5]


async def test_a_crash_while_the_create_is_unanswered_refunds_rather_than_guess(
    world: World,
) -> None:
    """The task was made but the answer never came. The API key may be shared with other tools
    (WAN_KEY_DEDICATED is off by default) and webhooks are off, so nothing proves the unowned
    task is this job's: the job fails and is refunded, and no second task is paid for."""
    user = world.new_user("unanswered")
    prompt = "Image 1 crash drill unanswered"
    world.wan.hang_next(30.0, method="POST")  # the task is made; the answer never comes
    job_id = await request(world, user, prompt)
    await task_of(world, prompt)
    assert world.job(job_id)["state"] == "submitting"
    # The reference files are copied into the new thread first: a SIGKILL cutting that upload
    # would be a fault of the test, not of the bot.
    await world.until(
        lambda: world.job(job_id)["reference_copies_json"] != "{}", what="the kept references"
    )

    await world.crash_bot()
    await world.start_bot()

    # The restarted bot lets the API's list catch up (TRACKER_RECONCILE_GRACE_SECONDS, 30 s by
    # default, from the create), finds one unowned task, and cannot tell whose it is.
    job = await world.wait_state(job_id, "failed", timeout=60)
    assert "not charged" in str(job["error"])
    assert job["task_id"] is None
    assert world.ledger(user) == [("reserve", 5), ("refund", -5)]
    notices = await world.until(lambda: world.failure_notices(job_id), what="a failure notice")
    assert len(notices) == 1 and f"<@{user.id}>" in notices[0]["content"]
    assert len(world.creates_for(prompt)) == 1


@pytest.mark.parametrize("later", [False, True], ids=["within-nonce-window", "much-later"])
async def test_a_crash_between_posting_and_recording_does_not_post_twice(
    world: World, later: bool
) -> None:
    """The crash lands after Discord took the delivery but before the database said so.

    Killing the bot inside that window cannot be timed from outside, so the test kills it after
    the delivery and puts the database back to the state that window leaves (one transaction:
    the job ``completed``, its quota not yet committed). Restarted at once, Discord's nonce
    returns the earlier message; restarted ``later`` (Discord's clock and the job's completion
    time both moved past the nonce window), only the bot's own search of the thread can.
    """
    user = world.new_user("window")
    prompt = f"Image 1 crash drill window {'later' if later else 'soon'}"
    job_id = await request(world, user, prompt)
    world.wan.complete(await task_of(world, prompt))
    first = await world.wait_state(job_id, "delivered")
    await world.crash_bot()

    elapsed = world.discord.nonce_window + 60 if later else 0.0
    conn = sqlite3.connect(world.db_path)
    try:
        with conn:
            conn.execute(
                "UPDATE jobs SET state = 'completed', delivered_at = NULL,"
                " delivered_message_id = NULL, completed_at = completed_at - ? WHERE id = ?",
                (elapsed, job_id),
            )
            conn.execute("DELETE FROM quota_ledger WHERE job_id = ? AND kind = 'commit'", (job_id,))
    finally:
        conn.close()
    world.discord.advance_clock(elapsed)

    await world.start_bot()

    again = await world.wait_state(job_id, "delivered")
    assert again["delivered_message_id"] == first["delivered_message_id"]
    await assert_delivered_once(world, job_id, prompt, user)


async def test_a_graceful_restart_mid_job_resumes_it(world: World) -> None:
    user = world.new_user("sigterm")
    prompt = "Image 1 crash drill sigterm"
    job_id = await request(world, user, prompt)
    await world.wait_state(job_id, "submitted")

    assert await world.stop_bot() == 0
    await world.start_bot()

    world.wan.complete(await task_of(world, prompt))
    await assert_delivered_once(world, job_id, prompt, user)


async def test_a_crash_while_the_thread_is_being_made_still_gives_the_video_a_thread(
    world: World,
) -> None:
    user = world.new_user("threadcrash")
    prompt = "Image 1 crash drill thread"
    # Discord makes the bot wait before it may create the thread; the crash comes meanwhile.
    world.discord.rate_limit_next(
        "POST", "/channels/{channel_id}/messages/{message_id}/threads", retry_after=30.0
    )
    await world.discord.dispatch_slash_command(
        "video", {"prompt": prompt, "ref1": world.image("hero.png")}, user=user
    )
    await world.discord.wait_for_call(
        "POST", "/channels/{channel_id}/messages/{message_id}/threads", status=429, timeout=WAIT
    )
    [job] = world.jobs_of(user)
    # Crash once the task is recorded: a crash between the create and its record is another
    # test's (without evidence that job is refunded, not delivered).
    job = await world.wait_state(job["id"], "submitted")
    assert job["status_message_id"] is not None and job["thread_id"] is None

    await world.crash_bot()
    world.discord.clear_faults()
    await world.start_bot()

    world.wan.complete(await task_of(world, prompt))
    await assert_delivered_once(world, job["id"], prompt, user)
    done = world.job(job["id"])
    assert done["thread_id"] == done["status_message_id"]
    status = world.discord.message(done["status_message_id"])
    assert "can't create a thread" not in message_text(status)


async def test_buttons_on_a_video_keep_working_after_a_restart(world: World) -> None:
    owner, clicker = world.new_user("before"), world.new_user("after")
    prompt = "Image 1 crash drill buttons"
    job_id = await request(world, owner, prompt)
    world.wan.complete(await task_of(world, prompt))
    await world.wait_state(job_id, "delivered")
    delivery = world.deliveries(job_id)[0]

    assert await world.stop_bot() == 0
    await world.start_bot()

    reply = await world.click(delivery, f"wan:reroll:{job_id}", clicker)
    assert reply.ephemeral
    new = await world.wait_state(reply.job_id, "submitted")
    assert (new["user_id"], new["parent_job_id"]) == (clicker.id, job_id)
    world.wan.complete(world.tasks_for(prompt)[-1])
    await world.wait_state(reply.job_id, "delivered")
    assert len(world.deliveries(reply.job_id)) == 1
