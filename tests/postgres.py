"""PostgreSQL for the tests: a fresh, empty database per test on the server that
``TEST_DATABASE_URL`` names (an admin URL, e.g. ``postgresql://postgres@/postgres?host=/sock``).

Start a throw-away server with ``export TEST_DATABASE_URL="$(bash .ci/postgres)"``. Without
one, PostgreSQL tests skip with that hint; under ``WANBOT_REQUIRE_POSTGRES=1`` (set by
``.ci/run``) they fail instead, so CI never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ENV = "TEST_DATABASE_URL"
SKIP_REASON = (
    "PostgreSQL tests skipped: no server configured. "
    'Run `export TEST_DATABASE_URL="$(bash .ci/postgres)"` first (CI always runs them).'
)


def admin_url() -> str:
    """The server's admin URL, or skip (fail under CI) when none is configured."""
    url = os.environ.get(ENV, "").strip()
    if url:
        return url
    if os.environ.get("WANBOT_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{ENV} is not set, and CI must run the PostgreSQL tests")
    pytest.skip(SKIP_REASON)


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (query, e.g. a socket host, kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new empty database for one test; yields its URL (``postgresql://…``), then drops it."""
    admin = admin_url()
    name = f"wanbot_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield with_database(admin, name)
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
