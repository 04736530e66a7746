"""Settings from the environment, `python bot.py` failing fast, and `python bot.py --check`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import check
from cogs.discord_endpoint import restore_discord_defaults
from core.config import ConfigError, Settings
from core.tracker import tracker_config
from tests.fakes.discord_server import FakeDiscord
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
    assert discord.token not in out and "wan-key" not in out


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
    assert "discord" in out and "ok (logged in" not in out
    assert "not-the-token" not in out
