"""SHARD_COUNT and SHARD_IDS: unset is today's unsharded bot; set, each mistake is one line."""

from __future__ import annotations

import pytest

from core.config import ConfigError, Settings
from core.shard_ids import parse_shard_ids

REQUIRED = {"DISCORD_TOKEN": "discord-secret-token", "FREEPIK_API_KEY": "wan-secret-key"}


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(REQUIRED | env)
    return raised.value.problems


def test_unset_is_not_sharded() -> None:
    settings = Settings.from_env(REQUIRED)
    assert (settings.shard_count, settings.shard_ids, settings.sharded) == (None, None, False)
    assert Settings.from_env(REQUIRED | {"SHARD_COUNT": " ", "SHARD_IDS": ""}).shard_count is None


def test_a_shard_count_alone_runs_every_shard() -> None:
    settings = Settings.from_env(REQUIRED | {"SHARD_COUNT": "4"})
    assert (settings.shard_count, settings.shard_ids, settings.sharded) == (4, (0, 1, 2, 3), True)


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        ("0-3", (0, 1, 2, 3)),
        ("0,2,5-7", (0, 2, 5, 6, 7)),
        ("7", (7,)),
        (" 5-7 , 0 ", (0, 5, 6, 7)),
        ("2-2,1-3", (1, 2, 3)),  # overlaps are one shard each
    ],
)
def test_shard_ids_syntax(raw: str, ids: tuple[int, ...]) -> None:
    assert parse_shard_ids(raw) == ids
    settings = Settings.from_env(REQUIRED | {"SHARD_COUNT": "8", "SHARD_IDS": raw})
    assert settings.shard_ids == ids


@pytest.mark.parametrize("raw", ["0-", "-1", "a", "1,,2", "3-1", "1-2-3", "0x1", "1.5", "١"])
def test_bad_shard_ids_are_one_line_with_the_syntax(raw: str) -> None:
    [problem] = problems_of({"SHARD_COUNT": "8", "SHARD_IDS": raw})
    assert problem == (
        "SHARD_IDS must be shard numbers and ranges separated by commas (e.g. 0-3 or 0,2,5-7)"
    )


def test_shard_ids_out_of_range_are_named() -> None:
    [problem] = problems_of({"SHARD_COUNT": "4", "SHARD_IDS": "2-5"})
    assert problem == "SHARD_IDS names shard 4, 5 but SHARD_COUNT is 4: shards are numbered 0-3"
    [many] = problems_of({"SHARD_COUNT": "2", "SHARD_IDS": "0-20"})
    assert many.startswith("SHARD_IDS names shard 2, 3, 4, 5, 6, ... but SHARD_COUNT is 2")
    # A typo'd huge range is told at once (never expanded into memory).
    [huge] = problems_of({"SHARD_COUNT": "16", "SHARD_IDS": "9,0-99999999999999"})
    assert huge.startswith("SHARD_IDS names shard 16, 17, 18, 19, 20, ... but SHARD_COUNT is 16")


def test_shard_ids_without_a_count_says_what_to_set() -> None:
    [problem] = problems_of({"SHARD_IDS": "0-3"})
    assert problem == (
        "SHARD_IDS is set but SHARD_COUNT is not: set SHARD_COUNT to the total number of shards"
        " (the same in every process)"
    )


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5", "100001"])
def test_a_bad_shard_count_is_one_line(raw: str) -> None:
    # A wrong SHARD_COUNT is the one problem, whatever SHARD_IDS says.
    [problem] = problems_of({"SHARD_COUNT": raw, "SHARD_IDS": "0-1"})
    assert problem == "SHARD_COUNT must be a whole number of shards 1-100000"
