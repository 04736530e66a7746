"""A member's text as the API will get it: sendable, NFC, without invisible filler.

Prompts are pasted from anywhere. Zero-width spaces, byte-order marks, bidi marks and "blank"
letters (the Hangul filler people use for empty-looking names) carry nothing a video model can
use, and a prompt made only of them would be a paid request for nothing. So emptiness and length
are judged on what is left once they are gone, and that is also what is sent.

Text that cannot be encoded at all (a lone surrogate, which JSON's ``\\ud800`` escapes can carry)
must be refused before anything is stored or sent: every later step would fail on it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from typing import Final

# Format characters (category Cf) that matter and are kept: ZWNJ and ZWJ join letters in Persian
# and Indic scripts and build emoji sequences; tag characters spell subdivision flags (🏴 + tags).
_KEPT_FORMAT: Final = frozenset({"\u200c", "\u200d"})
_TAGS: Final = range(0xE0020, 0xE0080)
# Letters and symbols that render as nothing: kept as plain spaces.
_BLANKS: Final = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})
_KEPT_CONTROLS: Final = frozenset({"\n", "\t"})
# What never shows on its own: controls, format characters, combining marks, separators.
_INVISIBLE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp"})


def unencodable(text: str) -> str | None:
    """The first character that UTF-8 cannot encode, as ``U+D800``; None when all can be."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"U+{ord(text[exc.start]):04X}"
    return None


def clean(text: str) -> str:
    """NFC, invisible filler removed, blank-looking characters as spaces, ends stripped.

    Removed: format characters other than ZWNJ, ZWJ and tags (zero-width space, word joiner,
    BOM, soft hyphen, bidi controls) and control characters other than newline and tab.
    """
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in _BLANKS:
            kept.append(" ")
        elif category == "Cf":
            if char in _KEPT_FORMAT or ord(char) in _TAGS:
                kept.append(char)
        elif category == "Cc":
            if char in _KEPT_CONTROLS:
                kept.append(char)
        else:
            kept.append(char)
    # NFC last: removing a zero-width character may bring a letter and its accent together.
    return unicodedata.normalize("NFC", "".join(kept)).strip()


def is_visible(char: str) -> bool:
    """Whether a character shows by itself (unassigned code points count: new emoji are)."""
    return char not in _BLANKS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def has_visible(text: str) -> bool:
    return any(is_visible(char) for char in text)


def fit_lines(
    lines: Sequence[str],
    budget: int,
    *,
    more: str = "…and {n} more",
    measure: Callable[[str], int] = len,
) -> list[str]:
    """The first whole lines that fit ``budget`` joined by newlines, then ``more`` (``{n}``: how
    many were left out) when any were; ``more`` itself always fits when it is needed."""
    if sum(measure(line) for line in lines) + max(len(lines) - 1, 0) * measure("\n") <= budget:
        return list(lines)
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        note = more.format(n=len(lines) - index - 1)
        cost = measure(line) + (measure("\n") if kept else 0)
        # Room for this line and, after it, the note about the lines that would still follow.
        if used + cost + measure("\n") + measure(note) > budget:
            break
        kept.append(line)
        used += cost
    return [*kept, more.format(n=len(lines) - len(kept))]
