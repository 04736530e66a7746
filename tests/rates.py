"""Counting what a rate limit allows: the most events within any one second (sliding)."""

from __future__ import annotations

from collections.abc import Iterable


def most_in_one_second(times: Iterable[float]) -> int:
    """The most of ``times`` inside any window shorter than one second, wherever it starts.

    A window is one second minus a nanosecond: events exactly a second apart (a fake clock's
    steps, summed in floating point) are in different seconds."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0 - 1e-9:
            first += 1
        most = max(most, last - first + 1)
    return most
