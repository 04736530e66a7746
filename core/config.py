"""One frozen settings object, read from the environment (and ``.env``) once at start-up."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from core.shard_ids import MAX_SHARDS, checked_shard_ids

DEFAULT_WAN_API_BASE = "https://api.freepik.com"
DEFAULT_DISCORD_API_BASE = "https://discord.com/api/v10"

T = TypeVar("T")

# Every variable Settings.from_env reads (tests and tools that start the bot clear them all).
SETTING_NAMES: tuple[str, ...] = (
    "DISCORD_TOKEN",
    "FREEPIK_API_KEY",
    "MAGNIFIC_API_KEY",
    "WAN_API_BASE",
    "WAN_API_KEY_HEADER",
    "DISCORD_API_BASE",
    "DATABASE_PATH",
    "DATABASE_URL",
    "DEV_GUILD_ID",
    "WEBHOOK_PUBLIC_URL",
    "WEBHOOK_SECRET",
    "WEBHOOK_PORT",
    "HTTP_HOST",
    "QUOTA_DAILY_SECONDS",
    "QUOTA_MAX_CONCURRENT",
    "QUOTA_1080P_MULTIPLIER",
    "JOB_DEADLINE_SECONDS",
    "WAN_MAX_RPS",
    "WAN_BURST",
    "WAN_KEY_DEDICATED",
    "TRACKER_LAG_SECONDS",
    "TRACKER_RECONCILE_GRACE_SECONDS",
    "LEASE_SECONDS",
    "STATUS_EDIT_INTERVAL_SECONDS",
    "MESSAGE_CONTENT_INTENT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "CHARACTERS_PER_MEMBER",
    "CHARACTERS_PER_SERVER",
    "BUDGET_DAILY_SECONDS",
    "SERVER_DAILY_SECONDS_MAX",
    "ALLOWED_GUILD_IDS",
    "LEAVE_UNLISTED_GUILDS",
    "SHARD_COUNT",
    "SHARD_IDS",
)


class ConfigError(Exception):
    """Raised with every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class Settings:
    # Secrets are excluded from repr so that logging a Settings never leaks them.
    discord_token: str = field(repr=False)
    wan_api_key: str = field(repr=False)
    wan_api_base: str = DEFAULT_WAN_API_BASE
    wan_api_key_header: str = "x-freepik-api-key"
    discord_api_base: str = DEFAULT_DISCORD_API_BASE
    database_path: Path = Path("data/bot.sqlite3")
    # PostgreSQL for several processes (None: SQLite at database_path, one process). It may
    # hold a password: never in a repr or a log line.
    database_url: str | None = field(default=None, repr=False)
    dev_guild_id: int | None = None
    # Webhook receiver + /healthz. The HTTP server runs when http_port is not 0.
    webhook_public_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    # Loopback unless webhooks are configured (then the API must reach the server).
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Quota defaults (per guild, overridable by moderators).
    daily_seconds: int = 60
    max_concurrent: int = 2
    hd_multiplier: float = 1.0
    # Tracker.
    job_deadline_seconds: int = 1800
    api_max_rps: float = 8.0
    api_burst: int = 40
    # The operator says no other tool uses this API key, so an unowned task the API lists after
    # a create of unknown outcome may be adopted (otherwise only a webhook proves it is ours).
    wan_key_dedicated: bool = False
    # How soon after a task finishes the bot aims to notice it (while the budget allows), the
    # wait before a create of unknown outcome is reconciled, and the pause between status edits.
    poll_lag_seconds: float = 3.0
    reconcile_grace_seconds: float = 30.0
    # Several processes: a dead one's jobs are taken over this long after its last renewal.
    lease_seconds: float = 20.0
    status_edit_interval: float = 5.0
    message_content_intent: bool = False
    log_level: str = "INFO"
    log_format: str = "text"  # or "json", one object a line for log collectors
    # Saved characters: a member's own in one server, and a server's shared ones.
    characters_per_member: int = 25
    characters_per_server: int = 100
    # Spending: seconds of video per UTC day for the whole bot (None: unlimited), and the most a
    # server's moderators may set as their server's daily cap (None: no bound; also the cap of a
    # server that sets none).
    budget_daily_seconds: int | None = None
    server_daily_seconds_max: int | None = None
    # Who may use the bot: these servers only (None: every server it is in), and whether it
    # leaves the others (after telling their owner).
    allowed_guild_ids: frozenset[int] | None = None
    leave_unlisted_guilds: bool = True
    # Sharding: the total number of shards (None: not sharded, one gateway session) and the
    # ones this process runs (all of them unless SHARD_IDS says otherwise), ascending.
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None

    @property
    def sharded(self) -> bool:
        return self.shard_count is not None

    @property
    def database_target(self) -> Path | str:
        """What the store opens: the PostgreSQL URL, else the SQLite file."""
        return self.database_url or self.database_path

    @property
    def database_password(self) -> str | None:
        """The password in DATABASE_URL, to keep out of the logs."""
        return urlsplit(self.database_url).password if self.database_url else None

    @property
    def webhooks_enabled(self) -> bool:
        return self.webhook_public_url is not None

    def guild_allowed(self, guild_id: int | None) -> bool:
        """Whether the bot is enabled in this server (direct messages: ``None``, always)."""
        allowed = self.allowed_guild_ids
        return allowed is None or guild_id is None or guild_id in allowed

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from ``env``; raise :class:`ConfigError` listing every problem."""
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None:
                return None
            value = value.strip()
            return value or None

        def required(*names: str) -> str:
            for name in names:
                value = get(name)
                if value is not None:
                    return value
            alias = f" (or {', '.join(names[1:])})" if len(names) > 1 else ""
            problems.append(f"{names[0]}{alias} is required but not set")
            return ""

        def parsed(name: str, default: T, parse: Callable[[str], T], rule: str) -> T:
            raw = get(name)
            if raw is None:
                return default
            try:
                return parse(raw)
            except ValueError:
                # Never echo the raw value: a misplaced secret must not reach a log.
                problems.append(f"{name} must be {rule}")
                return default

        def url(name: str, default: str | None) -> str | None:
            raw = get(name)
            if raw is None:
                return default
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(f"{name} must be an http(s) URL")
                return default
            return raw.rstrip("/")

        def positive_int(raw: str) -> int:
            value = int(raw)
            if value <= 0:
                raise ValueError
            return value

        def shard_total(raw: str) -> int:
            value = positive_int(raw)
            if value > MAX_SHARDS:  # a typo, not a bot: every shard is a gateway session
                raise ValueError
            return value

        def postgres_url(raw: str | None) -> str | None:  # DATABASE_URL
            if raw is None:
                return None
            try:
                scheme = urlsplit(raw).scheme
                urlsplit(raw).port  # noqa: B018 (raises on a port that is not a number)
            except ValueError:
                scheme = ""
            if scheme not in ("postgresql", "postgresql+asyncpg"):
                # Never echo the value: it may carry a password.
                problems.append(
                    "DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host/"
                    "database or postgresql+asyncpg://...); leave it unset for SQLite at"
                    " DATABASE_PATH"
                )
                return None
            return raw

        def port(raw: str) -> int:
            value = int(raw)
            if not 0 <= value <= 65535:
                raise ValueError
            return value

        def snowflake(raw: str) -> int:
            value = int(raw)
            if value <= 0:
                raise ValueError
            return value

        def positive_float(raw: str) -> float:
            value = float(raw)
            if not math.isfinite(value) or not value > 0:  # float() takes "inf" and "nan"
                raise ValueError
            return value

        def snowflakes(raw: str) -> frozenset[int]:
            ids = frozenset(snowflake(part.strip()) for part in raw.split(",") if part.strip())
            if not ids:
                raise ValueError
            return ids

        def boolean(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError

        discord_token = required("DISCORD_TOKEN")
        wan_api_key = required("FREEPIK_API_KEY", "MAGNIFIC_API_KEY")
        wan_api_base = url("WAN_API_BASE", DEFAULT_WAN_API_BASE) or DEFAULT_WAN_API_BASE
        default_header = (
            "x-magnific-api-key"
            if "magnific" in (urlsplit(wan_api_base).hostname or "")
            else "x-freepik-api-key"
        )
        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            problems.append("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
            log_level = "INFO"
        log_format = (get("LOG_FORMAT") or "text").lower()
        if log_format not in ("text", "json"):
            problems.append("LOG_FORMAT must be text or json")
            log_format = "text"
        webhook_public_url = url("WEBHOOK_PUBLIC_URL", None)
        shard_count = parsed("SHARD_COUNT", None, shard_total, "a whole number of shards 1-100000")
        shard_ids = checked_shard_ids(get("SHARD_IDS"), shard_count, get("SHARD_COUNT"), problems)
        # Listen on every interface only when the API has to reach us; /healthz and /metrics
        # alone stay on loopback unless the operator says otherwise.
        default_host = "0.0.0.0" if webhook_public_url else "127.0.0.1"  # noqa: S104

        settings = cls(
            discord_token=discord_token,
            wan_api_key=wan_api_key,
            wan_api_base=wan_api_base,
            wan_api_key_header=get("WAN_API_KEY_HEADER") or default_header,
            discord_api_base=url("DISCORD_API_BASE", DEFAULT_DISCORD_API_BASE)
            or DEFAULT_DISCORD_API_BASE,
            database_path=Path(get("DATABASE_PATH") or "data/bot.sqlite3"),
            database_url=postgres_url(get("DATABASE_URL")),
            dev_guild_id=parsed("DEV_GUILD_ID", None, snowflake, "a Discord server id"),
            webhook_public_url=webhook_public_url,
            webhook_secret=get("WEBHOOK_SECRET"),
            http_host=get("HTTP_HOST") or default_host,
            http_port=parsed("WEBHOOK_PORT", 8080, port, "a port number 0-65535 (0 = off)"),
            daily_seconds=parsed(
                "QUOTA_DAILY_SECONDS", 60, positive_int, "a whole number of seconds > 0"
            ),
            max_concurrent=parsed("QUOTA_MAX_CONCURRENT", 2, positive_int, "a whole number > 0"),
            hd_multiplier=parsed("QUOTA_1080P_MULTIPLIER", 1.0, positive_float, "a number > 0"),
            job_deadline_seconds=parsed(
                "JOB_DEADLINE_SECONDS", 1800, positive_int, "a whole number of seconds > 0"
            ),
            api_max_rps=parsed("WAN_MAX_RPS", 8.0, positive_float, "a number > 0"),
            api_burst=parsed("WAN_BURST", 40, positive_int, "a whole number > 0"),
            wan_key_dedicated=parsed("WAN_KEY_DEDICATED", False, boolean, "true or false"),
            poll_lag_seconds=parsed(
                "TRACKER_LAG_SECONDS", 3.0, positive_float, "a number of seconds > 0"
            ),
            reconcile_grace_seconds=parsed(
                "TRACKER_RECONCILE_GRACE_SECONDS", 30.0, positive_float, "a number of seconds > 0"
            ),
            lease_seconds=parsed("LEASE_SECONDS", 20.0, positive_float, "a number of seconds > 0"),
            status_edit_interval=parsed(
                "STATUS_EDIT_INTERVAL_SECONDS", 5.0, positive_float, "a number of seconds > 0"
            ),
            message_content_intent=parsed(
                "MESSAGE_CONTENT_INTENT", False, boolean, "true or false"
            ),
            log_level=log_level,
            log_format=log_format,
            characters_per_member=parsed(
                "CHARACTERS_PER_MEMBER", 25, positive_int, "a whole number > 0"
            ),
            characters_per_server=parsed(
                "CHARACTERS_PER_SERVER", 100, positive_int, "a whole number > 0"
            ),
            budget_daily_seconds=parsed(
                "BUDGET_DAILY_SECONDS", None, positive_int, "a whole number of seconds > 0"
            ),
            server_daily_seconds_max=parsed(
                "SERVER_DAILY_SECONDS_MAX", None, positive_int, "a whole number of seconds > 0"
            ),
            allowed_guild_ids=parsed(
                "ALLOWED_GUILD_IDS",
                None,
                snowflakes,
                "Discord server ids separated by commas (e.g. 1234567890123,2345678901234)",
            ),
            leave_unlisted_guilds=parsed("LEAVE_UNLISTED_GUILDS", True, boolean, "true or false"),
            shard_count=shard_count,
            shard_ids=shard_ids,
        )
        if settings.webhooks_enabled and settings.http_port == 0:
            problems.append("WEBHOOK_PUBLIC_URL is set but WEBHOOK_PORT is 0 (server off)")
        if problems:
            raise ConfigError(problems)
        return settings


def config_warnings(settings: Settings) -> list[str]:
    """Settings that are allowed but probably not what the operator meant, one line each."""
    found: list[str] = []
    if settings.webhook_secret is not None and settings.webhook_public_url is None:
        found.append(
            "WEBHOOK_SECRET is set but WEBHOOK_PUBLIC_URL is not: webhooks are off, so the"
            " secret is unused (the bot polls the API instead)"
        )
    allowed = settings.allowed_guild_ids
    dev_guild = settings.dev_guild_id
    if allowed is not None and dev_guild is not None and dev_guild not in allowed:
        found.append(
            "DEV_GUILD_ID is not in ALLOWED_GUILD_IDS: commands are synced there but refused"
            " (add it to ALLOWED_GUILD_IDS)"
        )
    if settings.webhook_public_url is not None and _is_local(settings.webhook_public_url):
        host = urlsplit(settings.webhook_public_url).hostname
        found.append(
            f"WEBHOOK_PUBLIC_URL points at this machine ({host}): the API cannot reach it, so"
            " every job waits for a status read; give the public HTTPS address of your proxy"
        )
    return found


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
