"""Labels: the names the model knows references by ("Image 1", "Video 2").

The API names images "Image 1", "Image 2", … in ``image_urls`` order and videos "Video 1", … in
``video_urls`` order. We order references by the user's slot number (the "ref N" option), so
"ref 1 video, ref 2 image, ref 3 video" becomes Video 1, Image 1, Video 2. Here: how a label is
spelled, finding labels in a prompt and spelling them the documented way, what is wrong with the
labels a prompt names, and the "ref N → label" map shown to the member.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from core.attachments import KINDS, Attachment, Kind, shown_name
from core.characters import CharacterTag, braced

# A prompt naming dozens of missing labels gets one line that names the first few.
_MAX_LISTED_LABELS: Final = 5

# "Image 1", "image1", "IMAGE  2", "Image #1", "video-3", "video_3". Only ASCII letters/digits count
# as word characters at the edges, so "myimage1x" is not a label but "让Image 1跳舞" is (Chinese
# prompts put no spaces around it). Plurals ("images 1 and 2") are not labels: the API's own form
# is singular and guessing there would be wrong as often as right.
_HSPACE = r"[^\S\r\n]*"
_LABEL_RE: Final = re.compile(
    rf"(?<![A-Za-z0-9_])(image|video)(?:{_HSPACE}[#_-]{_HSPACE}|{_HSPACE})([0-9]+)(?![A-Za-z0-9_])",
    re.IGNORECASE,
)


def format_label(kind: Kind, index: int) -> str:
    return f"{kind.capitalize()} {index}"


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


def find_labels(prompt: str) -> set[tuple[Kind, int]]:
    """Every label named in ``prompt``, as ``("image", 1)``-style pairs."""
    return {(cast(Kind, m[1].lower()), int(m[2])) for m in _LABEL_RE.finditer(prompt)}


def normalise_labels(prompt: str) -> str:
    """Spell every label the documented way ("image1" → "Image 1") so the model sees its form."""
    return _LABEL_RE.sub(lambda m: format_label(cast(Kind, m[1].lower()), int(m[2])), prompt)


def label_problems(named: set[tuple[Kind, int]], counts: Mapping[Kind, int]) -> list[str]:
    """What is wrong with the labels a prompt names, given how many references of each kind
    there are: one line per kind and reason, however many labels it names."""
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
