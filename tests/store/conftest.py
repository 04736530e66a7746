"""The store's tests run on both engines: ``store`` is a migrated, empty store on SQLite and on
a fresh PostgreSQL database (``database`` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.store import Store


@pytest.fixture
async def store(database: Path | str) -> AsyncIterator[Store]:
    async with Store.open(database) as opened:
        yield opened
