"""The end-to-end harness: the real bot as a subprocess, the fakes in the test's event loop.

``World`` owns one :class:`FakeDiscord` and one :class:`FakeWanServer` (both on 127.0.0.1, served by
the pytest event loop) and the ``python bot.py`` process pointed at them through its ordinary
configuration (environment variables). Tests act as users do (slash commands, buttons, messages)
and check what users, Discord, the API and the database saw.

A network: ``Options(shard_count=N, postgres=True)`` gives a local Discord recommending N shards
and one fresh PostgreSQL database (``DATABASE_URL`` for every process); ``add_bot(env)`` adds
more ``python bot.py`` processes (say ``SHARD_IDS``), each with its own log, started with
``start`` (which waits for its shards), stopped with ``stop`` or ``crash``; ``sync_commands``
runs ``python bot.py --sync`` so every server has the commands, not only ``DEV_GUILD_ID``.
``query`` reads the database of either engine with one copy of the SQL; with ``Options(http=True)``
every process serves ``/healthz`` and ``/metrics`` on a port of its own (``metrics`` reads them);
with ``Options(wan_process=True)`` the fake API runs in a process of its own (``wan_process``).

The event loop must be running for the fakes to answer, so every wait here is an ``await``
(the bot's shutdown included: ``proc.wait`` runs in a thread).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.config import SETTING_NAMES
from core.shard_ids import parse_shard_ids
from tests.fakes.discord import FakeDiscord, FakeGuild, FakeUser, MessageFlag, shard_of
from tests.fakes.wan_server import FakeWanServer, RecordedRequest, fake_mp4_chunks
from tests.postgres import fresh_database

ROOT = Path(__file__).resolve().parents[2]
BOT_SCRIPT = ROOT / "bot.py"
WAN_API_KEY = "e2e-wan-key"

# Every variable the bot reads. All are set for the child (empty = unset), so neither the
# developer's shell nor a .env file in the repository can change what a test runs.
CONFIG_VARS = SETTING_NAMES

START_TIMEOUT = 30.0  # a cold interpreter importing discord.py on a slow CI machine
STOP_TIMEOUT = 20.0
WAIT = 15.0  # default for one step of a scenario

ACCEPTED = re.compile(r"Accepted as job `([0-9a-f]+)`")
T = TypeVar("T")


# ----------------------------------------------------------------------------- media


def png(width: int, height: int) -> bytes:
    """A real PNG (black), so the fake reads its size from the header like Discord does."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def mp4(size: int = 4096) -> bytes:
    return b"".join(fake_mp4_chunks(size))


GIF = b"GIF89a" + struct.pack("<HH", 320, 320) + b"\x00" * 32
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64


# ----------------------------------------------------------------------------- replies


def message_text(message: Mapping[str, Any]) -> str:
    """Everything a user reads in a message: content, embed titles, texts and fields."""
    parts = [str(message.get("content") or "")]
    for embed in message.get("embeds") or []:
        parts += [str(embed.get("title") or ""), str(embed.get("description") or "")]
        for item in embed.get("fields") or []:
            parts += [str(item.get("name") or ""), str(item.get("value") or "")]
    return "\n".join(part for part in parts if part)


@dataclass(frozen=True)
class Reply:
    """The bot's answer to one interaction, as the user saw it."""

    interaction_id: int
    message: dict[str, Any]

    @property
    def text(self) -> str:
        return message_text(self.message)

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.message["flags"]) & MessageFlag.EPHEMERAL)

    @property
    def job_id(self) -> str:
        match = ACCEPTED.search(self.text)
        if match is None:
            raise AssertionError(f"not an acceptance: {self.text!r}")
        return match.group(1)


# ----------------------------------------------------------------------------- the process


@dataclass
class BotProcess:
    """``python bot.py`` with a given environment, its output appended to one log file."""

    env: dict[str, str]
    log_path: Path
    args: tuple[str, ...] = ()  # e.g. ("--sync",)
    proc: subprocess.Popen[bytes] | None = None
    stopping: bool = False  # signalled (or told to exit) by the harness: its exit is expected
    _log: IO[bytes] | None = None

    @property
    def shards(self) -> frozenset[tuple[int, int]] | None:
        """``(shard_id, shard_count)`` this process runs, from its SHARD_* settings (None: the
        bot is not sharded)."""
        count = self.env.get("SHARD_COUNT", "").strip()
        if not count:
            return None
        total, ids = int(count), self.env.get("SHARD_IDS", "").strip()
        return frozenset((i, total) for i in (parse_shard_ids(ids) if ids else range(total)))

    @property
    def http_port(self) -> int | None:
        """The port of its ``/healthz`` and ``/metrics`` (None: its HTTP server is off)."""
        port = int(self.env.get("WEBHOOK_PORT") or 0)
        return port or None

    @property
    def pid(self) -> int | None:
        """The running process's id (None when it is not running)."""
        return self.proc.pid if self.proc is not None else None

    def spawn(self) -> None:
        if self.proc is not None:
            raise RuntimeError("the bot is already running")
        self.stopping = False
        self._log = self.log_path.open("ab")
        self._log.write(b"\n===== bot starting =====\n")
        self._log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, str(BOT_SCRIPT), *self.args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def _reap(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            code = await asyncio.to_thread(self.proc.wait, timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
            assert self._log is not None
            self._log.close()
            self.proc, self._log = None, None
        return code

    async def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait for the exit code (the fakes keep serving meanwhile)."""
        assert self.proc is not None
        self.stopping = True
        self.proc.send_signal(signal.SIGTERM)
        return await self._reap(timeout)

    async def kill(self) -> int:
        """SIGKILL: a crash, with no chance to clean up."""
        assert self.proc is not None
        self.stopping = True
        self.proc.kill()
        return await self._reap(STOP_TIMEOUT)

    async def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself (``--sync``); killed after ``timeout``."""
        return await self._reap(timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# ----------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Options:
    """How a module wants its world: extra bot settings and the fake API's behaviour."""

    env: Mapping[str, str] = field(default_factory=dict)
    # A fake task takes 1.5 s (None: tasks move only when the test says so); with the default
    # tracker settings every flow still gets its video within seconds.
    task_seconds: float | None = 1.5
    media_bytes: int = 200 * 1024
    webhook_secret: str | None = None  # set: webhook mode (the bot's HTTP server on a free port)
    # The local Discord: the shard count GET /gateway/bot recommends and its IDENTIFY buckets.
    shard_count: int = 1
    max_concurrency: int = 1
    guilds: int = 1  # servers the bot is in, spread over the shards in turn
    postgres: bool = False  # every bot process on one fresh PostgreSQL database (DATABASE_URL)
    # Every bot process serves /healthz and /metrics on a port of its own (webhook mode does
    # anyway): WEBHOOK_PORT set, with no public URL, so tasks are still polled.
    http: bool = False
    # The fake API as a process of its own (``World.wan_process``; ``World.wan`` stays unused):
    # the times it records are then not held up by this test's busy event loop, so the rates
    # measured from them are what an API would count.
    wan_process: bool = False


class World:
    def __init__(self, directory: Path, options: Options) -> None:
        self.directory = directory
        self.options = options
        self.discord = FakeDiscord(
            shard_count=options.shard_count, max_concurrency=options.max_concurrency
        )
        # The first server, then one on each next shard in turn.
        self.guilds: list[FakeGuild] = [self.discord.guilds[self.discord.guild_id]]
        first = shard_of(self.discord.guild_id, options.shard_count)
        for n in range(1, options.guilds):
            shard = ((first + n) % options.shard_count, options.shard_count)
            self.guilds.append(self.discord.add_guild(f"Server {n + 1}", shard=shard))
        self.wan = FakeWanServer(
            api_key=WAN_API_KEY,
            task_seconds=options.task_seconds,
            webhook_secret=options.webhook_secret,
            media_bytes=options.media_bytes,
        )
        self.wan_process: WanProcess | None = None  # Options.wan_process
        self.db_path = directory / "bot.sqlite3"
        self.log_path = directory / "bot.log"
        self.http_port: int | None = None
        self.database_url: str | None = None  # Options.postgres: the database every bot uses
        self.bot: BotProcess | None = None
        self.processes: list[BotProcess] = []  # the first is ``bot``; ``add_bot`` adds more
        self._resources = AsyncExitStack()
        self._users = 0
        self._engine: AsyncEngine | None = None  # ``query``'s, made on first use
        self._http: aiohttp.ClientSession | None = None  # ``metrics``', made on first use

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        await self.discord.start()
        if self.options.wan_process:
            self.wan_process = WanProcess(self.directory / "fake-wan.log", self.options)
            self._resources.push_async_callback(self.wan_process.close)
            await self.wan_process.start()
        else:
            await self.wan.start()
        if self.options.postgres:
            self.database_url = await self._resources.enter_async_context(fresh_database())
        self.bot = BotProcess(self.environment(), self.log_path)
        self.processes.append(self.bot)

    async def close(self) -> None:
        try:
            for process in self.processes:
                if process.running:
                    await process.kill()
        finally:
            try:
                if self._http is not None:
                    await self._http.close()
                if self._engine is not None:
                    await self._engine.dispose()
                await self.wan.close()
                await self.discord.close()
            finally:
                await self._resources.aclose()

    def add_bot(self, env: Mapping[str, str], *, name: str) -> BotProcess:
        """Another ``python bot.py`` beside the first: the same settings with ``env`` on top
        (``SHARD_IDS``...), its own log (``bot-<name>.log``) and, in webhook mode or with
        ``Options.http``, its own port. In SQLite mode give it its own ``DATABASE_PATH``: a
        SQLite file is one process's."""
        webhooks = self.options.webhook_secret is not None
        port = free_port() if webhooks or self.options.http else None
        extra = dict(env)
        if port is not None:
            extra["WEBHOOK_PORT"] = str(port)
        if port is not None and webhooks:
            extra["WEBHOOK_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        process = BotProcess(self.environment() | extra, self.directory / f"bot-{name}.log")
        self.processes.append(process)
        return process

    def guilds_of(self, process: BotProcess) -> list[FakeGuild]:
        """The servers whose events the gateway gives this process (all, when unsharded)."""
        shards = process.shards
        if shards is None:
            return list(self.guilds)
        return [g for g in self.guilds if any(g.shard(n) == i for i, n in shards)]

    def environment(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name not in CONFIG_VARS}
        env |= dict.fromkeys(CONFIG_VARS, "")
        env |= {
            "PYTHONUNBUFFERED": "1",
            "DISCORD_TOKEN": self.discord.token,
            "FREEPIK_API_KEY": WAN_API_KEY,
            "WAN_API_BASE": self.wan_base_url,
            "DISCORD_API_BASE": self.discord.api_base,
            "DATABASE_PATH": str(self.db_path),
            "DEV_GUILD_ID": str(self.discord.guild_id),
            "WEBHOOK_PORT": "0",
            "HTTP_HOST": "127.0.0.1",
            "LOG_LEVEL": "DEBUG",
            # The tracker runs its defaults, as a fresh install does (no timing overrides).
            "STATUS_EDIT_INTERVAL_SECONDS": "0.2",
            "QUOTA_DAILY_SECONDS": "600",
            "QUOTA_MAX_CONCURRENT": "5",
        }
        if self.options.webhook_secret is not None:
            if self.http_port is None:  # the first bot's port (add_bot gives others their own)
                self.http_port = free_port()
            env |= {
                "WEBHOOK_PORT": str(self.http_port),
                "WEBHOOK_PUBLIC_URL": f"http://127.0.0.1:{self.http_port}",
                "WEBHOOK_SECRET": self.options.webhook_secret,
            }
        elif self.options.http:
            if self.http_port is None:
                self.http_port = free_port()
            env["WEBHOOK_PORT"] = str(self.http_port)
        if self.database_url is not None:
            env["DATABASE_URL"] = self.database_url
        env |= self.options.env
        return env

    @property
    def wan_base_url(self) -> str:
        if self.wan_process is not None:
            return self.wan_process.base_url
        return self.wan.base_url

    @property
    def process(self) -> BotProcess:
        assert self.bot is not None
        return self.bot

    async def start_bot(self) -> None:
        """Start ``python bot.py`` and wait until it has synced its commands and identified."""
        await self.start(self.process)

    async def start(self, process: BotProcess) -> None:
        """Start a bot process and wait until it has synced its commands and identified (every
        one of its shards, when it is sharded)."""
        before, identified_before = len(self.discord.identifies), self.discord.identify_count
        process.spawn()
        shards = process.shards

        def identified() -> bool:
            if shards is None:
                return self.discord.identify_count > identified_before and self.discord.connected
            fresh = {(i.shard_id, i.shard_count) for i in self.discord.identifies[before:]}
            return shards <= fresh and shards <= self.discord.connected_shards

        await self.until(
            lambda: identified() and self.discord.find_command("video") is not None,
            START_TIMEOUT,
            "the bot to sync its commands and connect to the gateway",
        )

    async def stop_bot(self) -> int:
        """SIGTERM; returns the exit code."""
        return await self.stop(self.process)

    async def stop(self, process: BotProcess) -> int:
        """SIGTERM a bot process; returns the exit code once the gateway saw it leave."""
        code = await process.terminate()
        await self._left(process, "the bot to leave")
        return code

    async def crash_bot(self) -> None:
        """SIGKILL, and wait until the fake Discord has noticed the dead connection."""
        await self.crash(self.process)

    async def crash(self, process: BotProcess) -> None:
        """SIGKILL a bot process, and wait until the fake Discord has noticed."""
        await process.kill()
        await self._left(process, "the bot to drop")

    async def _left(self, process: BotProcess, what: str) -> None:
        shards = process.shards
        if shards is None:
            await self.discord.wait_for(lambda: not self.discord.connected, 5.0, what)
        else:
            await self.discord.wait_for(
                lambda: not shards & self.discord.connected_shards, 5.0, what
            )

    async def sync_commands(self) -> None:
        """``python bot.py --sync``: the commands registered globally, so every server has them
        (at start-up each bot syncs only to ``DEV_GUILD_ID``, the first server)."""
        env = self.environment() | {"DATABASE_PATH": str(self.directory / "sync.sqlite3")}
        sync = BotProcess(env, self.directory / "bot-sync.log", args=("--sync",))
        sync.spawn()
        code = await sync.wait(START_TIMEOUT)
        assert code == 0, f"python bot.py --sync exited with {code}: {sync.log_text()[-2000:]}"
        commands = self.discord.commands.get(None, [])
        assert any(c["name"] == "video" for c in commands), "--sync registered no /video"

    # ------------------------------------------------------------------ waiting

    async def until(
        self, predicate: Callable[[], T | None], timeout: float = WAIT, what: str = "condition"
    ) -> T:
        """Re-check ``predicate`` until it is truthy; fail early if the bot process died."""

        async def check() -> T | None:
            return predicate()

        return await self.until_async(check, timeout, what)

    async def until_async(
        self,
        predicate: Callable[[], Awaitable[T | None]],
        timeout: float = WAIT,
        what: str = "condition",
        *,
        every: float = 0.02,
    ) -> T:
        """``until`` with a predicate that awaits (a ``query``, a ``metrics`` scrape), re-checked
        ``every`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await predicate()
            if value:
                return value
            for bot in self.processes:  # stopped through the harness: expected (or proc is None)
                if bot.proc is not None and not bot.stopping and bot.proc.poll() is not None:
                    name = bot.log_path.name
                    raise AssertionError(
                        f"the bot exited ({bot.proc.returncode}, {name}) waiting for {what}"
                    )
            if loop.time() >= deadline:
                raise TimeoutError(f"{what}: not within {timeout} s")
            # Polling: the database and the fake API have no change notifications.
            await asyncio.sleep(every)

    # ------------------------------------------------------------------ users and files

    def new_user(self, name: str = "user", *, moderator: bool = False) -> FakeUser:
        """A fresh member, so each scenario starts with an untouched quota."""
        self._users += 1
        return self.discord.add_user(f"{name}{self._users}", moderator=moderator)

    def file(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        *,
        size: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> dict[str, Any]:
        """An attachment for a slash-command option; ``size``/``width``/``height`` override
        what Discord reports (the bot never downloads a reference, it validates metadata)."""
        payload = self.discord.register_file(
            data, filename, content_type, width=width, height=height
        )
        if size is not None:
            payload["size"] = size
        return payload

    def image(self, filename: str = "fox.png", width: int = 320, height: int = 320) -> Any:
        return self.file(png(width, height), filename, "image/png")

    def video_file(self, filename: str = "guitarist.mp4") -> Any:
        return self.file(mp4(), filename, "video/mp4")

    def voice(self, filename: str = "riff.mp3") -> Any:
        return self.file(MP3, filename, "audio/mpeg")

    # ------------------------------------------------------------------ acting

    def answer_of(self, interaction_id: int) -> Reply | None:
        """The interaction's first visible answer once it is complete (not "thinking…")."""
        interaction = self.discord.interactions[interaction_id]
        if interaction.response_type is None:
            return None
        for message in self.discord.interaction_messages(interaction_id):
            if not int(message["flags"]) & MessageFlag.LOADING:
                return Reply(interaction_id, message)
        return None

    async def command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser | None = None,
        channel_id: int | None = None,
        timeout: float = WAIT,
    ) -> Reply:
        """Run ``/name`` and wait for the bot's answer."""
        interaction_id = await self.discord.dispatch_slash_command(
            name, options, user=user, channel_id=channel_id
        )
        return await self.until(
            lambda: self.answer_of(interaction_id), timeout, f"an answer to /{name}"
        )

    async def click(self, message: Mapping[str, Any], custom_id: str, user: FakeUser) -> Reply:
        interaction_id = await self.discord.click_button(dict(message), custom_id, user=user)
        return await self.until(
            lambda: self.answer_of(interaction_id), WAIT, f"an answer to a click on {custom_id}"
        )

    # ------------------------------------------------------------------ the database

    def rows(self, sql: str, *params: Any, db_path: Path | None = None) -> list[sqlite3.Row]:
        """Read the bot's SQLite database (read-only, beside the running bot: WAL allows it);
        ``db_path``: another process's. (With Options.postgres, read ``database_url``.)"""
        path = db_path or self.db_path
        if not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            return list(conn.execute(sql, params))
        finally:
            conn.close()

    async def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read (``:name`` parameters) from the bot's database: the SQLite file, or
        with ``Options.postgres`` the PostgreSQL database every process shares."""
        if self._engine is None:
            if self.database_url is not None:
                url = self.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
            else:
                url = f"sqlite+aiosqlite:///file:{self.db_path}?mode=ro&uri=true"
            self._engine = create_async_engine(url)
        async with self._engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [dict(row) for row in result.mappings()]

    async def metrics(self, process: BotProcess) -> dict[str, float]:
        """What ``process`` serves at ``/metrics`` (``Options.http``), one value per sample,
        keyed by name and labels as exposed (``wanbot_jobs{state="running"}``); empty when it
        does not answer (not running, not listening yet)."""
        port = process.http_port
        if port is None or not process.running:
            return {}
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        try:
            async with self._http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                if resp.status != 200:
                    return {}
                exposition = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return {}
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(exposition):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                key = f"{sample.name}{{{labels}}}" if labels else sample.name
                samples[key] = sample.value
        return samples

    def job(self, job_id: str) -> sqlite3.Row:
        found = self.rows("SELECT * FROM jobs WHERE id = ?", job_id)
        assert found, f"no job {job_id} in the database"
        return found[0]

    def jobs_of(self, user: FakeUser) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM jobs WHERE user_id = ? ORDER BY created_at", user.id)

    def ledger(self, user: FakeUser) -> list[tuple[str, int]]:
        found = self.rows(
            "SELECT kind, seconds FROM quota_ledger WHERE user_id = ? ORDER BY id", user.id
        )
        return [(row["kind"], row["seconds"]) for row in found]

    async def wait_state(self, job_id: str, *states: str, timeout: float = WAIT) -> sqlite3.Row:
        def reached() -> sqlite3.Row | None:
            found = self.rows("SELECT * FROM jobs WHERE id = ?", job_id)
            return found[0] if found and found[0]["state"] in states else None

        return await self.until(reached, timeout, f"job {job_id} to be {'/'.join(states)}")

    # ------------------------------------------------------------------ what Discord shows

    def deliveries(self, job_id: str) -> list[dict[str, Any]]:
        """Every message the bot posted that delivers ``job_id`` (in any channel or thread)."""
        marker = f"your video is ready! (job `{job_id}`)"
        return [
            message
            for message in self.discord.messages.values()
            if int(message["author"]["id"]) == self.discord.bot_user.id
            and marker in str(message.get("content") or "")
        ]

    def failure_notices(self, job_id: str) -> list[dict[str, Any]]:
        marker = f"(job `{job_id}`)"
        return [
            message
            for message in self.discord.messages.values()
            if int(message["author"]["id"]) == self.discord.bot_user.id
            and marker in str(message.get("content") or "")
            and ("could not be made" in message["content"] or "was cancelled" in message["content"])
        ]

    def creates_for(self, prompt_part: str) -> list[dict[str, Any]]:
        """Create bodies the fake API received whose prompt contains ``prompt_part``."""
        return [
            request.json
            for request in self.wan.creates
            if isinstance(request.json, dict) and prompt_part in str(request.json.get("prompt"))
        ]

    def tasks_for(self, prompt_part: str) -> list[str]:
        """Tasks the fake API created (each one paid) whose prompt contains ``prompt_part``."""
        return [
            task.task_id
            for task in self.wan.tasks.values()
            if prompt_part in str(task.body.get("prompt"))
        ]


class WanProcess:
    """The fake API as ``python -m tests.fakes.wan_server`` (``Options.wan_process``), with
    what it recorded read back over its ``/_fake`` endpoints."""

    def __init__(self, log_path: Path, options: Options) -> None:
        self.log_path = log_path
        self.options = options
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._spawn()
        assert self._proc is not None and self._proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self._proc.stdout.readline), START_TIMEOUT)
        self.base_url = line.decode().strip()
        if not self.base_url.startswith("http://"):
            raise RuntimeError(f"the fake API did not start: {self.log_path.read_text()[-2000:]}")
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    def _spawn(self) -> None:
        args = ["--port", "0", "--api-key", WAN_API_KEY, "--media-bytes"]
        args.append(str(self.options.media_bytes))
        if self.options.task_seconds is None:
            args.append("--manual")
        else:
            args += ["--task-seconds", str(self.options.task_seconds)]
        if self.options.webhook_secret is not None:
            args += ["--webhook-secret", self.options.webhook_secret]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.wan_server", *args],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )

    async def _get(self, path: str) -> Any:
        assert self._http is not None
        async with self._http.get(self.base_url + path) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def requests(self) -> list[RecordedRequest]:
        """Every API request it received, as the in-process fake records them."""
        data = await self._get("/_fake/requests")
        return [
            RecordedRequest(**(item | {"body": str(item["body"]).encode()}))
            for item in data["requests"]
        ]

    async def tasks(self) -> list[dict[str, Any]]:
        """Every task it made (``task_id``, ``status``, ``body``...)."""
        return list((await self._get("/_fake/tasks"))["tasks"])

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                await asyncio.to_thread(self._proc.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await asyncio.to_thread(self._proc.wait)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
