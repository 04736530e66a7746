"""User attachments → the API's reference lists, checked against every documented limit.

Everything a request can be refused for is found here, before any quota or credit is spent, and
reported all at once so the user can fix everything in one go. Plain values in, plain values out:
the Discord side turns a ``discord.Attachment`` into an :class:`Attachment` first.

Each file is checked by :mod:`core.attachments`, against what its first bytes are when the caller
passes ``contents`` (from :class:`core.sniffing.Sniffer`): new files always, reused files (rerolls)
never, since they were checked when first given and keep the type found then. Labels ("Image 1")
are :mod:`core.labels`, the prompt's own checks :mod:`core.prompt_checks`, one option's value
:mod:`core.option_checks`; this module puts them together into one request or one refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from core.attachments import (
    IMAGE_FORMATS_TEXT,
    VIDEO_FORMATS_TEXT,
    VOICE_FORMATS_TEXT,
    VOICE_MAX_BYTES,
    Attachment,
    Kind,
    check_media,
    check_voice,
    is_audio,
    shown_name,
)
from core.characters import CharacterTag, braced, rewrite_names
from core.errors import UserError
from core.labels import LabelledReference, find_labels, label_problems, render_label_map
from core.option_checks import (
    aspect_ratio_problem,
    duration_problem,
    normalise_aspect_ratio,
    normalise_resolution,
    resolution_problem,
    seed_problem,
)
from core.prompt_checks import negative_text, prompt_text
from core.request import (
    DEFAULT_DURATION,
    DEFAULT_RESOLUTION,
    MAX_REFERENCES,
    GenerationRequest,
    Reference,
)
from core.text import fit_lines

if TYPE_CHECKING:
    from core.sniffing import Sniffed

# Also importable from here, where the rest of the code has always found them.
__all__ = [
    "IMAGE_FORMATS_TEXT",
    "VIDEO_FORMATS_TEXT",
    "VOICE_FORMATS_TEXT",
    "VOICE_MAX_BYTES",
    "Attachment",
    "BuiltRequest",
    "GenerationOptions",
    "InvalidInput",
    "LabelledReference",
    "ReferenceInput",
    "build_request",
    "check_reference",
    "duration_problem",
    "is_audio",
    "pair_slots",
    "render_label_map",
]


class InvalidInput(UserError):
    """The user's input can't be sent; ``problems`` lists every reason, each one actionable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
        # What the user sees: every problem at once, and the reassurance that nothing was spent.
        self.message = self.render()

    def render(self, limit: int | None = None, measure: Callable[[str], int] = len) -> str:
        """The message; within ``limit`` (by ``measure``), problems past it become "…and N more"."""
        head, tail = "I can't make this video yet:", "Nothing was charged."
        lines = [f"- {problem}" for problem in self.problems]
        if limit is not None:
            budget = limit - measure(head) - measure(tail) - 2 * measure("\n")
            lines = fit_lines(lines, budget, more="- …and {n} more", measure=measure)
        return "\n".join([head, *lines, tail])


@dataclass(frozen=True, slots=True)
class ReferenceInput:
    """What the user gave for one "ref N" slot: the media and optionally a voice clip."""

    slot: int
    media: Attachment
    voice: Attachment | None = None
    character: CharacterTag | None = None  # a saved character's file, named {name} in prompts


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """The user's settings as given; :func:`build_request` validates and normalises them."""

    negative_prompt: str | None = None
    aspect_ratio: str | None = None
    resolution: str = DEFAULT_RESOLUTION
    duration: int = DEFAULT_DURATION
    seed: int | None = None
    prompt_extend: bool = True


@dataclass(frozen=True, slots=True)
class BuiltRequest:
    """A request ready to send, the label of each reference, and non-fatal advice."""

    request: GenerationRequest
    references: tuple[LabelledReference, ...]
    warnings: tuple[str, ...]

    def label_map(self) -> str:
        return render_label_map(self.references)


def pair_slots(
    media: Mapping[int, Attachment], voices: Mapping[int, Attachment]
) -> tuple[list[ReferenceInput], dict[int, Attachment]]:
    """Match "ref N" and "voice N" options; also return voices whose slot has no media.

    Pass the second value to :func:`build_request` as ``stray_voices`` so it is reported with the
    other problems.
    """
    refs = [ReferenceInput(slot, att, voices.get(slot)) for slot, att in sorted(media.items())]
    stray = {slot: att for slot, att in voices.items() if slot not in media}
    return refs, stray


def build_request(
    prompt: str,
    references: Sequence[ReferenceInput],
    options: GenerationOptions,
    start_image: Attachment | None = None,
    *,
    stray_voices: Mapping[int, Attachment] | None = None,
    problems: Sequence[str] = (),
    contents: Mapping[str, Sniffed] | None = None,
) -> BuiltRequest:
    """Validate everything and build the request; raise :class:`InvalidInput` with every problem.

    Kind comes from the file's first bytes when ``contents`` (by URL) has them: a file whose
    bytes are not what its type or name claims, an empty file and an unreadable one are refused;
    an image's size comes from its header when Discord gave none. Without ``contents`` (or for a
    file it lacks), kind comes from the content type, or the filename extension when Discord gives
    none (or a generic one). References are labelled per kind in slot order. Voice clips: see
    :data:`VOICE_TYPES` (MP3, WAV, M4A/AAC, OGG/Opus, at most :data:`VOICE_MAX_BYTES`).
    Warnings (never refusals): a reference the prompt doesn't name; an aspect ratio that a
    start image overrides. ``problems`` found before (a reply's flags, the characters asked
    for) are reported first, together with these. A ``{name}`` in the prompt becomes the label
    of the saved character of that name (:func:`core.characters.rewrite_names`).
    """
    problems = list(problems)
    warnings: list[str] = []

    ordered = sorted(references, key=lambda r: r.slot)
    problems += _slot_problems(ordered)
    for slot, voice in sorted((stray_voices or {}).items()):
        problems.append(
            f"voice {slot} ({shown_name(voice)}) has no ref {slot} to go with: "
            f"attach ref {slot} or remove voice {slot}"
        )

    # Classify and check each reference; a reference of unknown kind gets no label.
    labelled: list[LabelledReference] = []
    counts: dict[Kind, int] = {"image": 0, "video": 0}
    all_kinds_known = True

    def sniffed(att: Attachment) -> Sniffed | None:
        return None if contents is None else contents.get(att.url)

    for ref in ordered:
        who = f"ref {ref.slot} ({shown_name(ref.media)})"
        kind, media, media_problems = check_media(who, ref.media, sniffed(ref.media))
        problems += media_problems
        clip = ref.voice
        if clip is not None:
            who = f"voice {ref.slot} ({shown_name(clip)})"
            clip, voice_problems = check_voice(who, clip, sniffed(clip))
            problems += voice_problems
        if kind is None:
            all_kinds_known = False
            continue
        counts[kind] += 1
        labelled.append(LabelledReference(ref.slot, kind, counts[kind], media, clip, ref.character))

    if start_image is not None:
        who = f"start image ({shown_name(start_image)})"
        problems += check_media(who, start_image, sniffed(start_image), images_only=True)[2]

    names = {item.character.name: item.label for item in labelled if item.character}
    rewritten = rewrite_names(prompt, names)
    problems += rewritten.problems
    text, prompt_problems = prompt_text(rewritten.text)
    problems += prompt_problems
    # With no references, or one of unknown kind, the counts are not what the user meant: any
    # label mismatch would be a side effect of a problem reported already.
    if ordered and all_kinds_known:
        problems += label_problems(find_labels(text), counts)

    negative, negative_problems = negative_text(options.negative_prompt)
    problems += negative_problems

    aspect_ratio: str | None = None
    if options.aspect_ratio is not None and options.aspect_ratio.strip():
        aspect_ratio = normalise_aspect_ratio(options.aspect_ratio)
        if aspect_ratio is None:
            problems.append(aspect_ratio_problem(options.aspect_ratio))
        elif start_image is not None:
            warnings.append(
                f"aspect ratio {aspect_ratio} is ignored: the start image's shape sets it"
            )

    resolution = normalise_resolution(options.resolution)
    if resolution is None:
        problems.append(resolution_problem(options.resolution))
    duration_error = duration_problem(options.duration)
    if duration_error is not None:
        problems.append(duration_error)
    seed_error = None if options.seed is None else seed_problem(options.seed)
    if seed_error is not None:
        problems.append(seed_error)

    if problems:
        raise InvalidInput(problems)

    named = find_labels(text)
    for item in labelled:
        if (item.kind, item.index) not in named:
            who = braced(item.character.name) if item.character else shown_name(item.media)
            warnings.append(
                f"{item.label} ({who}) is not named in the prompt; the model may ignore it"
            )

    def api_refs(kind: Kind) -> tuple[Reference, ...]:
        return tuple(
            Reference(item.media.url, None if item.voice is None else item.voice.url)
            for item in labelled
            if item.kind == kind
        )

    request = GenerationRequest(
        prompt=text,
        image_refs=api_refs("image"),
        video_refs=api_refs("video"),
        negative_prompt=negative,
        start_image_url=None if start_image is None else start_image.url,
        aspect_ratio=aspect_ratio,
        resolution=cast(str, resolution),
        duration=options.duration,
        seed=options.seed,
        prompt_extend=options.prompt_extend,
    )
    return BuiltRequest(request, tuple(labelled), tuple(warnings))


def check_reference(
    media: Attachment,
    voice: Attachment | None = None,
    contents: Mapping[str, Sniffed] | None = None,
) -> tuple[Kind | None, list[str]]:
    """One file (and voice clip) by the rules :func:`build_request` applies to a reference:
    its kind (None when unusable) and every problem (for saving a character). ``contents``
    (by URL) are the files' first bytes, as for :func:`build_request`."""
    found = contents or {}
    kind, _media, problems = check_media(
        f"the file ({shown_name(media)})", media, found.get(media.url)
    )
    if voice is not None:
        who = f"the voice clip ({shown_name(voice)})"
        problems += check_voice(who, voice, found.get(voice.url))[1]
    return kind, problems


def _slot_problems(ordered: Sequence[ReferenceInput]) -> list[str]:
    problems: list[str] = []
    if not ordered:
        problems.append(
            "no references: attach at least one image or video as ref 1, or name saved"
            " characters with the characters option"
        )
    elif len(ordered) > MAX_REFERENCES:
        problems.append(
            f"{len(ordered)} references given: at most {MAX_REFERENCES} "
            "(images and videos combined)"
        )
    seen: set[int] = set()
    for ref in ordered:
        if not 1 <= ref.slot <= MAX_REFERENCES:
            problems.append(f"ref {ref.slot} is not a slot: use ref 1 to ref {MAX_REFERENCES}")
        elif ref.slot in seen:
            problems.append(f"ref {ref.slot} is given more than once")
        seen.add(ref.slot)
    return problems
