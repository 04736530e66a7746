"""core.timefmt: one way to write a span of time, for ages and run times alike."""

from __future__ import annotations

import pytest

from core.timefmt import format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0 s"),
        (0, "0 s"),
        (0.9, "0 s"),
        (45, "45 s"),
        (59.99, "59 s"),
        (60, "1 min"),
        (125, "2 min 5 s"),
        (720, "12 min"),
        (3_599, "59 min 59 s"),
        (3_600, "1 h"),
        (3_725, "1 h 2 min"),  # the seconds no longer matter
        (11_100, "3 h 5 min"),
        (86_399, "23 h 59 min"),
        (86_400, "1 d"),
        (187_200, "2 d 4 h"),
        (190_000, "2 d 4 h"),
        (400 * 86_400, "400 d"),
    ],
)
def test_two_largest_units(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
