"""Saved characters in a request (labels, {name}, the map shown), every problem reported at
once (reply flags with files and labels), and the words of a failure notice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.characters import CharacterTag
from core.jobs import Job, JobState
from core.references import (
    Attachment,
    GenerationOptions,
    InvalidInput,
    LabelledReference,
    ReferenceInput,
    build_request,
    check_reference,
)
from core.reply_flags import ReplyFlagError, parse_reply, read_reply
from core.store import QuotaLimits, Store
from discord_side.presenter import failure_text, state_line
from tests.store.helpers import NOW, make_job

CDN = "https://cdn.example/"


def image(name: str) -> Attachment:
    return Attachment(CDN + name, name, "image/png", 100_000, 512, 512)


def clip(name: str) -> Attachment:
    return Attachment(CDN + name, name, "video/mp4", 1_000_000, 1280, 720)


def saved(slot: int, media: Attachment, name: str, number: int = 1) -> ReferenceInput:
    return ReferenceInput(slot, media, None, CharacterTag(number, name))


def test_names_in_the_prompt_become_the_labels_of_their_characters() -> None:
    built = build_request(
        "{fox} gives Image 1 to {Bard}, who plays it",
        [
            ReferenceInput(1, image("guitar.png")),
            saved(2, image("fox.png"), "fox", 1),
            saved(3, clip("bard.mp4"), "bard", 2),
        ],
        GenerationOptions(),
    )
    assert built.request.prompt == "Image 2 gives Image 1 to Video 1, who plays it"
    assert [ref.url for ref in built.request.image_refs] == [CDN + "guitar.png", CDN + "fox.png"]
    assert built.label_map().splitlines() == [
        "ref 1 → Image 1 (guitar.png)",
        "{fox} → Image 2 (fox.png)",
        "{bard} → Video 1 (bard.mp4)",
    ]
    assert [ref.character for ref in built.references] == [
        None,
        CharacterTag(1, "fox"),
        CharacterTag(2, "bard"),
    ]
    assert built.warnings == ()


def test_stored_references_keep_their_character() -> None:
    ref = LabelledReference(2, "image", 1, image("fox.png"), None, CharacterTag(5, "fox"))
    assert LabelledReference.from_json(ref.to_json()) == ref


def test_a_character_the_prompt_leaves_out_gets_a_heads_up_by_name() -> None:
    built = build_request(
        "Image 1 waves",
        [ReferenceInput(1, image("a.png")), saved(2, image("fox.png"), "fox")],
        GenerationOptions(),
    )
    assert built.warnings == (
        "Image 2 ({fox}) is not named in the prompt; the model may ignore it",
    )


def test_plain_labels_work_as_before_beside_characters() -> None:
    built = build_request(
        "Image 2 meets Image 1",
        [ReferenceInput(1, image("a.png")), saved(2, image("b.png"), "b")],
        GenerationOptions(),
    )
    assert built.request.prompt == "Image 2 meets Image 1"


def test_unknown_names_labels_files_and_earlier_problems_come_together() -> None:
    with pytest.raises(InvalidInput) as caught:
        build_request(
            "{dog} and Image 3",
            [
                ReferenceInput(1, Attachment(CDN + "x.gif", "x.gif", "image/gif", 10)),
                saved(2, image("fox.png"), "fox"),
            ],
            GenerationOptions(duration=3),
            problems=["unknown flag --colour"],
        )
    problems = caught.value.problems
    assert problems[0] == "unknown flag --colour"
    assert any("x.gif" in p and "is a GIF" in p for p in problems)
    assert any("{dog}" in p and "in this video: {fox}" in p for p in problems)


def test_label_problems_are_reported_with_flag_problems() -> None:
    request, flag_problems = read_reply("<@1> Image 4 jumps --dur 99 --neg", 1)
    assert request.prompt == "Image 4 jumps" and len(flag_problems) == 2
    assert request.overrides.duration is None  # a flag with a problem changes nothing
    with pytest.raises(InvalidInput) as caught:
        build_request(
            request.prompt,
            [ReferenceInput(1, image("a.png"))],
            GenerationOptions(),
            problems=flag_problems,
        )
    assert caught.value.problems[:2] == flag_problems
    assert "names Image 4 but you attached only 1 image" in caught.value.problems[2]
    with pytest.raises(ReplyFlagError):
        parse_reply("<@1> --dur 99", 1)  # the raising form stays for its callers


def test_a_file_to_save_is_checked_like_a_reference() -> None:
    assert check_reference(image("fox.png")) == ("image", [])
    assert check_reference(clip("bard.mp4"), Attachment(CDN + "v.mp3", "v.mp3", None, 10)) == (
        "video",
        [],
    )
    kind, problems = check_reference(
        Attachment(CDN + "tiny.png", "tiny.png", "image/png", 10, 100, 100),
        Attachment(CDN + "v.flac", "v.flac", "audio/flac", 10),
    )
    assert kind == "image"
    assert problems == [
        "the file (tiny.png) is 100×100 px: each side must be 240–8000 px",
        "the voice clip (v.flac) is FLAC audio: voice clips must be MP3, WAV, M4A/AAC or OGG/Opus",
    ]


# ----------------------------------------------------------------- failure notices


@pytest.fixture
async def job(tmp_path: Path) -> Job:
    async with Store.open(tmp_path / "db.sqlite3") as store:
        return await store.create_job(make_job(), QuotaLimits(60, 2), NOW)


def failed(job: Job, error: str, thread_id: int | None = 99) -> Job:
    return replace(job, state=JobState.FAILED, error=error, thread_id=thread_id)


def test_a_failure_says_the_refund_once(job: Job) -> None:
    unconfirmed = failed(job, "the video service did not confirm the job; you were not charged")
    notice = failure_text(unconfirmed)
    assert "not charged" not in notice
    assert notice.count("refunded") == 1
    line = state_line(unconfirmed)
    assert "not charged" not in line and line.count("refunded") == 1


def test_a_failed_task_suggests_what_to_try(job: Job) -> None:
    notice = failure_text(failed(job, "the video service could not generate this video"))
    assert notice.splitlines()[-1] == (
        "What to try: mention me in this thread to make it again with a new seed,"
        " or a simpler prompt, or other references."
    )
    threadless = failure_text(failed(job, "the video service could not generate this video", None))
    assert "run /video again" in threadless
    late = failure_text(failed(job, "the video took too long to generate"))
    assert "usually temporary" in late
    cancelled = replace(job, state=JobState.CANCELLED, error="spam")
    assert "What to try" not in failure_text(cancelled)
