"""Spans of time as people read them: a job's age, how long a video took."""

from __future__ import annotations

from itertools import pairwise
from typing import Final

_UNITS: Final = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """A span in its two largest units, in whole seconds, a zero smaller unit left out:
    ``45 s``, ``2 min 5 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``; a negative span is ``0 s``.
    """
    total = max(int(seconds), 0)
    for (name, size), (smaller, smaller_size) in pairwise(_UNITS):
        if total >= size:
            count, rest = divmod(total, size)
            part = rest // smaller_size
            return f"{count} {name} {part} {smaller}" if part else f"{count} {name}"
    return f"{total} s"
