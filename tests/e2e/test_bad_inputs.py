"""Requests the bot must refuse (scenario 2): an ephemeral error naming the problem, nothing
sent to the API, nothing charged. One bot process serves every case.

The fake Discord does not enforce an option's ``min_value``/``max_value`` or ``choices`` (a stale
command registration or a modified client would not either), so out-of-range numbers and unknown
strings reach the bot as they would then. Sizes and dimensions are what Discord reports for an
attachment; the bot reads only the first bytes of a file (its format, and an image's size when
Discord gives none), so a small file reported as 150 MB is exactly what the bot sees for a real
one, and a file's bytes can say something else than its name and content type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.harness import GIF, MP3, Options, World, mp4, png
from tests.fakes.discord import FakeUser

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

Undo = Callable[[], Awaitable[None]]
Setup = Callable[[World, FakeUser], Awaitable[Undo | None]]


@pytest.fixture(scope="module")
def world_options() -> Options:
    # Tasks move only when told: the job made to fill a member's concurrency stays in flight.
    return Options(task_seconds=None)


@dataclass(frozen=True)
class Bad:
    """One refused request: options replacing the good ones, and what the error must say."""

    options: Callable[[World], dict[str, Any]]
    expect: str
    setup: Setup | None = None
    channel: Callable[[World], int] | None = None


def good(world: World) -> dict[str, Any]:
    return {"prompt": "Image 1 walks through the rain", "ref1": world.image("walker.png")}


async def as_moderator(world: World, command: str, options: dict[str, Any]) -> None:
    reply = await world.command(command, options, user=world.discord.moderator)
    assert reply.ephemeral
    assert "Only moderators" not in reply.text and "went wrong" not in reply.text, reply.text


async def over_quota(world: World, user: FakeUser) -> None:
    await as_moderator(world, "admin quota set", {"user": user, "daily_seconds": 3})


async def busy(world: World, user: FakeUser) -> None:
    await as_moderator(world, "admin quota set", {"user": user, "max_concurrent": 1})
    first = await world.command("video", good(world), user=user)
    await world.until(lambda: world.job(first.job_id)["state"] == "submitted", what="in flight")


async def banned(world: World, user: FakeUser) -> None:
    await as_moderator(world, "admin ban", {"user": user, "reason": "spam"})


async def paused(world: World, user: FakeUser) -> Undo:
    await as_moderator(world, "admin pause", {"reason": "maintenance"})
    return lambda: as_moderator(world, "admin resume", {})


async def denied(world: World, user: FakeUser) -> Undo:
    channel = world.discord.other_channel_id
    await as_moderator(world, "admin channels deny", {"channel": channel})
    return lambda: as_moderator(world, "admin channels clear", {"channel": channel})


def text(world: World, name: str, content_type: str | None = "text/plain") -> Any:
    return world.file(b"just some words\n", name, content_type)


HTML = b"<!DOCTYPE html>\n<html><head><title>A cat</title></head><body>meow</body></html>\n"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64) + b"PK\x05\x06" + bytes(18)


def untyped(world: World, data: bytes, name: str) -> Any:
    """A file Discord sends with no content type (and so no dimensions either)."""
    payload = world.file(data, name, None)
    payload.pop("content_type", None)
    return payload


def gone(world: World, name: str) -> Any:
    """A file whose link no longer answers."""
    payload = world.image(name)
    world.discord.remove_attachment(int(payload["id"]))
    return payload


MISSING_59 = " ".join(f"Image {index}" for index in range(1, 61)) + " dance in a line"


CASES: dict[str, Bad] = {
    "gif reference": Bad(
        lambda w: {"ref1": w.file(GIF, "dance.gif", "image/gif")}, "ref 1 (dance.gif) is a GIF"
    ),
    "image too small": Bad(lambda w: {"ref1": w.image("tiny.png", 100, 100)}, "100×100 px"),
    "image too large in pixels": Bad(
        lambda w: {"ref1": w.file(png(8, 8), "huge.png", "image/png", width=9000, height=9000)},
        "9000×9000 px: each side must be 240–8000 px",
    ),
    "image over 20 MB": Bad(
        lambda w: {"ref1": w.file(png(320, 320), "big.png", "image/png", size=25_000_000)},
        "ref 1 (big.png) is 25 MB: images must be at most 20 MB",
    ),
    "video over 100 MB": Bad(
        lambda w: {"ref2": w.file(mp4(), "long.mp4", "video/mp4", size=150_000_000)},
        "ref 2 (long.mp4) is 150 MB: videos must be at most 100 MB",
    ),
    "voice that is a png": Bad(
        lambda w: {"voice1": w.file(png(300, 300), "voice.png", "image/png")},
        "voice 1 (voice.png) is not audio",
    ),
    "voice 5 without ref 5": Bad(
        lambda w: {"voice5": w.voice("lonely.mp3")}, "voice 5 (lonely.mp3) has no ref 5"
    ),
    "prompt names a missing image": Bad(
        lambda w: {"prompt": "Image 3 hugs Image 1", "ref2": w.image("second.png")},
        "the prompt names Image 3 but you attached only 2 images",
    ),
    "blank prompt": Bad(lambda w: {"prompt": "   "}, "the prompt is empty"),
    "prompt over 5000 characters": Bad(
        lambda w: {"prompt": "Image 1 " + "x" * 4993}, "the prompt is 5001 characters"
    ),
    "negative prompt over 500 characters": Bad(
        lambda w: {"negative_prompt": "n" * 501}, "the negative prompt is 501 characters"
    ),
    "duration above 10": Bad(lambda w: {"duration": 11}, "duration 11 s is out of range"),
    "duration below 2": Bad(lambda w: {"duration": 1}, "duration 1 s is out of range"),
    "negative seed": Bad(lambda w: {"seed": -1}, "seed -1 is out of range"),
    "seed above 2147483647": Bad(lambda w: {"seed": 2**31}, "seed 2147483648 is out of range"),
    "unknown aspect ratio": Bad(
        lambda w: {"aspect_ratio": "21:9"}, "aspect ratio '21:9' is not offered"
    ),
    "unknown resolution": Bad(lambda w: {"resolution": "4K"}, "resolution '4K' is not offered"),
    "text file as reference": Bad(
        lambda w: {"ref1": text(w, "notes.txt")}, "ref 1 (notes.txt) is of type text/plain"
    ),
    "start image that is a video": Bad(
        lambda w: {"start_image": w.file(mp4(), "intro.mp4", "video/mp4")},
        "start image (intro.mp4) is an MP4 video: the start image must be",
    ),
    "audio as reference": Bad(
        lambda w: {"ref1": w.file(MP3, "song.mp3", "audio/mpeg")},
        "give voice clips as a voice option",
    ),
    "webm video": Bad(
        lambda w: {"ref1": w.file(b"\x1aE\xdf\xa3" * 8, "clip.webm", "video/webm")},
        "ref 1 (clip.webm) is a WEBM video: videos must be MP4 or MOV",
    ),
    "flac voice": Bad(
        lambda w: {"voice1": w.file(b"fLaC" * 8, "take.flac", "audio/flac")},
        "voice 1 (take.flac) is FLAC audio",
    ),
    "voice over 15 MB": Bad(
        lambda w: {"voice1": w.file(MP3, "speech.mp3", "audio/mpeg", size=16_000_000)},
        "voice clips must be at most 15 MB",
    ),
    "png that is a web page": Bad(
        lambda w: {"ref1": w.file(HTML, "cat.png", "image/png")},
        "ref 1 (cat.png) says it is a PNG image but its contents are not an image, video",
    ),
    "png that is a zip": Bad(
        lambda w: {"ref1": w.file(ZIP, "cat.png", "image/png")},
        "ref 1 (cat.png) says it is a PNG image but its contents are a ZIP archive",
    ),
    "jpg name with zip bytes and no content type": Bad(
        lambda w: {"ref1": untyped(w, ZIP, "holiday.jpg")},
        "ref 1 (holiday.jpg) says it is a JPEG image but its contents are a ZIP archive",
    ),
    "no content type and a web page": Bad(
        lambda w: {"ref1": untyped(w, HTML, "cat.jfif")},
        "ref 1 (cat.jfif) says it is a JPEG image but its contents are not",
    ),
    "no content type, size only in the header": Bad(
        lambda w: {"ref1": untyped(w, png(100, 100), "tiny")},
        "ref 1 (tiny) is 100×100 px: each side must be 240–8000 px",
    ),
    "empty file": Bad(
        lambda w: {"ref1": w.file(b"", "blank.png", "image/png")},
        "ref 1 (blank.png) is empty (0 bytes)",
    ),
    "empty on the CDN though Discord says otherwise": Bad(
        lambda w: {"ref1": w.file(b"", "blank.png", "image/png", size=4096, width=320, height=320)},
        "ref 1 (blank.png) is empty (0 bytes)",
    ),
    "reference whose link is gone": Bad(
        lambda w: {"ref1": gone(w, "vanished.png")},
        "ref 1 (vanished.png) could not be read (HTTP 404)",
    ),
    "mp4 that is a png": Bad(
        lambda w: {"ref2": w.file(png(320, 320), "clip.mp4", "video/mp4")},
        "ref 2 (clip.mp4) says it is an MP4 video but its contents are a PNG image",
    ),
    "voice that is a png named mp3": Bad(
        lambda w: {"voice1": w.file(png(320, 320), "hello.mp3", "audio/mpeg")},
        "voice 1 (hello.mp3) says it is MP3 audio but its contents are a PNG image",
    ),
    "start image that is a web page": Bad(
        lambda w: {"start_image": w.file(HTML, "first.png", "image/png")},
        "start image (first.png) says it is a PNG image but its contents are not",
    ),
    "prompt of only invisible characters": Bad(
        lambda w: {"prompt": "\u200b\u2060\ufeff\u3164\u200b"},
        "the prompt is empty (it has only invisible characters)",
    ),
    "prompt with a lone surrogate": Bad(
        lambda w: {"prompt": "Image 1 dances \ud83d in the rain"},
        "the prompt contains a broken character (U+D83D) that can't be sent",
    ),
    "negative prompt with a lone surrogate": Bad(
        lambda w: {"negative_prompt": "blurry \udc00"},
        "the negative prompt contains a broken character (U+DC00)",
    ),
    "prompt naming 59 missing images": Bad(
        lambda w: {"prompt": MISSING_59},
        "the prompt names Image 2, Image 3, Image 4, Image 5, Image 6 …and 54 more,"
        " but you attached only 1 image",
    ),
    "over quota": Bad(
        lambda w: {}, "costs 5 s of your daily quota but you have 3 s left", setup=over_quota
    ),
    "too many jobs at once": Bad(
        lambda w: {}, "You already have 1 video(s) being made here", setup=busy
    ),
    "banned member": Bad(
        lambda w: {}, "You are not allowed to make videos in this server. Reason: spam", banned
    ),
    "paused server": Bad(
        lambda w: {}, "Video requests are paused in this server (maintenance)", setup=paused
    ),
    "denied channel": Bad(
        lambda w: {},
        "Videos can't be made in this channel.",
        setup=denied,
        channel=lambda w: w.discord.other_channel_id,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
async def test_refused_with_a_reason_and_nothing_spent(world: World, case: Bad) -> None:
    user = world.new_user("member")
    undo = await case.setup(world, user) if case.setup is not None else None
    try:
        creates = len(world.wan.creates)
        ledger = world.ledger(user)
        jobs = len(world.jobs_of(user))
        options = good(world) | case.options(world)

        reply = await world.command(
            "video",
            options,
            user=user,
            channel_id=case.channel(world) if case.channel else None,
        )

        assert reply.ephemeral
        assert case.expect in reply.text, reply.text
        assert "Accepted" not in reply.text and "went wrong" not in reply.text
        # Discord refuses longer content (the fake accepts it when it fills a deferral).
        assert len(reply.message.get("content") or "") <= 2000
        assert len(world.wan.creates) == creates
        assert world.ledger(user) == ledger
        assert len(world.jobs_of(user)) == jobs
    finally:
        if undo is not None:
            await undo()


REPLY_CASES = {
    "png that is a zip": (
        lambda w, thread: w.discord.register_file(
            ZIP, "dog.png", "image/png", ephemeral=False, channel_id=thread
        ),
        "ref 1 (dog.png) says it is a PNG image but its contents are a ZIP archive",
    ),
    "empty file": (
        lambda w, thread: w.discord.register_file(
            b"", "dog.png", "image/png", ephemeral=False, channel_id=thread
        ),
        "ref 1 (dog.png) is empty (0 bytes)",
    ),
}


@pytest.mark.parametrize("case", REPLY_CASES.values(), ids=list(REPLY_CASES))
async def test_a_reply_with_a_bad_new_file_is_refused_and_nothing_spent(
    world: World, case: tuple[Callable[[World, int], dict[str, Any]], str]
) -> None:
    owner, replier = world.new_user("owner"), world.new_user("replier")
    first = await world.command("video", good(world), user=owner)
    thread_id = await world.until(
        lambda: world.job(first.job_id)["thread_id"], what="the video's thread"
    )
    make_file, expect = case
    creates, jobs = len(world.wan.creates), len(world.jobs_of(replier))
    bot = world.discord.bot_user

    posted = await world.discord.post_message(
        thread_id,
        f"{bot.mention} Image 1 does a backflip",
        author=replier,
        attachments=[make_file(world, thread_id)],
        mentions=[bot],
    )

    def answer() -> dict[str, Any] | None:
        # Refusals of a reply are private: a DM that links the message it is about.
        for message in world.discord.dm_messages(replier):
            if posted["id"] in message["content"]:
                return message
        return None

    answered = await world.until(answer, what="the bot's answer to the reply")
    assert expect in answered["content"], answered["content"]
    assert "Nothing was charged." in answered["content"]
    assert len(world.wan.creates) == creates
    assert len(world.jobs_of(replier)) == jobs and world.ledger(replier) == []
