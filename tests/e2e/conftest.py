"""Fixtures for the end-to-end tests.

One bot process per test module (``world``): the fakes run in the module's event loop, the bot
is ``python bot.py`` in a subprocess configured through its environment, started once and
stopped with SIGTERM at the end (a clean exit is part of the test). A module changes the setup
by overriding the ``world_options`` fixture. When a test fails, the bot's log for that test
(DEBUG level) is attached to the report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.harness import Options, World

_LIVE: list[World] = []
_OFFSETS: dict[int, int] = {}  # id(world) → log size when the current test began
LOG_TAIL_CHARS = 60_000


def readable(log: str) -> str:
    """The log without aiosqlite's per-statement lines, long lines cut (the file has all)."""
    lines = [line for line in log.splitlines() if " aiosqlite: " not in line]
    return "\n".join(line if len(line) <= 400 else line[:400] + " …" for line in lines)


@pytest.fixture(scope="module")
def world_options() -> Options:
    return Options()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    world_options: Options, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    directory: Path = tmp_path_factory.mktemp("e2e")
    created = World(directory, world_options)
    _LIVE.append(created)
    try:
        await created.open()
        await created.start_bot()
        yield created
        if created.process.running:
            # Whatever the bot is doing, SIGTERM must end it cleanly; a request it was sending
            # is dropped (FakeDiscord.dropped), which is no fault of either side.
            code = await created.stop_bot()
            assert code == 0, f"the bot exited with {code} on SIGTERM"
        assert created.discord.server_errors == []
        assert created.discord.unhandled == [], "the bot used endpoints the fake lacks"
    finally:
        await created.close()
        _LIVE.remove(created)


@pytest.fixture(autouse=True)
def _remember_log_offsets() -> Iterator[None]:
    for live in _LIVE:
        _OFFSETS[id(live)] = len(live.process.log_text()) if live.bot is not None else 0
    yield


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for live in _LIVE:
            if live.bot is None:
                continue
            text = readable(live.process.log_text()[_OFFSETS.get(id(live), 0) :])
            if len(text) > LOG_TAIL_CHARS:
                text = "…" + text[-LOG_TAIL_CHARS:]
            report.sections.append((f"bot log ({live.log_path})", text))
    return report
