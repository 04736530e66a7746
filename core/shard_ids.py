"""SHARD_IDS: shard numbers and inclusive ranges (``0-3``, ``0,2,5-7``), parsed and checked
against SHARD_COUNT without ever expanding a range in memory."""

from __future__ import annotations

import re

MAX_SHARDS = 100_000
_SHARD_RANGE = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")  # "5" or "5-7" (ASCII digits)


def parse_shard_ranges(raw: str) -> list[range]:
    """``"0-3"``, ``"0,2,5-7"``: shard numbers and inclusive ranges, as ``range``s. Raises
    ``ValueError`` for anything else (an empty part, ``3-1``, a negative number)."""
    found: list[range] = []
    for part in raw.split(","):
        match = _SHARD_RANGE.fullmatch(part)
        if match is None:
            raise ValueError(f"not a shard number or range: {part!r}")
        first = int(match[1])
        last = int(match[2]) if match[2] is not None else first
        if last < first:
            raise ValueError(f"a range runs upwards: {part!r}")
        found.append(range(first, last + 1))
    return found


def parse_shard_ids(raw: str) -> tuple[int, ...]:
    """The shards ``raw`` names (see :func:`parse_shard_ranges`), ascending, each once."""
    return tuple(sorted({shard for part in parse_shard_ranges(raw) for shard in part}))


def checked_shard_ids(
    raw: str | None, count: int | None, raw_count: str | None, problems: list[str]
) -> tuple[int, ...] | None:
    """SHARD_IDS checked against SHARD_COUNT; every shard when unset; None when not sharded."""
    if raw is None:
        return tuple(range(count)) if count is not None else None
    if raw_count is None:
        problems.append(
            "SHARD_IDS is set but SHARD_COUNT is not: set SHARD_COUNT to the total number of"
            " shards (the same in every process)"
        )
        return None
    try:
        ranges = parse_shard_ranges(raw)
    except ValueError:
        problems.append(
            "SHARD_IDS must be shard numbers and ranges separated by commas (e.g. 0-3 or 0,2,5-7)"
        )
        return None
    if count is None:
        return None  # SHARD_COUNT itself is wrong, and said so
    # Checked on the ranges, never expanded first: "0-99999999999" must not fill the memory.
    outside = sorted({n for part in ranges for n in part[max(0, count - part.start) :][:6]})
    if outside:
        listed = ", ".join(map(str, outside[:5])) + (", ..." if len(outside) > 5 else "")
        problems.append(
            f"SHARD_IDS names shard {listed} but SHARD_COUNT is {count}: shards are numbered"
            f" 0-{count - 1}"
        )
        return None
    return parse_shard_ids(raw)
