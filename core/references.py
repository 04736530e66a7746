"""User attachments → the API's reference lists, checked against every documented limit.

Everything a request can be refused for is found here, before any quota or credit is spent, and
reported all at once so the user can fix everything in one go. Plain values in, plain values out:
the Discord side turns a ``discord.Attachment`` into an :class:`Attachment` first.

What a file claims to be (content type, name) is checked against what its first bytes are when
the caller passes ``contents`` (from :class:`core.sniffing.Sniffer`): new files always, reused
files (rerolls) never, since they were checked when first given and keep the type found then.

Labels. The API names images "Image 1", "Image 2", … in ``image_urls`` order and videos "Video 1", …
in ``video_urls`` order. We order references by the user's slot number (the "ref N" option), so
"ref 1 video, ref 2 image, ref 3 video" becomes Video 1, Image 1, Video 2.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import urlsplit

from core.errors import UserError
from core.request import (
    ASPECT_RATIOS,
    DEFAULT_DURATION,
    DEFAULT_RESOLUTION,
    DURATION_MAX,
    DURATION_MIN,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE_PX,
    IMAGE_MIN_SIDE_PX,
    MAX_REFERENCES,
    NEGATIVE_PROMPT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    RESOLUTIONS,
    SEED_MAX,
    SEED_MIN,
    VIDEO_MAX_BYTES,
    GenerationRequest,
    Reference,
)
from core.text import clean, fit_lines, has_visible, unencodable

if TYPE_CHECKING:
    from core.sniffing import Sniffed

Kind = Literal["image", "video"]
KINDS: Final[tuple[Kind, ...]] = ("image", "video")

# Content types the API takes, with the name users know them by.
IMAGE_TYPES: Final = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
    "image/bmp": "BMP",
    "image/x-ms-bmp": "BMP",
    "image/x-bmp": "BMP",
    "image/webp": "WEBP",
}
VIDEO_TYPES: Final = {"video/mp4": "MP4", "video/quicktime": "MOV"}

# Voice clips. The API documents `reference_voice` only as "an audio URL"; sibling Wan endpoints
# document MP3 and WAV. We also take M4A/AAC (what phones record) and OGG/Opus (what Discord voice
# messages are), the common speech formats a user is likely to have. FLAC and other lossless or
# exotic formats are refused: a voice sample gains nothing from them, and an unsupported file
# would only fail after the task was paid for.
VOICE_TYPES: Final = {
    "audio/mpeg": "MP3",
    "audio/mp3": "MP3",
    "audio/wav": "WAV",
    "audio/x-wav": "WAV",
    "audio/wave": "WAV",
    "audio/vnd.wave": "WAV",
    "audio/mp4": "M4A",
    "audio/x-m4a": "M4A",
    "audio/m4a": "M4A",
    "audio/aac": "AAC",
    "audio/x-aac": "AAC",
    "audio/ogg": "OGG",
    "audio/opus": "Opus",
}
# Not documented for this endpoint. Sibling Wan audio inputs are capped at 15 MB; a 30 s
# 48 kHz stereo WAV is about 6 MB, so this fits any sensible voice sample and refuses songs.
VOICE_MAX_BYTES: Final = 15 * 1000 * 1000

IMAGE_FORMATS_TEXT: Final = "JPEG, PNG, BMP or WEBP"
VIDEO_FORMATS_TEXT: Final = "MP4 or MOV"
VOICE_FORMATS_TEXT: Final = "MP3, WAV, M4A/AAC or OGG/Opus"

# For when Discord gives no useful content type. Includes formats we refuse, so that the refusal
# can say what the file is ("is a GIF") rather than just "unknown".
_TYPE_BY_EXTENSION: Final = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpe": "image/jpeg",
    "jfif": "image/jpeg",
    "png": "image/png",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "avif": "image/avif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "svg": "image/svg+xml",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "m4v": "video/x-m4v",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/opus",
    "flac": "audio/flac",
}
_GENERIC_TYPES: Final = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)
# Friendlier names for formats users commonly try, for refusals ("is a GIF").
_FRIENDLY_NAMES: Final = {
    "image/gif": "a GIF",
    "image/heic": "a HEIC image",
    "image/heif": "a HEIF image",
    "image/avif": "an AVIF image",
    "image/tiff": "a TIFF image",
    "image/svg+xml": "an SVG image",
    "video/webm": "a WEBM video",
    "video/x-matroska": "an MKV video",
    "video/x-msvideo": "an AVI video",
    "video/x-m4v": "an M4V video",
    "audio/flac": "FLAC audio",
    "audio/x-flac": "FLAC audio",
    "application/zip": "a ZIP archive",
    "application/x-rar-compressed": "a RAR archive",
    "application/x-7z-compressed": "a 7z archive",
    "application/gzip": "a gzip archive",
    "application/pdf": "a PDF document",
    "text/html": "a web page",
}

_MAX_SHOWN_FILENAME: Final = 60
_MAX_SHOWN_VALUE: Final = 40
# A prompt naming dozens of missing labels gets one line that names the first few.
_MAX_LISTED_LABELS: Final = 5


@dataclass(frozen=True, slots=True)
class _Role:
    """What a file is for: the types it may be, and what to attach instead."""

    allowed: frozenset[str]
    fix: str


_REFERENCE_ROLE: Final = _Role(
    frozenset(IMAGE_TYPES) | frozenset(VIDEO_TYPES),
    f"attach the image or video itself ({IMAGE_FORMATS_TEXT}; {VIDEO_FORMATS_TEXT})",
)
_START_ROLE: Final = _Role(
    frozenset(IMAGE_TYPES), f"attach the image itself ({IMAGE_FORMATS_TEXT})"
)
_VOICE_ROLE: Final = _Role(
    frozenset(VOICE_TYPES), f"attach the sound file itself ({VOICE_FORMATS_TEXT})"
)


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
class Attachment:
    """A file the user attached, as plain data (built from a ``discord.Attachment``)."""

    url: str
    filename: str
    content_type: str | None
    size: int
    width: int | None = None
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attachment:
        return cls(
            url=str(data["url"]),
            filename=str(data["filename"]),
            content_type=data.get("content_type"),
            size=int(data["size"]),
            width=data.get("width"),
            height=data.get("height"),
        )


@dataclass(frozen=True, slots=True)
class ReferenceInput:
    """What the user gave for one "ref N" slot: the media and optionally a voice clip."""

    slot: int
    media: Attachment
    voice: Attachment | None = None


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

    @property
    def label(self) -> str:
        return format_label(self.kind, self.index)

    def to_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "kind": self.kind,
            "index": self.index,
            "media": self.media.to_json(),
            "voice": None if self.voice is None else self.voice.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelledReference:
        kind = data["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown reference kind {kind!r}")
        voice = data.get("voice")
        return cls(
            slot=int(data["slot"]),
            kind=cast(Kind, kind),
            index=int(data["index"]),
            media=Attachment.from_json(data["media"]),
            voice=None if voice is None else Attachment.from_json(voice),
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
        files = _shown_name(ref.media)
        if ref.voice is not None:
            files += f", voice: {_shown_name(ref.voice)}"
        lines.append(f"ref {ref.slot} → {ref.label} ({files})")
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
    start image overrides.
    """
    problems: list[str] = []
    warnings: list[str] = []

    ordered = sorted(references, key=lambda r: r.slot)
    problems += _slot_problems(ordered)
    for slot, voice in sorted((stray_voices or {}).items()):
        problems.append(
            f"voice {slot} ({_shown_name(voice)}) has no ref {slot} to go with: "
            f"attach ref {slot} or remove voice {slot}"
        )

    # Classify and check each reference; a reference of unknown kind gets no label.
    labelled: list[LabelledReference] = []
    counts: dict[Kind, int] = {"image": 0, "video": 0}
    all_kinds_known = True

    def sniffed(att: Attachment) -> Sniffed | None:
        return None if contents is None else contents.get(att.url)

    for ref in ordered:
        who = f"ref {ref.slot} ({_shown_name(ref.media)})"
        kind, media, media_problems = _check_media(who, ref.media, sniffed(ref.media))
        problems += media_problems
        clip = ref.voice
        if clip is not None:
            who = f"voice {ref.slot} ({_shown_name(clip)})"
            clip, voice_problems = _check_voice(who, clip, sniffed(clip))
            problems += voice_problems
        if kind is None:
            all_kinds_known = False
            continue
        counts[kind] += 1
        labelled.append(LabelledReference(ref.slot, kind, counts[kind], media, clip))

    if start_image is not None:
        who = f"start image ({_shown_name(start_image)})"
        problems += _check_media(who, start_image, sniffed(start_image), images_only=True)[2]

    text, prompt_problems = _prompt_text(prompt)
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
            warnings.append(
                f"{item.label} ({_shown_name(item.media)}) is not named in the prompt; "
                "the model may ignore it"
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


def _slot_problems(ordered: Sequence[ReferenceInput]) -> list[str]:
    problems: list[str] = []
    if not ordered:
        problems.append("no references: attach at least one image or video as ref 1")
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


def _check_media(
    who: str, att: Attachment, sniffed: Sniffed | None, *, images_only: bool = False
) -> tuple[Kind | None, Attachment, list[str]]:
    """The attachment's kind (None if unusable), the attachment as its bytes describe it, and
    the problems with it."""
    problems = _url_problems(who, att) + _name_problems(who, att)
    role = _START_ROLE if images_only else _REFERENCE_ROLE
    att, content_problem = _as_sniffed(who, att, None if problems else sniffed, role)
    if content_problem is not None:
        return None, att, [*problems, content_problem]
    mime = _effective_type(att)
    kind: Kind | None = None
    if mime in IMAGE_TYPES:
        kind = "image"
    elif mime in VIDEO_TYPES and not images_only:
        kind = "video"

    if kind is None:
        if images_only:
            rule = f"the start image must be {IMAGE_FORMATS_TEXT}"
        elif mime.startswith("image/"):
            rule = f"images must be {IMAGE_FORMATS_TEXT}"
        elif mime.startswith("video/"):
            rule = f"videos must be {VIDEO_FORMATS_TEXT}"
        elif mime.startswith("audio/"):
            rule = "references must be images or videos; give voice clips as a voice option"
        else:
            rule = (
                f"references must be images ({IMAGE_FORMATS_TEXT}) or videos ({VIDEO_FORMATS_TEXT})"
            )
        problems.append(f"{who} is {_describe_type(mime)}: {rule}")
    elif kind == "image":
        if att.size > IMAGE_MAX_BYTES:
            problems.append(_too_big(who, att.size, "images", IMAGE_MAX_BYTES))
        if att.width is not None and att.height is not None:
            sides_ok = all(
                IMAGE_MIN_SIDE_PX <= side <= IMAGE_MAX_SIDE_PX for side in (att.width, att.height)
            )
            if not sides_ok:
                problems.append(
                    f"{who} is {att.width}×{att.height} px: each side must be "
                    f"{IMAGE_MIN_SIDE_PX}–{IMAGE_MAX_SIDE_PX} px"
                )
        elif sniffed is not None:
            # Neither Discord nor the header knows its size: the API may well refuse it too.
            problems.append(
                f"{who} has no size in pixels that can be read: save it again as PNG or JPEG"
            )
    elif att.size > VIDEO_MAX_BYTES:
        problems.append(_too_big(who, att.size, "videos", VIDEO_MAX_BYTES))
    return kind, att, problems


def _check_voice(
    who: str, att: Attachment, sniffed: Sniffed | None
) -> tuple[Attachment, list[str]]:
    problems = _url_problems(who, att) + _name_problems(who, att)
    att, content_problem = _as_sniffed(who, att, None if problems else sniffed, _VOICE_ROLE)
    if content_problem is not None:
        return att, [*problems, content_problem]
    mime = _effective_type(att)
    if mime not in VOICE_TYPES:
        what = _describe_type(mime) if mime.startswith("audio/") else "not audio"
        problems.append(f"{who} is {what}: voice clips must be {VOICE_FORMATS_TEXT}")
    elif att.size > VOICE_MAX_BYTES:
        problems.append(_too_big(who, att.size, "voice clips", VOICE_MAX_BYTES))
    return att, problems


def _as_sniffed(
    who: str, att: Attachment, sniffed: Sniffed | None, role: _Role
) -> tuple[Attachment, str | None]:
    """``att`` as its first bytes describe it, or why its bytes can't be used for ``role``.

    The bytes decide the type (a JPEG named ``.png`` is a JPEG), but a file whose bytes are of
    another kind than it claims (a ZIP or a web page named ``.jpg``, a picture named ``.mp3``)
    is refused: the member meant something else. An image's size comes from its header when
    Discord gave none.
    """
    if sniffed is None:
        return att, None
    if sniffed.error is not None:
        return att, f"{who} could not be read ({sniffed.error}): attach it again"
    if sniffed.empty:
        return att, f"{who} is empty (0 bytes): {role.fix}"
    claimed = _effective_type(att)
    actual = sniffed.mime
    if actual is None:
        if claimed in role.allowed:
            return att, (
                f"{who} says it is {_describe_type(claimed)} but its contents are not an "
                f"image, video or sound format: {role.fix}"
            )
        return att, None  # the type checks that follow say what it claims to be
    if claimed and claimed.partition("/")[0] != actual.partition("/")[0]:
        return att, (
            f"{who} says it is {_describe_type(claimed)} but its contents are "
            f"{_describe_type(actual)}: {role.fix}"
        )
    width, height = att.width, att.height
    if actual.startswith("image/") and (width is None or height is None):
        width, height = sniffed.width, sniffed.height
    return replace(att, content_type=actual, width=width, height=height), None


def _name_problems(who: str, att: Attachment) -> list[str]:
    bad = unencodable(att.filename)
    if bad is None:
        return []
    return [f"{who} has a broken character ({bad}) in its name: rename the file"]


def _url_problems(who: str, att: Attachment) -> list[str]:
    # The API fetches every file itself. (No check for size 0: callers use 0 for "unknown"
    # when rebuilding a stored start image.)
    parts = urlsplit(att.url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return [f"{who} is not at an http(s) URL, so the API can't fetch it"]
    return []


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


def is_audio(att: Attachment) -> bool:
    """Whether a file is a sound (a voice clip), by its type or, failing that, its extension."""
    return _effective_type(att).startswith("audio/")


def _effective_type(att: Attachment) -> str:
    """The content type, lower-cased, without parameters; from the extension when missing."""
    mime = (att.content_type or "").split(";", 1)[0].strip().lower()
    if mime in _GENERIC_TYPES:
        _, dot, extension = att.filename.rpartition(".")
        mime = _TYPE_BY_EXTENSION.get(extension.lower(), "") if dot else ""
    return mime


def _describe_type(mime: str) -> str:
    """What a file is, after "is": "a GIF", "an MP4 video", "MP3 audio", "of type text/plain"."""
    if mime in _FRIENDLY_NAMES:
        return _FRIENDLY_NAMES[mime]
    if mime in IMAGE_TYPES:
        return f"a {IMAGE_TYPES[mime]} image"
    if mime in VIDEO_TYPES:
        return f"an {VIDEO_TYPES[mime]} video"
    if mime in VOICE_TYPES:
        return f"{VOICE_TYPES[mime]} audio"
    if not mime:
        return "of no recognisable type"
    return f"of type {mime}"


def _too_big(who: str, size: int, what: str, limit: int) -> str:
    # Exact bytes when rounding to MB would hide that the file is over ("20 MB: at most 20 MB").
    megabytes = f"{size / 1_000_000:.1f}".removesuffix(".0")
    shown = f"{size:,} bytes" if float(megabytes) * 1_000_000 <= limit else f"{megabytes} MB"
    return f"{who} is {shown}: {what} must be at most {limit // 1_000_000} MB"


def _shown_name(att: Attachment) -> str:
    # A character that can't be sent would make the whole message unsendable.
    name = att.filename.encode("utf-8", "replace").decode("utf-8")
    if len(name) > _MAX_SHOWN_FILENAME:
        name = name[: _MAX_SHOWN_FILENAME - 1] + "…"
    return name


def _shown_value(value: str) -> str:
    """A member's value quoted in a refusal, cut short (an option may be 6,000 characters)."""
    if len(value) > _MAX_SHOWN_VALUE:
        value = value[: _MAX_SHOWN_VALUE - 1] + "…"
    return repr(value)


def _or_list(values: Sequence[str]) -> str:
    return ", ".join(values[:-1]) + f" or {values[-1]}"
