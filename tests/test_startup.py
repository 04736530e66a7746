"""Start-up as an operator meets it: one-line errors with the fix (never a traceback), --sync.

Each test runs the real ``python bot.py`` as a subprocess with a clean environment.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from core.config import SETTING_NAMES
from core.startup_checks import database_problem, describe_bind_error
from discord_side.inputs import BOT_PERMISSIONS
from discord_side.startup import command_differences, describe_sync, invite_url
from tests.fakes.discord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot.py"
TOKEN = "discord-token-for-start-up-tests"
KEY = "wan-key-for-start-up-tests"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(directory: Path, **settings: str) -> dict[str, str]:
    """Only what the test gives: no developer shell variable or .env changes the outcome."""
    env = {name: value for name, value in os.environ.items() if name not in SETTING_NAMES}
    env |= dict.fromkeys(SETTING_NAMES, "")
    env |= {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DISCORD_TOKEN": TOKEN,
        "FREEPIK_API_KEY": KEY,
        # Nothing here may reach the real Discord: a port that refuses, unless a test says.
        "DISCORD_API_BASE": f"http://127.0.0.1:{closed_port()}/api/v10",
        "DATABASE_PATH": str(directory / "data" / "bot.sqlite3"),
        "WEBHOOK_PORT": "0",
    }
    return env | settings


def run_bot(
    env: Mapping[str, str], *args: str, cwd: Path = ROOT, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, str(BOT), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def the_error(result: subprocess.CompletedProcess[str], marker: str = "cannot start: ") -> str:
    """The one line saying why, after checking that nothing else went wrong."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    assert TOKEN not in output and KEY not in output and "pg-secret" not in output
    lines = [line for line in output.splitlines() if marker in line]
    assert len(lines) == 1, output
    return lines[0]


def test_a_python_older_than_the_minimum_is_told_in_one_line() -> None:
    # This interpreter is new enough; the check reads sys.version_info, so pretend it is 3.9.
    pretend = (
        "import runpy, sys; sys.version_info = (3, 9, 18, 'final', 0); sys.argv = ['bot.py'];"
        f" runpy.run_path({str(BOT)!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", pretend],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"bot: Python 3.11 or newer is needed; this is Python 3.9 ({sys.executable})."
        " Install a newer Python and make the virtualenv with it (see README.md, Requirements)."
    ]


def test_the_minimum_python_is_the_one_the_readme_and_pyproject_state() -> None:
    from core.python_version import MINIMUM

    version = ".".join(map(str, MINIMUM))
    assert f'requires-python = ">={version}"' in (ROOT / "pyproject.toml").read_text()
    assert f"Python {version} or newer" in (ROOT / "README.md").read_text()


def test_the_http_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_bot(bot_env(tmp_path, WEBHOOK_PORT=str(port), HTTP_HOST="127.0.0.1"))
    line = the_error(result)
    assert f"the HTTP port {port} on 127.0.0.1 is already in use" in line
    assert "set WEBHOOK_PORT to a free port" in line


@pytest.fixture
def locked_directory() -> Iterator[tuple[Path, list[str]]]:
    """A directory the bot cannot write, and the command prefix that makes it so.

    As root (a container, CI) permissions do not bind, so the bot runs with every capability
    dropped (still uid 0) against a directory owned by nobody; otherwise the directory is
    simply made read-only.
    """
    base = Path(tempfile.mkdtemp(prefix="wanbot-locked-"))
    locked = base / "data"
    locked.mkdir()
    prefix: list[str] = []
    try:
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv to drop privileges")
            os.chown(locked, 65534, 65534)
            prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all", "--"]
        else:
            locked.chmod(0o555)
        yield locked, prefix
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base)


def test_a_database_path_that_cannot_be_written(
    tmp_path: Path, locked_directory: tuple[Path, list[str]]
) -> None:
    locked, prefix = locked_directory
    env = bot_env(tmp_path, DATABASE_PATH=str(locked / "bot.sqlite3"))
    line = the_error(run_bot(env, prefix=prefix))
    owner = "nobody (uid 65534)" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    assert f"cannot write the database directory {locked}: it is owned by" in line
    assert owner in line
    assert f"this bot runs as {'root (uid 0)' if os.geteuid() == 0 else ''}" in line
    assert "DATABASE_PATH" in line
    assert not (locked / "bot.sqlite3").exists()


def test_a_database_path_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    env = bot_env(tmp_path, DATABASE_PATH=str(tmp_path / "afile" / "bot.sqlite3"))
    line = the_error(run_bot(env))
    assert f"{tmp_path / 'afile'} is not a directory" in line


def test_discord_refusing_connections(tmp_path: Path) -> None:
    port = closed_port()
    env = bot_env(tmp_path, DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10")
    line = the_error(run_bot(env))
    assert f"cannot reach 127.0.0.1:{port}: connection refused" in line
    assert "check the network, DNS and any firewall or proxy" in line


def test_discord_host_that_does_not_resolve(tmp_path: Path) -> None:
    # .invalid never resolves (RFC 6761), so this asks no real DNS name.
    env = bot_env(tmp_path, DISCORD_API_BASE="https://discord.invalid/api/v10")
    line = the_error(run_bot(env))
    assert "cannot reach discord.invalid: the host name does not resolve (DNS)" in line


async def test_a_refused_token_is_one_line_whatever_the_base_url(tmp_path: Path) -> None:
    async with FakeDiscord() as discord:
        env = bot_env(tmp_path, DISCORD_API_BASE=discord.api_base, DISCORD_TOKEN="wrong-token")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BOT),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 1, text
    assert "Traceback" not in text and "wrong-token" not in text
    assert "cannot start: token refused by Discord (127.0.0.1:" in text


async def test_the_message_content_intent_not_enabled_in_the_portal(tmp_path: Path) -> None:
    async with FakeDiscord(allowed_privileged_intents=0) as discord:
        env = bot_env(
            tmp_path,
            DISCORD_TOKEN=discord.token,
            DISCORD_API_BASE=discord.api_base,
            MESSAGE_CONTENT_INTENT="true",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BOT),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 1, text
    assert "Traceback" not in text and discord.token not in text
    errors = [line for line in text.splitlines() if "cannot start: " in line]
    assert len(errors) == 1, text
    assert "MESSAGE_CONTENT_INTENT is true but the Message Content intent is off" in errors[0]


async def test_sync_registers_the_commands_globally_and_exits(tmp_path: Path) -> None:
    async with FakeDiscord() as discord:
        env = bot_env(
            tmp_path,
            DISCORD_TOKEN=discord.token,
            DISCORD_API_BASE=discord.api_base,
            LOG_FORMAT="json",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BOT),
            "--sync",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert discord.identify_count == 0  # no gateway: it synced and left
        names = {command["name"] for command in discord.commands.get(None, [])}
    assert {"video", "quota", "history", "help", "admin"} <= names
    entries = [json.loads(line) for line in err.decode().splitlines()]  # LOG_FORMAT=json
    messages = [entry["message"] for entry in entries]
    assert any(m.startswith(f"synced {len(names)} command(s) globally") for m in messages)
    assert discord.token not in err.decode() + out.decode()


# --- the first run's words (the full run is in tests/e2e/test_first_run.py) ------------------


def _command(name: str, *options: str, description: str = "d") -> dict[str, object]:
    return {
        "name": name,
        "type": 1,
        "description": description,
        "options": [{"name": o, "type": 3, "description": o} for o in options],
    }


def test_command_differences() -> None:
    local = [_command("video", "prompt", "ref1"), _command("quota"), _command("help")]
    remote = [_command("video", "prompt"), _command("help"), _command("old")]
    assert command_differences(local, remote) == (["quota"], ["old"], ["video"])
    assert command_differences(local, local) == ([], [], [])


def test_describe_sync() -> None:
    local = [_command("video", "prompt"), _command("quota")]
    assert describe_sync("globally", local, []) == (
        False,
        "no slash commands are registered globally",
    )
    assert describe_sync("globally", local, local) == (
        True,
        "2 slash command(s) are synced globally",
    )
    stale = [_command("video", "prompt", description="older words")]
    synced, sentence = describe_sync("globally", local, stale)
    assert not synced
    assert sentence == (
        "the slash commands registered globally are out of date (missing /quota; changed /video)"
    )


def test_invite_url_asks_for_the_permissions_the_bot_needs() -> None:
    url = invite_url(1234)
    assert "client_id=1234" in url
    assert f"permissions={BOT_PERMISSIONS.value}" in url
    assert "scope=bot+applications.commands" in url


# --- the words of the start-up checks ----------------------------------------------------------


def test_the_database_check_creates_what_is_missing_but_not_for_check(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "bot.sqlite3"
    assert database_problem(path, create=False) is None
    assert not (tmp_path / "new").exists()  # --check looks, it does not create
    assert database_problem(path) is None
    assert path.parent.is_dir()


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EADDRINUSE, "the HTTP port 80 on 0.0.0.0 is already in use"),
        (errno.EACCES, "ports below 1024 need privileges; set WEBHOOK_PORT to 1024 or above"),
        (errno.EADDRNOTAVAIL, "cannot listen on 0.0.0.0: this machine has no such address"),
        (errno.EPERM, "cannot listen on 0.0.0.0:80: nope"),
    ],
)
def test_bind_errors_say_what_to_do(code: int, words: str) -> None:
    assert words in describe_bind_error(OSError(code, "nope"), "0.0.0.0", 80)


def test_env_file_and_database_are_both_found_in_the_working_directory(tmp_path: Path) -> None:
    port = closed_port()
    (tmp_path / ".env").write_text(
        f"DISCORD_TOKEN={TOKEN}\nFREEPIK_API_KEY={KEY}\n"
        f"DISCORD_API_BASE=http://127.0.0.1:{port}/api/v10\nWAN_API_BASE=http://127.0.0.1:{port}\n"
        "DATABASE_PATH=state/bot.sqlite3\n"
    )
    env = {name: value for name, value in bot_env(tmp_path).items() if name not in SETTING_NAMES}
    result = run_bot(env, "--check", cwd=tmp_path)
    assert "configuration: ok" in result.stdout, result.stderr  # the .env here was read
    assert "database: ok (state/bot.sqlite3)" in result.stdout
    assert result.returncode == 1  # nothing answers on that port
    assert TOKEN not in result.stdout + result.stderr


def test_without_configuration_it_says_where_it_looked_for_env(tmp_path: Path) -> None:
    env = {name: value for name, value in bot_env(tmp_path).items() if name not in SETTING_NAMES}
    result = run_bot(env, cwd=tmp_path)
    assert result.returncode == 1
    assert "DISCORD_TOKEN is required but not set" in result.stderr
    assert f"no .env in {tmp_path}" in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------- PostgreSQL


async def test_a_postgresql_server_that_refuses_connections(tmp_path: Path) -> None:
    url = f"postgresql://bot:pg-secret@127.0.0.1:{closed_port()}/wanbot"
    async with FakeDiscord() as discord:  # past Discord: the database is opened next
        env = bot_env(
            tmp_path,
            DISCORD_TOKEN=discord.token,
            DISCORD_API_BASE=discord.api_base,
            DATABASE_URL=url,
        )
        result = await asyncio.to_thread(run_bot, env)
    line = the_error(result)
    assert "cannot reach the PostgreSQL server of postgresql://bot:***@127.0.0.1" in line
    assert "DATABASE_URL" in line and "pg-secret" not in line


def test_migrate_from_sqlite_needs_database_url(tmp_path: Path) -> None:
    result = run_bot(bot_env(tmp_path), "--migrate-from-sqlite", str(tmp_path / "bot.sqlite3"))
    line = the_error(result, marker="cannot copy: ")
    assert "DATABASE_URL is not set" in line


def test_migrate_from_sqlite_copies_once_into_an_empty_database(tmp_path: Path) -> None:
    from tests.postgres import fresh_database

    async def prepare() -> None:
        from core.store import QuotaLimits, Store
        from tests.store.helpers import NOW, make_job

        async with Store.open(tmp_path / "bot.sqlite3") as store:
            for user in range(3):
                await store.create_job(make_job(user=user), QuotaLimits(60, 2), NOW)

    async def copy_twice() -> None:
        await prepare()
        async with fresh_database() as url:
            env = bot_env(tmp_path, DATABASE_URL=url)
            path = str(tmp_path / "bot.sqlite3")
            first = await asyncio.to_thread(run_bot, env, "--migrate-from-sqlite", path)
            assert first.returncode == 0, first.stdout + first.stderr
            assert "jobs: 3 rows" in first.stdout and "quota_ledger: 3 rows" in first.stdout
            assert "copied 6 rows from" in first.stdout
            again = await asyncio.to_thread(run_bot, env, "--migrate-from-sqlite", path)
            line = the_error(again, marker="cannot copy: ")
            assert "is not empty: it has rows in jobs (3), quota_ledger (3)" in line

    asyncio.run(copy_twice())
