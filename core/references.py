"""User attachments → the API's reference lists, checked against every documented limit.

Everything a request can be refused for is found here, before any quota or credit is spent, and
reported all at once so the user can fix everything in one go. Plain values in, plain values out:
the Discord side turns a ``discord.Attachment`` into an :class:`Attachment` first.

Each file is checked by :mod:`core.attachments`, against what its first bytes are when the caller
passes ``contents`` (from :class:`core.sniffing.Sniffer`): new files always, reused files (rerolls)
never, since they were checked when first given and keep the type found then.

Labels. The API names images "Image 1", "Image 2", … in ``image_urls`` order and videos "Video 1", …
in ``video_urls`` order. We order references by the user's slot number (the "ref N" option), so
"ref 1 video, ref 2 image, ref 3 video" becomes Video 1, Image 1, Video 2.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

# "X as X": also importable from here, where the rest of the code has always found them.
from core.attachments import IMAGE_FORMATS_TEXT as IMAGE_FORMATS_TEXT
from core.attachments import KINDS, Kind, check_media, check_voice, shown_name
from core.attachments import VIDEO_FORMATS_TEXT as VIDEO_FORMATS_TEXT
from core.attachments import VOICE_FORMATS_TEXT as VOICE_FORMATS_TEXT
from core.attachments import VOICE_MAX_BYTES as VOICE_MAX_BYTES
from core.attachments import Attachment as Attachment
from core.attachments import is_audio as is_audio
from core.characters import CharacterTag, braced, rewrite_names
from core.errors import UserError
from core.request import (
    ASPECT_RATIOS,
    DEFAULT_DURATION,
    DEFAULT_RESOLUTION,
    DURATION_MAX,
    DURATION_MIN,
    MAX_REFERENCES,
    NEGATIVE_PROMPT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    RESOLUTIONS,
    SEED_MAX,
    SEED_MIN,
    GenerationRequest,
    Reference,
)
from core.text import clean, fit_lines, has_visible, unencodable

if TYPE_CHECKING:
    from core.sniffing import Sniffed

_MAX_SHOWN_VALUE: Final = 40
# A prompt naming dozens of missing labels gets one line that names the first few.
_MAX_LISTED_LABELS: Final = 5


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
class LabelledReference:
    """One reference with the label the model knows it by ("Image 1", "Video 2")."""

    slot: int
    kind: Kind
    index: int
    media: Attachment
    voice: Attachment | None
    character: CharacterTag | None = None

    @property
    def label(self) -> str:
        return format_label(self.kind, self.index)

    def to_json(self) -> dict[str, Any]:
        data = {
            "slot": self.slot,
            "kind": self.kind,
            "index": self.index,
            "media": self.media.to_json(),
            "voice": None if self.voice is None else self.voice.to_json(),
        }
        if self.character is not None:
            data["character"] = self.character.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelledReference:
        kind = data["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown reference kind {kind!r}")
        voice = data.get("voice")
        character = data.get("character")
        return cls(
            slot=int(data["slot"]),
            kind=cast(Kind, kind),
            index=int(data["index"]),
            media=Attachment.from_json(data["media"]),
            voice=None if voice is None else Attachment.from_json(voice),
            character=None if character is None else CharacterTag.from_json(character),
        )


@dataclass(frozen=True, slots=True)
class BuiltRequest:
    """A request ready to send, the label of each reference, and non-fatal advice."""

    request: GenerationRequest
    references: tuple[LabelledReference, ...]
    warnings: tuple[str, ...]

    def label_map(self) -> str:
        return render_label_map(self.references)


def render_label_map(references: Iterable[LabelledReference]) -> str:
    """One line per reference, e.g. ``ref 1 → Image 1 (cat.png, voice: meow.mp3)``."""
    lines = []
    for ref in sorted(references, key=lambda r: r.slot):
        files = shown_name(ref.media)
        if ref.voice is not None:
            files += f", voice: {shown_name(ref.voice)}"
        given = f"ref {ref.slot}" if ref.character is None else braced(ref.character.name)
        lines.append(f"{given} → {ref.label} ({files})")
    return "\n".join(lines)


def format_label(kind: Kind, index: int) -> str:
    return f"{kind.capitalize()} {index}"


# --- prompt labels -------------------------------------------------------------------------------

# "Image 1", "image1", "IMAGE  2", "Image #1", "video-3", "video_3". Only ASCII letters/digits count
# as word characters at the edges, so "myimage1x" is not a label but "让Image 1跳舞" is (Chinese
# prompts put no spaces around it). Plurals ("images 1 and 2") are not labels: the API's own form
# is singular and guessing there would be wrong as often as right.
_HSPACE = r"[^\S\r\n]*"
_LABEL_RE: Final = re.compile(
    rf"(?<![A-Za-z0-9_])(image|video)(?:{_HSPACE}[#_-]{_HSPACE}|{_HSPACE})([0-9]+)(?![A-Za-z0-9_])",
    re.IGNORECASE,
)


def find_labels(prompt: str) -> set[tuple[Kind, int]]:
    """Every label named in ``prompt``, as ``("image", 1)``-style pairs."""
    return {(cast(Kind, m[1].lower()), int(m[2])) for m in _LABEL_RE.finditer(prompt)}


def normalise_labels(prompt: str) -> str:
    """Spell every label the documented way ("image1" → "Image 1") so the model sees its form."""
    return _LABEL_RE.sub(lambda m: format_label(cast(Kind, m[1].lower()), int(m[2])), prompt)


# --- single-value checks (also used by reply flags) ----------------------------------------------


def normalise_resolution(value: str) -> str | None:
    """``"720p"`` → ``"720P"``; None when the API doesn't offer it."""
    candidate = value.strip().upper()
    return candidate if candidate in RESOLUTIONS else None


def normalise_aspect_ratio(value: str) -> str | None:
    """``" 9x16 "`` → ``"9:16"``; None when the API doesn't offer it."""
    candidate = re.sub(r"\s+", "", value).replace("x", ":").replace("X", ":").replace("/", ":")
    return candidate if candidate in ASPECT_RATIOS else None


def resolution_problem(value: str) -> str:
    return f"resolution {_shown_value(value)} is not offered: use {_or_list(RESOLUTIONS)}"


def aspect_ratio_problem(value: str) -> str:
    return f"aspect ratio {_shown_value(value)} is not offered: use {_or_list(ASPECT_RATIOS)}"


def duration_problem(value: int) -> str | None:
    # bool is an int in Python; True must not pass as 1 second.
    if isinstance(value, bool) or not DURATION_MIN <= value <= DURATION_MAX:
        return (
            f"duration {value} s is out of range: use a whole number of seconds "
            f"from {DURATION_MIN} to {DURATION_MAX}"
        )
    return None


def seed_problem(value: int) -> str | None:
    if isinstance(value, bool) or not SEED_MIN <= value <= SEED_MAX:
        return f"seed {value} is out of range: use a whole number from {SEED_MIN} to {SEED_MAX}"
    return None


# --- building ------------------------------------------------------------------------------------


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
    text, prompt_problems = _prompt_text(rewritten.text)
    problems += prompt_problems
    # With no references, or one of unknown kind, the counts are not what the user meant: any
    # label mismatch would be a side effect of a problem reported already.
    if ordered and all_kinds_known:
        problems += _label_problems(find_labels(text), counts)

    negative, negative_problems = _negative_text(options.negative_prompt)
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


def _prompt_text(prompt: str) -> tuple[str, list[str]]:
    """The prompt as it will be sent (clean, labels spelled out) and the problems with it."""
    bad = unencodable(prompt)
    if bad is not None:
        return "", [_broken_text("the prompt", bad)]
    cleaned = clean(prompt)
    sent = normalise_labels(cleaned)
    if not has_visible(cleaned):
        why = " (it has only invisible characters)" if prompt.strip() else ""
        return sent, [
            f"the prompt is empty{why}: describe the scene, naming references as "
            "Image 1, Video 1, …"
        ]
    return sent, _prompt_length_problems(cleaned, sent)


def _negative_text(negative: str | None) -> tuple[str | None, list[str]]:
    """The negative prompt to send (None: none, or only invisible characters), and problems."""
    if negative is None:
        return None, []
    bad = unencodable(negative)
    if bad is not None:
        return None, [_broken_text("the negative prompt", bad)]
    cleaned = clean(negative)
    if not has_visible(cleaned):
        return None, []
    if len(cleaned) > NEGATIVE_PROMPT_MAX_CHARS:
        return cleaned, [
            f"the negative prompt is {len(cleaned)} characters: at most {NEGATIVE_PROMPT_MAX_CHARS}"
        ]
    return cleaned, []


def _broken_text(what: str, character: str) -> str:
    # A lone surrogate: half of an emoji or rare character, cut by a broken client or a bad paste.
    return (
        f"{what} contains a broken character ({character}) that can't be sent: "
        "type it again, or paste it from somewhere else"
    )


def _prompt_length_problems(stripped: str, sent: str) -> list[str]:
    if len(sent) <= PROMPT_MAX_CHARS:
        return []
    if len(stripped) > PROMPT_MAX_CHARS:
        return [f"the prompt is {len(stripped)} characters: at most {PROMPT_MAX_CHARS}"]
    # Only our label spelling ("image1" → "Image 1") pushed it over.
    return [
        f"the prompt is {len(sent)} characters once labels are spelled out as "
        f'"Image 1": at most {PROMPT_MAX_CHARS}'
    ]


def _label_problems(named: set[tuple[Kind, int]], counts: Mapping[Kind, int]) -> list[str]:
    """One line per kind and reason, however many labels it names."""
    problems = []
    for kind in KINDS:
        count = counts[kind]
        indexes = sorted(index for named_kind, index in named if named_kind == kind)
        below = [index for index in indexes if index < 1]
        beyond = [index for index in indexes if index > count]
        if below:
            problems.append(
                f"the prompt names {_label_list(kind, below)} "
                f"but labels start at {format_label(kind, 1)}"
            )
        if beyond:
            attached = (
                f"no {kind}s" if count == 0 else f"only {count} {kind}{'s' if count > 1 else ''}"
            )
            problems.append(
                f"the prompt names {_label_list(kind, beyond)} but you attached {attached}"
            )
    return problems


def _label_list(kind: Kind, indexes: Sequence[int]) -> str:
    """The labels as a phrase: "Image 3 and Image 4", or the first few and "…and N more,"."""
    labels = [format_label(kind, index) for index in indexes]
    if len(labels) > _MAX_LISTED_LABELS:
        shown = ", ".join(labels[:_MAX_LISTED_LABELS])
        return f"{shown} …and {len(labels) - _MAX_LISTED_LABELS} more,"
    if len(labels) == 1:
        return labels[0]
    return ", ".join(labels[:-1]) + f" and {labels[-1]}"


def _shown_value(value: str) -> str:
    """A member's value quoted in a refusal, cut short (an option may be 6,000 characters)."""
    if len(value) > _MAX_SHOWN_VALUE:
        value = value[: _MAX_SHOWN_VALUE - 1] + "…"
    return repr(value)


def _or_list(values: Sequence[str]) -> str:
    return ", ".join(values[:-1]) + f" or {values[-1]}"
