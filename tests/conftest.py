"""Shared pytest configuration, and the fixtures several test files use alike. Fixtures
specific to one area live beside its tests (a module may override one of these by name)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from unittest.mock import MagicMock

import aiohttp
import pytest
from hypothesis import settings

from core.store import Store
from tests.discord_mocks import BotHarness, make_guild, make_member, open_harness
from tests.fakes.discord import FakeDiscord
from tests.postgres import fresh_database
from tests.tracker_rig import DATABASES

# No per-example deadline: a busy CI machine must not turn a slow example into a failure.
settings.register_profile("project", deadline=None)
settings.load_profile("project")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated, empty store in the test's directory."""
    async with Store.open(tmp_path / "db.sqlite3") as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Path | str]:
    """Where a store lives, once per engine: a SQLite file in the test's directory, or a fresh
    PostgreSQL database (skipped with the reason when no server is configured)."""
    if request.param == "sqlite":
        yield tmp_path / "db.sqlite3"
    else:
        async with fresh_database() as url:
            yield url


@pytest.fixture
def both_engines(database: Path | str, tmp_path: Path) -> Iterator[None]:
    """Run the test once per engine: the tracker rig's store is ``database``
    (``pytestmark = pytest.mark.usefixtures("both_engines")`` in a module)."""
    DATABASES[tmp_path] = database
    yield
    del DATABASES[tmp_path]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """The local Discord, serving; none of its handlers may crash during the test."""
    async with FakeDiscord() as started:
        yield started
        assert started.server_errors == []


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The bot's real settings, store, tracker and service behind a mocked Discord client."""
    async with open_harness(tmp_path / "db.sqlite3") as opened:
        yield opened


@pytest.fixture
def guild() -> MagicMock:
    """A mocked guild (``tests.discord_mocks``)."""
    return make_guild()


@pytest.fixture
def alice(guild: MagicMock) -> MagicMock:
    """A plain member of ``guild``."""
    return make_member(guild, name="alice")
