"""Requests the bot must refuse (scenario 2): an ephemeral error naming the problem, nothing
sent to the API, nothing charged. One bot process serves every case.

The fake Discord does not enforce an option's ``min_value``/``max_value`` or ``choices`` (a stale
command registration or a modified client would not either), so out-of-range numbers and unknown
strings reach the bot as they would then. Sizes and dimensions are what Discord reports for an
attachment; the bot never downloads a reference, so a small file reported as 150 MB is exactly
what the bot sees for a real one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.harness import GIF, MP3, Options, World, mp4, png
from tests.fakes.discord_server import FakeUser

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
        assert len(world.wan.creates) == creates
        assert world.ledger(user) == ledger
        assert len(world.jobs_of(user)) == jobs
    finally:
        if undo is not None:
            await undo()
