"""A video from start to finish (scenario 1), then a reroll and replies in its thread
(scenario 3); also Delete, references Discord has dropped, a /video inside a thread, /history,
/help, and a dozen jobs in flight at once. One bot process serves the module.

Everything here is what members do every day: none of it may log an ERROR (alerts watch for
those), which every test checks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import ACCEPTED, World, message_text, png
from tests.fakes.discord import FakeUser, iter_components

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ERROR_LINE = re.compile(r"^\S+ \S+ (?:ERROR|CRITICAL) .*$", re.MULTILINE)


@pytest.fixture(autouse=True)
def no_error_is_logged(world: World) -> Iterator[None]:
    start = len(world.process.log_text())
    yield
    errors = ERROR_LINE.findall(world.process.log_text()[start:])
    assert errors == [], "the bot logged errors for everyday use"


PROMPT = "Image 1 and Image 2 share an umbrella while Video 1 plays guitar"


def urls(body: dict[str, Any], key: str) -> list[str]:
    return [item["url"] for item in body.get(key, [])]


async def test_video_is_made_delivered_in_a_thread_and_charged(world: World) -> None:
    alice = world.new_user("mika")
    fox, cat = world.image("fox.png"), world.image("cat.png", 640, 360)
    guitarist, riff = world.video_file("guitarist.mp4"), world.voice("riff.mp3")

    reply = await world.command(
        "video",
        {
            "prompt": PROMPT,
            "ref1": fox,
            "ref2": cat,
            "ref3": guitarist,
            "voice3": riff,
            "duration": 6,
            "resolution": "720P",
        },
        user=alice,
    )

    # The ephemeral acknowledgement carries the label map.
    assert reply.ephemeral
    job_id = reply.job_id
    assert "6 s of your daily quota" in reply.text
    assert "ref 1 → Image 1 (fox.png)" in reply.text
    assert "ref 2 → Image 2 (cat.png)" in reply.text
    assert "ref 3 → Video 1 (guitarist.mp4, voice: riff.mp3)" in reply.text

    # The API got the references in order, with the voice on the video.
    body = (await world.until(lambda: world.creates_for("share an umbrella"), what="a create"))[0]
    assert urls(body, "image_urls") == [fox["url"], cat["url"]]
    assert body["video_urls"] == [{"url": guitarist["url"], "reference_voice": riff["url"]}]
    assert all("reference_voice" not in item for item in body["image_urls"])
    assert body["prompt"] == PROMPT
    assert (body["duration"], body["resolution"]) == (6, "720P")

    # A public status message, a thread started from it, the MP4 posted in the thread.
    job = await world.wait_state(job_id, "delivered")
    status_id = job["status_message_id"]
    status = world.discord.message(status_id)
    assert not int(status["flags"]) & 64  # public
    assert int(status["channel_id"]) == world.discord.channel_id
    assert f"Video job {job_id}" in status["embeds"][0]["title"]
    assert job["thread_id"] == status_id  # a thread started from a message shares its id
    assert status_id in world.discord.threads
    delivered = world.deliveries(job_id)
    assert len(delivered) == 1
    assert int(delivered[0]["channel_id"]) == job["thread_id"]
    assert delivered[0]["id"] == str(job["delivered_message_id"])
    attachment = delivered[0]["attachments"][0]
    assert attachment["filename"].endswith(".mp4")
    assert attachment["size"] == world.wan.media_bytes
    posted = world.discord.attachment_bytes(int(attachment["id"]))
    assert posted[4:8] == b"ftyp" and len(posted) == world.wan.media_bytes

    # The status message ends as done.
    await world.until(
        lambda: "✅ Done" in str(world.discord.message(status_id)["embeds"][0]),
        what="the status message to say done",
    )

    # Charged: the reservation stands (committed), and /quota says so.
    assert world.ledger(alice) == [("reserve", 6), ("commit", 0)]
    quota = await world.command("quota", user=alice)
    assert quota.ephemeral
    assert "**594 s** of video left today" in quota.text


async def make_video(world: World, user: FakeUser, prompt: str) -> tuple[str, dict[str, Any]]:
    """A delivered video with an image and a video (with a voice); returns its id and refs."""
    refs = {
        "ref1": world.image("hero.png"),
        "ref2": world.video_file("dance.mp4"),
        "voice2": world.voice("hum.mp3"),
    }
    reply = await world.command("video", {"prompt": prompt, **refs}, user=user)
    job_id = reply.job_id
    await world.wait_state(job_id, "delivered")
    # The files are re-posted in the thread in the background: wait, so reuse is predictable.
    await world.until(lambda: world.job(job_id)["reference_copies_json"] != "{}", what="copies")
    return job_id, refs


def refreshed_links(world: World, since: int) -> dict[str, str]:
    """original → refreshed, from every ``POST /attachments/refresh-urls`` after call ``since``."""
    found: dict[str, str] = {}
    for call in world.discord.calls[since:]:
        if call.method == "POST" and call.path == "/attachments/refresh-urls":
            assert call.status == 200
            for item in call.response["refreshed_urls"]:
                found[item["original"]] = item["refreshed"]
    return found


def kept_copies(world: World, thread_id: int) -> dict[str, dict[str, Any]]:
    """filename → attachment, for the reference files the bot re-posted in the thread."""
    return {
        attachment["filename"]: attachment
        for message in world.discord.channel_messages(thread_id)
        if int(message["author"]["id"]) == world.discord.bot_user.id
        and message["content"].startswith("🎭")
        for attachment in message["attachments"]
    }


def assert_from_kept_copies(body: dict[str, Any], thread_id: int, kept: dict[str, Any]) -> None:
    """The create used the copies on the bot's own message in the thread, freshly signed."""
    image_url = body["image_urls"][0]["url"]
    video = body["video_urls"][0]
    for url, name in (
        (image_url, "hero.png"),
        (video["url"], "dance.mp4"),
        (video["reference_voice"], "hum.mp3"),
    ):
        assert f"/{thread_id}/" in url and name in url and "ephemeral" not in url
        assert url != kept[name]["url"]


async def test_reroll_makes_a_new_job_from_the_kept_copies_charged_to_the_clicker(
    world: World,
) -> None:
    owner, clicker = world.new_user("owner"), world.new_user("clicker")
    job_id, refs = await make_video(world, owner, "Image 1 waves at Video 1 by the sea")
    old = world.job(job_id)
    thread_id = old["thread_id"]
    # The slash command's files are ephemeral: the bot re-posts them once in the thread.
    kept = kept_copies(world, thread_id)
    assert set(kept) == {refs["ref1"]["filename"], refs["ref2"]["filename"], "hum.mp3"}
    delivery = world.deliveries(job_id)[0]
    world.discord.advance_clock(120)  # time passes: links are signed anew when fetched
    since = len(world.discord.calls)

    reply = await world.click(delivery, f"wan:reroll:{job_id}", clicker)

    assert reply.ephemeral
    new_id = reply.job_id
    assert new_id != job_id
    assert refreshed_links(world, since) == {}  # no undocumented refresh was needed
    await world.until(lambda: len(world.creates_for("waves at Video 1")) == 2, what="a create")
    first, again = world.creates_for("waves at Video 1")
    assert_from_kept_copies(again, thread_id, kept)
    assert again["prompt"] == first["prompt"]
    assert again["duration"] == first["duration"]

    new = await world.wait_state(new_id, "delivered")
    assert (new["user_id"], new["origin"], new["parent_job_id"]) == (clicker.id, "reroll", job_id)
    assert new["thread_id"] == old["thread_id"]
    assert new["reference_copies_json"] == world.job(job_id)["reference_copies_json"]
    delivered = world.deliveries(new_id)
    assert len(delivered) == 1 and int(delivered[0]["channel_id"]) == old["thread_id"]
    # Charged to whoever clicked; the owner's quota is untouched by the reroll.
    assert world.ledger(clicker) == [("reserve", 5), ("commit", 0)]
    assert world.ledger(owner) == [("reserve", 5), ("commit", 0)]


async def test_a_reply_in_the_thread_makes_a_new_video_with_its_flags(world: World) -> None:
    owner, replier = world.new_user("owner"), world.new_user("replier")
    job_id, _refs = await make_video(world, owner, "Image 1 juggles while Video 1 sings")
    thread_id = world.job(job_id)["thread_id"]
    world.discord.advance_clock(120)
    since = len(world.discord.calls)
    bot = world.discord.bot_user

    posted = await world.discord.post_message(
        thread_id,
        f"{bot.mention} now Image 1 dances while Video 1 sings --seed 42 --duration 8",
        author=replier,
    )

    def answer() -> dict[str, Any] | None:
        for message in world.discord.channel_messages(thread_id):
            reference = message.get("message_reference") or {}
            if reference.get("message_id") == posted["id"]:
                return message
        return None

    answered = await world.until(answer, what="the bot's answer to the reply")
    assert int(answered["author"]["id"]) == bot.id
    match = ACCEPTED.search(answered["content"])
    assert match is not None, answered["content"]
    new_id = match.group(1)
    body = (await world.until(lambda: world.creates_for("now Image 1 dances"), what="create"))[0]
    assert body["seed"] == 42 and body["duration"] == 8
    assert body["prompt"] == "now Image 1 dances while Video 1 sings"
    assert_from_kept_copies(body, thread_id, kept_copies(world, thread_id))
    assert refreshed_links(world, since) == {}

    new = await world.wait_state(new_id, "delivered")
    assert (new["user_id"], new["origin"], new["parent_job_id"]) == (replier.id, "reply", job_id)
    assert len(world.deliveries(new_id)) == 1
    assert int(world.deliveries(new_id)[0]["channel_id"]) == thread_id
    assert world.ledger(replier) == [("reserve", 8), ("commit", 0)]
    assert world.ledger(owner) == [("reserve", 5), ("commit", 0)]


def answer_to(world: World, thread_id: int, posted: dict[str, Any]) -> dict[str, Any] | None:
    """The bot's public reply to the message ``posted`` in the thread, once there is one."""
    for message in world.discord.channel_messages(thread_id):
        if (message.get("message_reference") or {}).get("message_id") == posted["id"]:
            return message
    return None


async def test_mentions_in_a_reply_never_reach_the_api(world: World) -> None:
    owner, replier = world.new_user("owner"), world.new_user("replier")
    job_id, _refs = await make_video(world, owner, "Image 1 bows to Video 1")
    thread_id = world.job(job_id)["thread_id"]
    bot = world.discord.bot_user

    # The bot's mention at the end, another member's in the middle.
    posted = await world.discord.post_message(
        thread_id,
        f"now Image 1 bows to {owner.mention} and Video 1 claps --dur 3 {bot.mention}",
        author=replier,
        mentions=[owner],
    )

    await world.until(lambda: answer_to(world, thread_id, posted), what="the bot's answer")
    [body] = await world.until(lambda: world.creates_for("now Image 1 bows"), what="a create")
    # The member's name as Discord shows it (the fake's display name is the title-cased one).
    assert body["prompt"] == f"now Image 1 bows to {owner.username.title()} and Video 1 claps"
    assert body["duration"] == 3


async def test_a_reply_in_an_archived_thread_is_answered(world: World) -> None:
    owner = world.new_user("owner")
    job_id, _refs = await make_video(world, owner, "Image 1 naps beside Video 1")
    thread_id = world.job(job_id)["thread_id"]
    # Archived after a day of quiet: discord.py drops the thread from its cache.
    await world.discord.archive_thread(thread_id)
    bot = world.discord.bot_user

    posted = await world.discord.post_message(
        thread_id, f"{bot.mention} Image 1 wakes up next to Video 1", author=owner
    )

    answered = await world.until(lambda: answer_to(world, thread_id, posted), what="the answer")
    match = ACCEPTED.search(answered["content"])
    assert match is not None, answered["content"]
    new = await world.wait_state(match.group(1), "delivered")
    assert (new["thread_id"], new["parent_job_id"]) == (thread_id, job_id)
    assert int(world.deliveries(new["id"])[0]["channel_id"]) == thread_id


async def test_a_ping_reply_to_the_video_with_new_files_replaces_the_references(
    world: World,
) -> None:
    owner, replier = world.new_user("owner"), world.new_user("replier")
    job_id, _refs = await make_video(world, owner, "Image 1 rides a bike past Video 1")
    thread_id = world.job(job_id)["thread_id"]
    delivery = world.deliveries(job_id)[0]
    surfer = world.discord.register_file(
        png(400, 300), "surfer.png", "image/png", ephemeral=False, channel_id=thread_id
    )

    # No @mention: a reply to the bot's message with the ping on shows the bot its text.
    posted = await world.discord.post_message(
        thread_id,
        "Image 1 surfs a huge wave --dur 3",
        author=replier,
        attachments=[surfer],
        message_reference=int(delivery["id"]),
    )

    body = (await world.until(lambda: world.creates_for("surfs a huge wave"), what="create"))[0]
    assert body["image_urls"] == [{"url": surfer["url"]}]
    assert "video_urls" not in body
    assert body["duration"] == 3
    [new] = [job for job in world.jobs_of(replier)]
    assert (new["origin"], new["parent_job_id"], new["thread_id"]) == ("reply", job_id, thread_id)

    def answers() -> list[dict[str, Any]]:
        return [
            m
            for m in world.discord.channel_messages(thread_id)
            if (m.get("message_reference") or {}).get("message_id") == posted["id"]
        ]

    # The answer and the create go out side by side: either may come first.
    [answer] = await world.until(answers, what="the bot's answer to the reply")
    assert f"Accepted as job `{new['id']}`" in answer["content"]
    await world.wait_state(new["id"], "delivered")


async def test_a_reroll_after_discord_dropped_the_references_costs_nothing(world: World) -> None:
    owner, clicker = world.new_user("owner"), world.new_user("clicker")
    job_id, refs = await make_video(world, owner, "Image 1 fades away beside Video 1")
    delivery = world.deliveries(job_id)[0]
    # Discord dropped the ephemeral originals, and someone deleted the kept copies too.
    for attachment in refs.values():
        world.discord.remove_attachment(int(attachment["id"]))
    for message in world.discord.channel_messages(world.job(job_id)["thread_id"]):
        if message["content"].startswith("🎭"):
            message_id = int(message["id"])
            world.discord.deleted_messages[message_id] = world.discord.messages.pop(message_id)

    reply = await world.click(delivery, f"wan:reroll:{job_id}", clicker)

    assert reply.ephemeral
    assert "no longer available on Discord" in reply.text
    assert world.ledger(clicker) == [] and world.jobs_of(clicker) == []
    assert len(world.creates_for("fades away")) == 1


async def test_delete_is_for_the_requester_and_moderators_only(world: World) -> None:
    owner, stranger = world.new_user("owner"), world.new_user("stranger")
    job_id, _refs = await make_video(world, owner, "Image 1 regrets Video 1")
    delivery = world.deliveries(job_id)[0]

    refused = await world.click(delivery, f"wan:delete:{job_id}", stranger)
    assert refused.ephemeral and "Only the person who asked for this video" in refused.text
    assert int(delivery["id"]) in world.discord.messages

    deleted = await world.click(delivery, f"wan:delete:{job_id}", owner)
    assert deleted.ephemeral and "Deleted" in deleted.text
    assert int(delivery["id"]) in world.discord.deleted_messages

    other_id, _refs = await make_video(world, owner, "Image 1 oversteps with Video 1")
    other = world.deliveries(other_id)[0]
    removed = await world.click(other, f"wan:delete:{other_id}", world.discord.moderator)
    assert removed.ephemeral and "Deleted" in removed.text
    assert int(other["id"]) in world.discord.deleted_messages


async def test_deleting_twice_or_at_once_is_answered_politely(world: World) -> None:
    owner = world.new_user("owner")
    job_id, _refs = await make_video(world, owner, "Image 1 is deleted twice with Video 1")
    delivery = world.deliveries(job_id)[0]
    first = await world.click(delivery, f"wan:delete:{job_id}", owner)
    assert "Deleted" in first.text

    # The member's client still shows the message: a second click.
    again = await world.click(delivery, f"wan:delete:{job_id}", owner)
    assert again.ephemeral and "Already deleted" in again.text

    # Two people at once.
    other_id, _refs = await make_video(world, owner, "Image 1 is deleted by two with Video 1")
    other = world.deliveries(other_id)[0]
    clicks = await asyncio.gather(
        world.discord.click_button(other, f"wan:delete:{other_id}", user=owner),
        world.discord.click_button(other, f"wan:delete:{other_id}", user=world.discord.moderator),
    )
    answers = [
        await world.until(lambda i=i: world.answer_of(i), what="an answer to a click")  # type: ignore[misc]
        for i in clicks
    ]
    assert all(answer.ephemeral for answer in answers)
    assert sorted(answer.text for answer in answers) == ["🗑️ Already deleted.", "🗑️ Deleted."]
    assert int(other["id"]) in world.discord.deleted_messages


async def test_a_video_asked_for_inside_a_thread_stays_in_that_thread(world: World) -> None:
    owner = world.new_user("owner")
    job_id, _refs = await make_video(world, owner, "Image 1 opens a thread for Video 1")
    thread_id = world.job(job_id)["thread_id"]
    member = world.new_user("inside")

    reply = await world.command(
        "video",
        {"prompt": "Image 1 is made inside a thread", "ref1": world.image("inner.png")},
        user=member,
        channel_id=thread_id,
    )

    job = await world.wait_state(reply.job_id, "delivered")
    assert int(world.deliveries(reply.job_id)[0]["channel_id"]) == thread_id
    status = world.discord.message(job["status_message_id"])
    assert int(status["channel_id"]) == thread_id
    assert "can't create a thread" not in message_text(status)


async def test_history_pages_through_a_members_videos(world: World) -> None:
    member = world.new_user("prolific")
    ids = []
    for batch in (range(5), range(5, 6)):  # five at once is this world's limit per member
        replies = [
            await world.command(
                "video", {"prompt": f"Image 1 take {n}", "ref1": world.image()}, user=member
            )
            for n in batch
        ]
        ids += [reply.job_id for reply in replies]
        for reply in replies:
            await world.wait_state(reply.job_id, "delivered")

    first = await world.command("history", user=member)

    assert first.ephemeral
    assert "Page 1/2" in str(first.message["embeds"][0]["footer"]) and ids[-1] in first.text
    older = next(
        c for c in iter_components(first.message["components"]) if c.get("label") == "Older ▶"
    )
    second = await world.click(first.message, older["custom_id"], member)
    assert second.message["id"] == first.message["id"]  # the same message, turned
    page = world.discord.message(int(first.message["id"]))
    assert "Page 2/2" in str(page["embeds"][0]["footer"]) and ids[0] in message_text(page)


async def test_help_explains_labels_and_replies(world: World) -> None:
    reply = await world.command("help", user=world.new_user("curious"))
    assert reply.ephemeral
    assert "Image 1" in reply.text and "--seed" in reply.text
    assert world.discord.bot_user.mention in reply.text


async def test_many_jobs_at_once_are_each_delivered_once(world: World) -> None:
    users = [world.new_user("crowd") for _ in range(4)]
    prompts = {
        f"Image 1 in crowd scene {user.username}-{n}": user for user in users for n in range(3)
    }
    replies = {
        prompt: await world.command(
            "video", {"prompt": prompt, "ref1": world.image("crowd.png")}, user=user
        )
        for prompt, user in prompts.items()
    }
    for prompt, reply in replies.items():
        await world.wait_state(reply.job_id, "delivered")
        assert len(world.deliveries(reply.job_id)) == 1
        assert len(world.tasks_for(prompt)) == 1
    for user in users:
        assert sorted(world.ledger(user)) == [("commit", 0)] * 3 + [("reserve", 5)] * 3
