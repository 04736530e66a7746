"""The files a member attaches: what each may be, judged by what Discord says and by its bytes.

Plain values: the Discord side turns a ``discord.Attachment`` into an :class:`Attachment`. A file's
kind comes from its first bytes when they were read (:mod:`core.sniffing`), else from its content
type, or its extension when Discord gives none (or a generic one). Each check returns problems
phrased for the member, for :func:`core.references.build_request` to report all at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from core.request import (
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE_PX,
    IMAGE_MIN_SIDE_PX,
    VIDEO_MAX_BYTES,
)
from core.text import unencodable

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


def check_media(
    who: str, att: Attachment, sniffed: Sniffed | None, *, images_only: bool = False
) -> tuple[Kind | None, Attachment, list[str]]:
    """The attachment's kind (None if unusable), the attachment as its bytes describe it, and
    the problems with it."""
    url_problems = _url_problems(who, att)
    problems = url_problems + _name_problems(who, att)
    role = _START_ROLE if images_only else _REFERENCE_ROLE
    if url_problems:
        sniffed = None  # not fetched: the URL is the problem
    att, content_problem = _as_sniffed(who, att, sniffed, role)
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


def check_voice(who: str, att: Attachment, sniffed: Sniffed | None) -> tuple[Attachment, list[str]]:
    url_problems = _url_problems(who, att)
    problems = url_problems + _name_problems(who, att)
    if url_problems:
        sniffed = None  # not fetched: the URL is the problem
    att, content_problem = _as_sniffed(who, att, sniffed, _VOICE_ROLE)
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


def shown_name(att: Attachment) -> str:
    # A character that can't be sent would make the whole message unsendable.
    name = att.filename.encode("utf-8", "replace").decode("utf-8")
    if len(name) > _MAX_SHOWN_FILENAME:
        name = name[: _MAX_SHOWN_FILENAME - 1] + "…"
    return name
