"""Saved characters: name rules, ``{name}`` in prompts, limits and who may do what.

Plain rules, no Discord and no database. A character is a reference (an image or a video, with
an optional voice clip) a member saved once under a name, for their own videos (scope ``me``) or
for everyone in the server (scope ``server``).

Names: 1–32 characters of letters, digits, spaces, ``-`` and ``_``, with at least one letter or
digit; spaces at the ends are dropped and runs of spaces count as one. They compare
case-insensitively (:func:`name_key`), and cannot look like a label ("Image 1"), which would make
``{Image 1}`` and the label it stands for hard to tell apart.

In a prompt, ``{fox}`` stands for the character fox. Before a request is sent each one is
replaced by the character's label in that video ("Image 2"); braces around anything that is not
a valid name are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

Scope = Literal["me", "server"]
SCOPES: Final[tuple[Scope, ...]] = ("me", "server")

NAME_MAX_CHARS: Final = 32
NAME_RULE_TEXT: Final = (
    f"1–{NAME_MAX_CHARS} letters, digits, spaces, - or _ (with at least one letter or digit)"
)
_NAME_PUNCTUATION: Final = frozenset(" -_")
# The shapes core.labels reads as labels ("Image 1", "video2", "image #3", "Video_2").
_LABEL_LIKE: Final = re.compile(r"(?:image|video)[\s#_-]*[0-9]+", re.IGNORECASE)
# ``{name}``: braces around one line of at most a little more than a name (spaces may pad it).
_BRACED: Final = re.compile(r"\{([^{}\n]{1,64})\}")
# What may not touch a label for it to stay a label (core.labels' word edges).
_WORD_CHAR: Final = re.compile(r"[A-Za-z0-9_]")


# ----------------------------------------------------------------- names


def clean_name(raw: str) -> str:
    """The name as shown: spaces at the ends dropped, runs of spaces made one."""
    return " ".join(raw.split())


def name_key(name: str) -> str:
    """What names compare by: cleaned and case-folded ("Fox  Kit" and "fox kit" are one)."""
    return clean_name(name).casefold()


def name_problem(raw: str) -> str | None:
    """Why ``raw`` cannot be a character's name, or None when it can."""
    name = clean_name(raw)
    shown = name if len(name) <= 40 else name[:39] + "…"
    if not name:
        return f"a character needs a name: {NAME_RULE_TEXT}"
    if len(name) > NAME_MAX_CHARS:
        return f'the name "{shown}" is {len(name)} characters: at most {NAME_MAX_CHARS}'
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in _NAME_PUNCTUATION)})
    if bad:
        listed = " ".join(bad)
        return f'the name "{shown}" has characters names can\'t have ({listed}): {NAME_RULE_TEXT}'
    if not any(ch.isalnum() for ch in name):
        return f'the name "{shown}" needs at least one letter or digit'
    if _LABEL_LIKE.fullmatch(name):
        return f'the name "{shown}" looks like a label (Image 1, Video 1): pick another name'
    return None


def is_name(raw: str) -> bool:
    return name_problem(raw) is None


def split_names(text: str | None) -> tuple[list[str], list[str]]:
    """``"fox, Cat ,fox"`` → the names in order (each once) and the problems with the list."""
    names: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()
    for part in (text or "").split(","):
        name = clean_name(part)
        if not name:
            continue
        problem = name_problem(name)
        if problem is not None:
            problems.append(problem)
        elif name_key(name) in seen:
            problems.append(f"the character {braced(name)} is listed twice")
        else:
            seen.add(name_key(name))
            names.append(name)
    return names, problems


def braced(name: str) -> str:
    return "{" + clean_name(name) + "}"


# ----------------------------------------------------------------- {name} in prompts


@dataclass(frozen=True, slots=True)
class CharacterTag:
    """Which saved character a reference came from (kept with the job, for rerolls)."""

    id: int
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CharacterTag:
        return cls(id=int(data["id"]), name=str(data["name"]))


def named_characters(prompt: str) -> list[str]:
    """The names the prompt writes as ``{name}``, in order of first use (as written)."""
    found: dict[str, str] = {}
    for match in _BRACED.finditer(prompt):
        if is_name(match[1]):
            found.setdefault(name_key(match[1]), clean_name(match[1]))
    return list(found.values())


@dataclass(frozen=True, slots=True)
class Rewrite:
    text: str
    used: dict[str, str]  # name (as saved) → its label, in order of first use
    problems: list[str]


def rewrite_names(prompt: str, labels: Mapping[str, str]) -> Rewrite:
    """Replace each ``{name}`` with its label; ``labels`` maps a character's name → its label.

    Everything outside a ``{name}`` is kept as it is, so plain labels ("Image 1") still mean what
    they meant. A label put next to a letter, a digit or another ``{name}`` gets a space on that
    side, so that ``{fox}2`` cannot turn into another label ("Image 22"). A name that is not in
    ``labels`` is a problem, reported with the names that are.
    """
    by_key = {name_key(name): (clean_name(name), label) for name, label in labels.items()}
    used: dict[str, str] = {}
    unknown: dict[str, str] = {}
    out: list[str] = []
    pos = 0
    for match in _BRACED.finditer(prompt):
        found = by_key.get(name_key(match[1])) if is_name(match[1]) else None
        if found is None:
            if is_name(match[1]):
                unknown.setdefault(name_key(match[1]), clean_name(match[1]))
            continue
        name, label = found
        used.setdefault(name, label)
        out.append(prompt[pos : match.start()])
        if _WORD_CHAR.match("".join(out)[-1:]):
            out.append(" ")
        out.append(label)
        following = prompt[match.end() : match.end() + 1]
        if _WORD_CHAR.match(following) or following == "{":
            out.append(" ")
        pos = match.end()
    out.append(prompt[pos:])
    problems = [unknown_names_problem(list(unknown.values()), labels)] if unknown else []
    return Rewrite("".join(out), used, problems)


def unknown_names_problem(unknown: Sequence[str], labels: Mapping[str, str]) -> str:
    names = _and_list([braced(name) for name in unknown])
    verb = "is" if len(unknown) == 1 else "are"
    if not labels:
        return (
            f"the prompt names {names}, but this video has no saved characters: add them with"
            " the characters option (see /character list), or write labels like Image 1"
        )
    return (
        f"the prompt names {names}, which {verb} not in this video: add "
        f"{'it' if len(unknown) == 1 else 'them'} with the characters option"
        f" (in this video: {_and_list([braced(name) for name in labels])})"
    )


# A label as core.labels spells it in a request core.references built ("Image 1", "Video 2").
_SENT_LABEL: Final = re.compile(r"(?<![A-Za-z0-9_])(?:Image|Video) [0-9]+(?![A-Za-z0-9_])")


def names_for_labels(sent_prompt: str, names: Mapping[str, str]) -> str:
    """A sent prompt with each character's label (``names``: label → name) back as ``{name}``.

    For reusing a prompt with the same characters in other slots (their labels change); the
    other labels are kept.
    """
    return _SENT_LABEL.sub(
        lambda match: braced(names[match[0]]) if match[0] in names else match[0], sent_prompt
    )


# ----------------------------------------------------------------- slots


def character_slots(taken: Iterable[int], count: int, max_slots: int) -> list[int]:
    """Slots for ``count`` characters beside the attached refs' ``taken`` slots.

    Characters come after the attached files, so a prompt's "Image 1" keeps meaning ref 1; when
    there is no room after the last attached ref, free slots before it are used. Returns at most
    as many slots as are free.
    """
    used = set(taken)
    last = max(used, default=0)
    after = [slot for slot in range(last + 1, max_slots + 1)]
    before = [slot for slot in range(1, last) if slot not in used]
    return (after + before)[:count]


# ----------------------------------------------------------------- limits and permissions


@dataclass(frozen=True, slots=True)
class CharacterLimits:
    per_member: int = 25  # a member's own characters in one server
    per_server: int = 100  # a server's shared characters


def limit_problem(scope: Scope, count: int, limits: CharacterLimits) -> str | None:
    """Why one more character of ``scope`` can't be saved when ``count`` exist, or None."""
    if scope == "me" and count >= limits.per_member:
        return (
            f"You already have {count} characters here, the most a member may keep"
            f" ({limits.per_member}). Delete one with /character delete first."
        )
    if scope == "server" and count >= limits.per_server:
        return (
            f"This server already has {count} server characters, the most allowed"
            f" ({limits.per_server}). A moderator can delete one with /character delete."
        )
    return None


def may_save_server_characters(
    *, moderator: bool, role_ids: Iterable[int], editor_role_id: int | None
) -> bool:
    """Moderators may, and members with the server's character role when it has one."""
    return moderator or (editor_role_id is not None and editor_role_id in set(role_ids))


def may_change(*, scope: Scope, owner_id: int, user_id: int, moderator: bool) -> bool:
    """Rename or delete: the member who saved it; moderators too for server characters."""
    return user_id == owner_id or (scope == "server" and moderator)


def _and_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
