"""The store's two engines side by side: where PostgreSQL comes from, a fresh database per run,
the CPU the PostgreSQL server spends on it, and one scenario run per engine.

A benchmark writes its scenario once, as a function of the engine, and hands it to
:func:`per_engine`. Each engine's run happens in a new interpreter (multiprocessing "spawn"), one
after the other, so nothing one run leaves behind (imports, caches, memory the allocator still
holds, the peak RSS) colours the next: the engine is the only difference.

On SQLite the database's work is done in the measured process (aiosqlite's thread); on
PostgreSQL most of it is done by the server's backends, in other processes. :class:`ServerCpu`
reads their CPU from ``/proc`` (the server must run on this machine), sampled by a process of its
own so that the measured process's CPU stays its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench._support import cpu_seconds

ENV = "TEST_DATABASE_URL"
SQLITE = "SQLite"
POSTGRES = "PostgreSQL"
SAMPLE_SECONDS = 0.05  # short-lived backends (a pool's overflow) are seen if they live this long

T = TypeVar("T")


def postgres_admin(option: str | None) -> str | None:
    """The PostgreSQL admin URL from ``--postgres`` or ``TEST_DATABASE_URL``; None: neither."""
    return option or os.environ.get(ENV, "").strip() or None


def engines(admin: str | None) -> list[str]:
    """The engines a run measures; without PostgreSQL, says so in one line."""
    if admin is None:
        print(f"PostgreSQL: not measured (no --postgres ADMIN_URL, no {ENV}); SQLite only")
        return [SQLITE]
    return [SQLITE, POSTGRES]


def per_engine(
    scenario: Callable[..., T], names: Sequence[str], *args: Any, rounds: int = 1
) -> dict[str, list[T]]:
    """``scenario(name, *args)`` for each engine, each in a fresh interpreter, one at a time;
    ``rounds`` times, the engines taking turns (so a change in the machine's load falls on both).

    ``scenario`` is a module-level function (it is pickled by name); ``args`` are pickled too.
    """
    results: dict[str, list[T]] = {name: [] for name in names}
    context = multiprocessing.get_context("spawn")
    for _ in range(rounds):
        for name in names:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                results[name].append(pool.submit(scenario, name, *args).result())
    return results


@dataclass
class Target:
    """Where a run's store lives: a SQLite file's path or a PostgreSQL URL."""

    engine: str
    location: Path | str
    server: ServerCpu | None = None  # PostgreSQL: its backends' CPU for this database


@asynccontextmanager
async def fresh_target(engine: str, admin: str | None) -> AsyncIterator[Target]:
    """An empty database for one run: a file in a temporary directory, or a new database on
    the PostgreSQL server ``admin`` names (created for the run, dropped after it)."""
    if engine == SQLITE:
        with tempfile.TemporaryDirectory() as tmp:
            yield Target(engine, Path(tmp) / "bench.sqlite3")
        return
    if admin is None:
        raise SystemExit(f"PostgreSQL needs --postgres ADMIN_URL or {ENV}")
    name = f"wanbot_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        postmaster = _parent_pid(await conn.fetchval("SELECT pg_backend_pid()"))
        parts = urlsplit(admin)
        url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
        yield Target(engine, url, ServerCpu(postmaster, name))
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def _parent_pid(pid: int) -> int | None:
    """The parent of a local process (a backend's parent is the postmaster); None: not here."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return int(stat.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError):
        return None  # the server runs on another machine (or in another PID namespace)


class ServerCpu:
    """CPU seconds the server's backends connected to one database used between start and stop.

    A sampler process reads ``/proc`` every :data:`SAMPLE_SECONDS`: each backend whose title
    names the database, its CPU so far. A backend that ends between two samples loses at most
    its last interval; one that lives less than that is not seen (``backends`` says how many
    were, so churn shows).
    """

    def __init__(self, postmaster: int | None, database: str) -> None:
        self.postmaster = postmaster
        self.database = database
        self.backends = 0
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None

    def start(self) -> None:
        if self.postmaster is None:
            return
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        process = multiprocessing.get_context("spawn").Process(
            target=_sample, args=(self.postmaster, self.database, theirs), daemon=True
        )
        process.start()
        theirs.close()
        ours.recv()  # its first sample is taken: the baseline
        self._process, self._pipe = process, ours

    async def stop(self) -> float | None:
        """The CPU seconds used since :meth:`start`; None when the server is not local."""
        if self._process is None or self._pipe is None:
            return None
        self._pipe.send("stop")
        seconds, self.backends = await asyncio.to_thread(self._pipe.recv)
        await asyncio.to_thread(self._process.join, 10)
        self._process = self._pipe = None
        return float(seconds)


def _backends(postmaster: int, database: str) -> dict[int, float]:
    """CPU so far of each backend of ``postmaster`` serving ``database``."""
    found: dict[int, float] = {}
    with suppress(OSError):
        with open(f"/proc/{postmaster}/task/{postmaster}/children", encoding="ascii") as kids:
            pids = [int(pid) for pid in kids.read().split()]
        for pid in pids:
            with suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    title = cmdline.read().decode(errors="replace").split()
                # "postgres: USER DATABASE HOST STATE" (the server's process title)
                if len(title) > 2 and title[0] == "postgres:" and title[2] == database:
                    found[pid] = cpu_seconds(pid)
    return found


def _sample(postmaster: int, database: str, pipe: Connection) -> None:
    first = _backends(postmaster, database)
    latest = dict(first)
    pipe.send("ready")
    while not pipe.poll(SAMPLE_SECONDS):
        latest.update(_backends(postmaster, database))
    latest.update(_backends(postmaster, database))
    used = sum(seconds - first.get(pid, 0.0) for pid, seconds in latest.items())
    pipe.send((used, len(latest)))


def side_by_side(title: str, rows: Sequence[tuple[str, dict[str, str]]]) -> None:
    """``title`` on a line, then a table: one row per figure, one column per engine."""
    names = list(dict.fromkeys(name for _, values in rows for name in values))
    label_width = max(len(label) for label, _ in rows)
    widths = {
        name: max(len(name), *(len(values.get(name, "")) for _, values in rows)) for name in names
    }
    print(title)
    print(f"{'':<{label_width}}  " + "  ".join(f"{n:>{widths[n]}}" for n in names))
    for label, values in rows:
        cells = "  ".join(f"{values.get(n, '-'):>{widths[n]}}" for n in names)
        print(f"{label:<{label_width}}  {cells}", flush=True)


def machine_load() -> str:
    """The 1/5/15-minute load averages and core count, to print beside timings."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores at {time.ctime()}"
