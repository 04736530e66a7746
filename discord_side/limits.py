"""Discord's length limits, applied to everything the bot sends.

Discord refuses a message over any limit (HTTP 400) and the member then sees nothing at all, so
text is cut to fit instead: lists lose their last lines ("…and N more"), other text ends in "…".
Lengths are measured in UTF-16 code units, never fewer than Python's characters, so what fits
here fits however Discord counts.
"""

from __future__ import annotations

from typing import Any, Final

import discord

from core.text import fit_lines

CONTENT_MAX: Final = 2000
EMBED_TITLE_MAX: Final = 256
EMBED_DESCRIPTION_MAX: Final = 4096
EMBED_FIELDS_MAX: Final = 25
EMBED_FIELD_NAME_MAX: Final = 256
EMBED_FIELD_VALUE_MAX: Final = 1024
EMBED_FOOTER_MAX: Final = 2048
EMBED_AUTHOR_MAX: Final = 256
EMBED_TOTAL_MAX: Final = 6000

_ELLIPSIS: Final = "…"


def length(text: str) -> int:
    """``text``'s length in UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit``, ending in "…" when cut."""
    if length(text) <= limit:
        return text
    room = limit - length(_ELLIPSIS)
    used = 0
    for index, char in enumerate(text):
        used += length(char)
        if used > room:
            return text[:index] + _ELLIPSIS
    return text  # not reached: the whole text was longer than the limit


def fit_text(text: str, limit: int) -> str:
    """``text`` within ``limit``: whole lines and "…and N more" for the lines left out.

    When not even the first line fits, that line is cut short instead.
    """
    if length(text) <= limit:
        return text
    lines = text.split("\n")
    fitted = fit_lines(lines, limit, measure=length)
    if len(fitted) > 1:
        return "\n".join(fitted)
    return shorten(lines[0], limit)


def fit_content(text: str) -> str:
    """A message's content within Discord's 2,000 characters."""
    return fit_text(text, CONTENT_MAX)


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """A copy of ``embed`` within every embed limit (each part, 25 fields, 6,000 in all)."""
    data: dict[str, Any] = dict(embed.to_dict())
    if "title" in data:
        data["title"] = shorten(str(data["title"]), EMBED_TITLE_MAX)
    if "description" in data:
        data["description"] = fit_text(str(data["description"]), EMBED_DESCRIPTION_MAX)
    if "author" in data and "name" in data["author"]:
        data["author"] = {**data["author"]}
        data["author"]["name"] = shorten(str(data["author"]["name"]), EMBED_AUTHOR_MAX)
    if "footer" in data and "text" in data["footer"]:
        data["footer"] = {**data["footer"]}
        data["footer"]["text"] = shorten(str(data["footer"]["text"]), EMBED_FOOTER_MAX)
    fields = [
        {
            **field,
            "name": shorten(str(field["name"]), EMBED_FIELD_NAME_MAX),
            "value": fit_text(str(field["value"]), EMBED_FIELD_VALUE_MAX),
        }
        for field in data.get("fields", [])
    ]
    data.pop("fields", None)
    # Fields past the 25th, then (from the end) those that would pass 6,000 in all, make way
    # for one "…and N more" field; if even that is too long, the description is cut.
    left_out = len(fields) - (EMBED_FIELDS_MAX - 1) if len(fields) > EMBED_FIELDS_MAX else 0
    fields = fields[: len(fields) - left_out]
    for kept in range(len(fields), -1, -1):
        dropped = left_out + len(fields) - kept
        candidate = fields[:kept] + ([_note(dropped)] if dropped else [])
        if _total(data, candidate) <= EMBED_TOTAL_MAX:
            break
    if candidate:
        data["fields"] = candidate
    excess = _total(data, candidate) - EMBED_TOTAL_MAX
    if excess > 0 and "description" in data:
        description = str(data.get("description", ""))
        data["description"] = fit_text(description, max(length(description) - excess, 1))
    return discord.Embed.from_dict(data)


def _note(left_out: int) -> dict[str, Any]:
    return {"name": _ELLIPSIS, "value": f"…and {left_out} more", "inline": False}


def _total(data: dict[str, Any], fields: list[dict[str, Any]]) -> int:
    """What Discord adds up against 6,000: title, description, fields, footer, author."""
    parts = [data.get("title", ""), data.get("description", "")]
    parts += [data.get("footer", {}).get("text", ""), data.get("author", {}).get("name", "")]
    for field in fields:
        parts += [field["name"], field["value"]]
    return sum(length(str(part)) for part in parts)
