"""Helpers for the tests of the coordination primitives (signals, the API budget) and of several
trackers on one PostgreSQL database: engines on fresh databases, and ending a session from the
server side, as a crash or a network cut would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.fakes.wan_server import API_PATH
from tests.postgres import admin_url, fresh_database

ROOT = Path(__file__).resolve().parent.parent


def async_url(url: str) -> str:
    """``postgresql://…`` as SQLAlchemy's asyncpg driver wants it."""
    return "postgresql+asyncpg://" + url.removeprefix("postgresql://")


@asynccontextmanager
async def pg_engine() -> AsyncIterator[tuple[AsyncEngine, str]]:
    """An engine on a fresh, empty database, and that database's plain URL."""
    async with fresh_database() as url:
        engine = create_async_engine(async_url(url))
        try:
            yield engine, url
        finally:
            await engine.dispose()


async def terminate_sessions(database_url: str, where: str, **params: object) -> int:
    """``pg_terminate_backend`` every session of the database matching ``where`` (SQL over
    ``pg_stat_activity``, with ``:name`` parameters); how many were ended."""
    admin = create_async_engine(async_url(admin_url()))
    try:
        async with admin.begin() as conn:
            result = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE datname = :database AND pid <> pg_backend_pid() AND ({where})"
                ),
                {"database": urlsplit(database_url).path.lstrip("/"), **params},
            )
            return sum(1 for row in result if row[0])
    finally:
        await admin.dispose()


@dataclass(frozen=True)
class FakeWanProcess:
    """The fake WAN API in a process of its own: it records when requests arrive on its own
    event loop, so a busy loop in the test cannot bunch them up in its records."""

    base_url: str
    session: aiohttp.ClientSession

    async def _get(self, path: str) -> Any:
        async with self.session.get(self.base_url + path) as response:
            response.raise_for_status()
            return await response.json()

    async def arrivals(self) -> list[float]:
        """When each API request arrived (Unix time)."""
        found = await self._get("/_fake/requests?brief=1")
        return [float(r["at"]) for r in found["requests"] if r["path"].startswith(API_PATH)]

    async def creates(self) -> int:
        found = await self._get("/_fake/requests?brief=1")
        return sum(1 for r in found["requests"] if r["method"] == "POST" and r["path"] == API_PATH)

    async def tasks(self) -> int:
        return len((await self._get("/_fake/tasks"))["tasks"])


@asynccontextmanager
async def fake_wan_process(api_key: str, *options: str) -> AsyncIterator[FakeWanProcess]:
    """``python -m tests.fakes.wan_server`` with ``options``, stopped (its handle) on exit."""
    process = subprocess.Popen(  # noqa: ASYNC220 - started once; its one line read in a thread
        [
            sys.executable,
            "-m",
            "tests.fakes.wan_server",
            "--port",
            "0",
            "--api-key",
            api_key,
            *options,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        async with aiohttp.ClientSession() as session:
            yield FakeWanProcess(line.strip(), session)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), 10)
        except TimeoutError:
            process.kill()
