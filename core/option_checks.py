"""One generation option at a time: resolution, aspect ratio, duration and seed, normalised or
refused with a problem that says what is allowed.

:func:`core.references.build_request` reports these together with every other problem; reply
flags (:mod:`core.reply_flags`) check a flag's value with the same rules and words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from core.request import (
    ASPECT_RATIOS,
    DURATION_MAX,
    DURATION_MIN,
    RESOLUTIONS,
    SEED_MAX,
    SEED_MIN,
)

_MAX_SHOWN_VALUE: Final = 40


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


def _shown_value(value: str) -> str:
    """A member's value quoted in a refusal, cut short (an option may be 6,000 characters)."""
    if len(value) > _MAX_SHOWN_VALUE:
        value = value[: _MAX_SHOWN_VALUE - 1] + "…"
    return repr(value)


def _or_list(values: Sequence[str]) -> str:
    return ", ".join(values[:-1]) + f" or {values[-1]}"
