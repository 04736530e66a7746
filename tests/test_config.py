"""Settings from the environment, `python bot.py` failing fast, and `python bot.py --check`."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.config import ConfigError, Settings, config_warnings
from core.tracker_config import tracker_config
from discord_side.check import check
from discord_side.endpoint import restore_discord_defaults
from tests.fakes.discord import FakeDiscord
from tests.fakes.wan_server import FakeWanServer

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {"DISCORD_TOKEN": "discord-secret-token", "FREEPIK_API_KEY": "wan-secret-key"}


def test_defaults() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.wan_api_base == "https://api.freepik.com"
    assert settings.wan_api_key_header == "x-freepik-api-key"
    assert settings.discord_api_base == "https://discord.com/api/v10"
    assert settings.daily_seconds == 60 and settings.max_concurrent == 2
    assert settings.hd_multiplier == 1.0
    assert not settings.webhooks_enabled


def test_every_missing_and_invalid_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(
            {
                "WEBHOOK_PORT": "99999",
                "QUOTA_DAILY_SECONDS": "-5",
                "WAN_API_BASE": "ftp://nope",
                "MESSAGE_CONTENT_INTENT": "maybe",
            }
        )
    text = "\n".join(raised.value.problems)
    for name in (
        "DISCORD_TOKEN",
        "FREEPIK_API_KEY",
        "WEBHOOK_PORT",
        "QUOTA_DAILY_SECONDS",
        "WAN_API_BASE",
        "MESSAGE_CONTENT_INTENT",
    ):
        assert name in text
    assert len(raised.value.problems) == 6


def test_magnific_host_and_alias_key() -> None:
    settings = Settings.from_env(
        {
            "DISCORD_TOKEN": "t",
            "MAGNIFIC_API_KEY": "k",
            "WAN_API_BASE": "https://api.magnific.com/",
        }
    )
    assert settings.wan_api_key == "k"
    assert settings.wan_api_key_header == "x-magnific-api-key"
    assert settings.wan_api_base == "https://api.magnific.com"
    overridden = Settings.from_env({**REQUIRED, "WAN_API_KEY_HEADER": "x-custom"})
    assert overridden.wan_api_key_header == "x-custom"


def test_secrets_never_appear_in_repr_or_errors() -> None:
    settings = Settings.from_env({**REQUIRED, "WEBHOOK_SECRET": "hook-secret"})
    for secret in (*REQUIRED.values(), "hook-secret"):
        assert secret not in repr(settings)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**REQUIRED, "DEV_GUILD_ID": "discord-secret-token"})
    assert "discord-secret-token" not in str(raised.value)


def test_database_url_chooses_postgresql_and_must_be_one() -> None:
    sqlite = Settings.from_env(REQUIRED)
    assert sqlite.database_url is None and sqlite.database_target == Path("data/bot.sqlite3")
    for url in ("postgresql://bot:pg-secret@db:5432/wanbot", "postgresql+asyncpg://db/wanbot"):
        settings = Settings.from_env({**REQUIRED, "DATABASE_URL": url})
        assert settings.database_target == url
        assert "pg-secret" not in repr(settings)
    assert Settings.from_env(
        {**REQUIRED, "DATABASE_URL": "postgresql://bot:pg-secret@db/wanbot"}
    ).database_password == ("pg-secret")
    for wrong in ("mysql://bot:pg-secret@db/x", "sqlite:///x.db", "pg-secret", "postgresql://h:x/"):
        with pytest.raises(ConfigError) as raised:
            Settings.from_env({**REQUIRED, "DATABASE_URL": wrong})
        (problem,) = raised.value.problems
        assert problem.startswith("DATABASE_URL must be a PostgreSQL URL") and "unset" in problem
        assert "pg-secret" not in problem


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "Infinity", "1e400"])
def test_no_number_setting_takes_infinity_or_nan(value: str) -> None:
    numbers = (
        "QUOTA_DAILY_SECONDS",
        "QUOTA_MAX_CONCURRENT",
        "QUOTA_1080P_MULTIPLIER",
        "JOB_DEADLINE_SECONDS",
        "WAN_MAX_RPS",
        "WAN_BURST",
        "TRACKER_LAG_SECONDS",
        "TRACKER_RECONCILE_GRACE_SECONDS",
        "STATUS_EDIT_INTERVAL_SECONDS",
        "WEBHOOK_PORT",
        "DEV_GUILD_ID",
        "CHARACTERS_PER_MEMBER",
        "CHARACTERS_PER_SERVER",
        "BUDGET_DAILY_SECONDS",
        "SERVER_DAILY_SECONDS_MAX",
    )
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**REQUIRED, **dict.fromkeys(numbers, value)})
    text = "\n".join(raised.value.problems)
    assert [name for name in numbers if name not in text] == []


def test_the_http_server_listens_on_loopback_unless_webhooks_are_on() -> None:
    assert Settings.from_env(REQUIRED).http_host == "127.0.0.1"
    hooks = Settings.from_env({**REQUIRED, "WEBHOOK_PUBLIC_URL": "https://bot.example.com"})
    assert hooks.http_host == "0.0.0.0"
    chosen = Settings.from_env({**REQUIRED, "HTTP_HOST": "192.0.2.7"})
    assert chosen.http_host == "192.0.2.7"


def test_log_format_is_text_or_json() -> None:
    assert Settings.from_env(REQUIRED).log_format == "text"
    assert Settings.from_env({**REQUIRED, "LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be text or json"):
        Settings.from_env({**REQUIRED, "LOG_FORMAT": "xml"})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"WEBHOOK_SECRET": "whsec_abc"}, ["WEBHOOK_SECRET is set but WEBHOOK_PUBLIC_URL is not"]),
        ({"WEBHOOK_PUBLIC_URL": "https://bot.example.com", "WEBHOOK_SECRET": "s"}, []),
        ({"WEBHOOK_PUBLIC_URL": "http://localhost:8080"}, ["points at this machine (localhost)"]),
        ({"WEBHOOK_PUBLIC_URL": "http://127.0.0.1:8080"}, ["points at this machine (127.0.0.1)"]),
        ({"WEBHOOK_PUBLIC_URL": "http://[::1]:8080"}, ["points at this machine (::1)"]),
        ({"WEBHOOK_PUBLIC_URL": "http://0.0.0.0"}, ["points at this machine (0.0.0.0)"]),
        ({"WEBHOOK_PUBLIC_URL": "https://app.localhost"}, ["points at this machine"]),
    ],
)
def test_likely_mistakes_are_warnings(env: dict[str, str], expected: list[str]) -> None:
    found = config_warnings(Settings.from_env({**REQUIRED, **env}))
    assert len(found) == len(expected)
    for warning, part in zip(found, expected, strict=True):
        assert part in warning


def test_webhook_url_needs_the_server() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_PORT is 0"):
        Settings.from_env(
            {**REQUIRED, "WEBHOOK_PUBLIC_URL": "https://bot.example", "WEBHOOK_PORT": "0"}
        )


def test_tracker_settings_can_be_tuned() -> None:
    defaults = Settings.from_env(REQUIRED)
    assert defaults.reconcile_grace_seconds == 30.0 and defaults.status_edit_interval == 5.0
    config = tracker_config(defaults)
    assert (config.max_rps, config.burst) == (8.0, 40)
    assert config.reconcile_grace == 30.0 and config.lag_target == 3.0
    assert config.key_dedicated is False
    tuned = Settings.from_env(
        {
            **REQUIRED,
            "WAN_MAX_RPS": "4",
            "WAN_BURST": "6",
            "WAN_KEY_DEDICATED": "true",
            "TRACKER_RECONCILE_GRACE_SECONDS": "2",
            "TRACKER_LAG_SECONDS": "0.25",
            "STATUS_EDIT_INTERVAL_SECONDS": "1.5",
        }
    )
    config = tracker_config(tuned)
    assert (config.max_rps, config.burst) == (4.0, 6)
    assert config.key_dedicated is True
    assert config.reconcile_grace == 2.0
    assert config.lag_target == 0.25
    assert tuned.status_edit_interval == 1.5
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(
            {**REQUIRED, "WAN_KEY_DEDICATED": "maybe", "STATUS_EDIT_INTERVAL_SECONDS": "soon"}
        )
    text = "\n".join(raised.value.problems)
    assert "WAN_KEY_DEDICATED" in text and "STATUS_EDIT_INTERVAL_SECONDS" in text


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_bot_refuses_to_start_without_configuration(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bot.py")],
        cwd=tmp_path,  # no .env here
        env=_clean_env(FREEPIK_API_KEY="wan-secret-key"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "DISCORD_TOKEN is required" in result.stderr
    assert "wan-secret-key" not in result.stderr + result.stdout


@pytest.fixture
def restore_discord() -> Iterator[None]:
    yield
    restore_discord_defaults()


async def test_check_reports_a_working_setup(
    restore_discord: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeDiscord() as discord, FakeWanServer(api_key="wan-key") as wan:
        settings = Settings.from_env(
            {
                "DISCORD_TOKEN": discord.token,
                "FREEPIK_API_KEY": "wan-key",
                "DISCORD_API_BASE": discord.api_base,
                "WAN_API_BASE": wan.base_url,
            }
        )
        assert await check(settings) == 0
    out = capsys.readouterr().out
    assert "discord token: ok" in out and "WAN API key: ok" in out
    assert "discord shards: this process: not sharded; Discord recommends 1" in out
    assert discord.token not in out and "wan-key" not in out


async def test_check_tells_a_network_it_needs_more_shards(
    restore_discord: None, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = FakeDiscord(shard_count=4, max_concurrency=2)
    async with shards as discord, FakeWanServer(api_key="wan-key") as wan:
        settings = Settings.from_env(
            {
                "DISCORD_TOKEN": discord.token,
                "FREEPIK_API_KEY": "wan-key",
                "DISCORD_API_BASE": discord.api_base,
                "WAN_API_BASE": wan.base_url,
                "SHARD_COUNT": "2",
                "SHARD_IDS": "1",
            }
        )
        assert await check(settings) == 0
    out = capsys.readouterr().out
    assert (
        "discord shards: this process: 1 of 2 shard(s); Discord recommends 4"
        " (IDENTIFY max_concurrency 2): raise SHARD_COUNT" in out
    )


async def test_check_fails_on_a_refused_api_key(
    restore_discord: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeDiscord() as discord, FakeWanServer(api_key="right-key") as wan:
        settings = Settings.from_env(
            {
                "DISCORD_TOKEN": discord.token,
                "FREEPIK_API_KEY": "wrong-key",
                "DISCORD_API_BASE": discord.api_base,
                "WAN_API_BASE": wan.base_url,
            }
        )
        assert await check(settings) == 1
    out = capsys.readouterr().out
    assert "WAN API key: REFUSED" in out
    assert "wrong-key" not in out


async def test_check_fails_on_a_bad_discord_token(
    restore_discord: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeDiscord() as discord, FakeWanServer(api_key="wan-key") as wan:
        settings = Settings.from_env(
            {
                "DISCORD_TOKEN": "not-the-token",
                "FREEPIK_API_KEY": "wan-key",
                "DISCORD_API_BASE": discord.api_base,
                "WAN_API_BASE": wan.base_url,
            }
        )
        assert await check(settings) == 1
    out = capsys.readouterr().out
    assert "discord token: REFUSED, token refused by Discord" in out
    assert "ok (logged in" not in out
    assert "not-the-token" not in out


@pytest.fixture
async def hanging_host() -> AsyncIterator[str]:
    """A host that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open, say nothing

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_check_answers_in_time_and_names_the_hosts_that_hang(
    restore_discord: None, hanging_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env(
        {
            "DISCORD_TOKEN": "some-token",
            "FREEPIK_API_KEY": "wan-key",
            "DISCORD_API_BASE": f"http://{hanging_host}/api/v10",
            "WAN_API_BASE": f"http://{hanging_host}",
        }
    )
    async with asyncio.timeout(15):  # the promise --check makes, both hosts hanging at once
        assert await check(settings) == 1
    out = capsys.readouterr().out
    assert f"discord: cannot reach {hanging_host}: no answer within" in out
    assert f"WAN API: cannot reach {hanging_host}: no answer within" in out


async def test_check_names_a_host_that_refuses_connections(
    restore_discord: None, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeDiscord() as discord:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = f"127.0.0.1:{sock.getsockname()[1]}"
        settings = Settings.from_env(
            {
                "DISCORD_TOKEN": discord.token,
                "FREEPIK_API_KEY": "wan-key",
                "DISCORD_API_BASE": discord.api_base,
                "WAN_API_BASE": f"http://{closed}",
            }
        )
        assert await check(settings) == 1
    out = capsys.readouterr().out
    assert "discord token: ok" in out
    assert f"WAN API: cannot reach {closed}: connection refused" in out
