"""Start the WAN 2.7 Reference-to-Video Discord bot.

python bot.py            run the bot (configuration from the environment / .env)
python bot.py --sync     sync slash commands globally, then exit (Discord allows ~200 a day)
python bot.py --check    validate configuration, try the token and API key, exit 0/1
python bot.py --report [--days N]   spending per server and for the bot, from the database
python bot.py --migrate-from-sqlite PATH   copy that SQLite file into the empty PostgreSQL
                                           database DATABASE_URL names, then exit

``.env`` is read from the working directory, and a relative DATABASE_PATH is relative to it too.
This file must stay parseable by old Pythons up to the version check below.
"""

from __future__ import annotations

import core.python_version  # noqa: F401  (first: a too-old Python is told so in one line)

# isort: split
import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord.ext import commands
from dotenv import load_dotenv

from core.app import Services, build_services
from core.config import ConfigError, Settings, config_warnings
from core.identify import IdentifyTurns
from core.logging_setup import configure_logging
from core.loop_lag import LoopLagProbe
from core.reachability import Unreachable, describe_network_error, host_of
from core.report import report_main
from core.startup_checks import (
    DATABASE_ERRORS,
    database_problem,
    describe_bind_error,
    describe_database_error,
    describe_postgres_error,
)
from core.store import Store, redact
from core.to_postgres import migrate_from_sqlite
from core.webhooks import HttpServer, WebhookReceiver, make_http_app
from discord_side.actions import VideoActions
from discord_side.check import check
from discord_side.delivery import DiscordDelivery
from discord_side.endpoint import DiscordEndpointError, point_discord_at
from discord_side.errors import BotCommandTree
from discord_side.observability import BotHealth, rest_error_trace
from discord_side.shards import IdentifyGate, describe_shards
from discord_side.startup import DiscordUnavailable, TokenRefused, explain_start, who_am_i
from discord_side.views import DeleteButton, RerollButton

log = logging.getLogger("bot")

# Imported from here by bench/restart.py and tests/test_config.py (they predate core.app).
__all__ = ["ShardedWanBot", "WanBot", "main", "make_bot", "run"]


class StartupError(Exception):
    """A foreseeable reason the bot cannot start, told in one line with the fix."""


EXTENSIONS = (
    "cogs.video",
    "cogs.account",
    "cogs.admin",
    "cogs.characters",
    "cogs.make_video",
    "cogs.guilds",
)


class WanBot(commands.Bot):
    """The bot: owns nothing it was handed; registers its Discord side, starts and stops the
    background work (in ``setup_hook`` and ``close``, in that order).

    ``identify_turns`` (PostgreSQL, several processes) makes every IDENTIFY wait for its
    bucket's turn; without it, discord.py's own spacing (one process)."""

    def __init__(
        self,
        services: Services,
        *,
        sync_only: bool = False,
        identify_turns: IdentifyTurns | None = None,
    ) -> None:
        settings = services.settings
        metrics = services.metrics
        intents = discord.Intents.default()
        # Privileged: without it the bot still sees messages that mention it (see README).
        intents.message_content = settings.message_content_intent
        super().__init__(
            # No text commands, only slash commands: with no prefix a message that mentions
            # the bot is never taken for an unknown command (CommandNotFound, logged at ERROR).
            command_prefix=(),
            intents=intents,
            tree_cls=BotCommandTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            http_trace=rest_error_trace(metrics),  # counts Discord REST errors
            **self._gateway_options(settings),
        )
        self.services = services
        self.metrics = metrics
        self.settings = settings
        self.session = services.session
        self.store = services.store
        self.wan = services.client
        self.tracker = services.tracker
        self.service = services.service
        self.moderation = services.moderation
        self.health = BotHealth(self)
        self.metrics.before_scrape(self._count_jobs)
        self._loop_lag = LoopLagProbe(self.metrics.loop_lagged)
        self._sync_only = sync_only
        self._explained = False
        self._http: HttpServer | None = None
        self._delivery: DiscordDelivery | None = None
        self._actions: VideoActions | None = None
        self._identify_gate = (
            IdentifyGate(identify_turns, self.http) if identify_turns is not None else None
        )

    def _gateway_options(self, settings: Settings) -> dict[str, Any]:
        """discord.py client options for the gateway: none for one unsharded session."""
        return {}

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if self._identify_gate is None:
            await super().before_identify_hook(shard_id, initial=initial)
        else:
            await self._identify_gate.wait(shard_id)

    @property
    def delivery(self) -> DiscordDelivery:
        """Status messages, threads and videos in Discord: the tracker's events."""
        if self._delivery is None:
            raise RuntimeError("the bot's Discord side is made in setup_hook")
        return self._delivery

    @property
    def actions(self) -> VideoActions:
        """What /video, replies, "Make a video" and the buttons do (reached from interactions)."""
        if self._actions is None:
            raise RuntimeError("the bot's Discord side is made in setup_hook")
        return self._actions

    async def setup_hook(self) -> None:
        # 1. The Discord side the extensions and the tracker rely on, owned by the bot.
        self._delivery = DiscordDelivery(self, edit_interval=self.settings.status_edit_interval)
        await self._delivery.load_threads()
        self._actions = VideoActions(self, self._delivery)
        self.tracker.set_events(self._delivery)
        self.add_dynamic_items(RerollButton, DeleteButton)  # buttons on videos posted before
        # 2. The faces.
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self._sync_only:  # python bot.py --sync: register the commands, start nothing
            await self._sync_commands(globally=True)
            return
        # 3. The background work.
        await self.tracker.start()
        self._loop_lag.start()
        if self.settings.http_port:
            await self._start_http()
        await self._sync_commands(globally=False)

    async def _start_http(self) -> None:
        receiver = None
        if self.settings.webhooks_enabled:
            receiver = WebhookReceiver(self.tracker.on_webhook, secret=self.settings.webhook_secret)
        app = make_http_app(receiver, self.health.report, metrics=self.metrics)
        host, port = self.settings.http_host, self.settings.http_port
        self._http = HttpServer(app, host, port)
        try:
            await self._http.start()
        except OSError as exc:
            self._http = None
            raise StartupError(describe_bind_error(exc, host, port)) from None
        log.info("HTTP server (webhooks, /healthz, /metrics) on %s:%d", host, self._http.port)

    async def _sync_commands(self, *, globally: bool) -> None:
        # Syncing counts against a daily limit: only when asked, or to the dev guild.
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d command(s) to dev guild %s", len(synced), guild.id)
        if globally:
            synced = await self.tree.sync()
            log.info("synced %d command(s) globally", len(synced))

    async def _count_jobs(self) -> None:
        counts = await self.store.count_unfinished_by_state()
        self.metrics.set_job_counts({state.value: n for state, n in counts.items()})

    async def on_ready(self) -> None:
        if not self._explained:  # READY comes again after a new session; explain once
            self._explained = True
            await explain_start(self)

    async def close(self) -> None:
        # Background work first, while the session and database are still open (main closes
        # them after the bot): the tracker, then the status edits and reference copies it
        # caused, then the HTTP server.
        await self.tracker.stop()
        if self._delivery is not None:
            await self._delivery.close()
        await self._loop_lag.stop()
        if self._http is not None:
            await self._http.stop()
        self.remove_dynamic_items(RerollButton, DeleteButton)
        await super().close()


class ShardedWanBot(WanBot, commands.AutoShardedBot):
    """The bot on discord.py's ``AutoShardedBot``: ``SHARD_COUNT`` shards in all, this process
    running ``SHARD_IDS``, one gateway session each; the gateway sends each session only its
    shards' servers, so this process handles only their interactions and messages."""

    def _gateway_options(self, settings: Settings) -> dict[str, Any]:
        if settings.shard_count is None or settings.shard_ids is None:
            raise ValueError("a sharded bot needs SHARD_COUNT")
        return {"shard_count": settings.shard_count, "shard_ids": list(settings.shard_ids)}


def make_bot(
    services: Services, *, sync_only: bool = False, identify_turns: IdentifyTurns | None = None
) -> WanBot:
    """The bot for these settings: sharded when SHARD_COUNT is set (``--sync`` needs no gateway,
    so it never is)."""
    settings = services.settings
    if settings.shard_count is None or settings.shard_ids is None or sync_only:
        return WanBot(services, sync_only=sync_only, identify_turns=identify_turns)
    log.info(
        "gateway: %s, IDENTIFY %s",
        describe_shards(settings.shard_ids, settings.shard_count),
        "in turns shared through the database" if identify_turns else "5 s apart",
    )
    return ShardedWanBot(services, identify_turns=identify_turns)


def load_settings() -> Settings:
    # The working directory's .env, like a relative DATABASE_PATH; the environment wins.
    env_file = Path.cwd() / ".env"
    load_dotenv(env_file)
    try:
        return Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"bot: {exc}", file=sys.stderr)
        read = f"read {env_file}" if env_file.is_file() else f"no .env in {env_file.parent}"
        print(f"See README.md, section Configuration, and .env.example ({read}).", file=sys.stderr)
        raise SystemExit(1) from None


def _port_problem(settings: Settings) -> str | None:
    """Whether the HTTP server's port can be bound, asked before anything talks to Discord."""
    if not settings.http_port:
        return None
    host, port = settings.http_host, settings.http_port
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        # With SO_REUSEADDR (create_server sets it, as aiohttp does): TIME_WAIT is not "in use".
        listener = socket.create_server((host, port), family=family)
    except OSError as exc:  # socket.gaierror included: an HTTP_HOST that does not resolve
        return describe_bind_error(exc, host, port)
    listener.close()
    return None


async def _reach_discord(settings: Settings, session: aiohttp.ClientSession) -> None:
    """Who the token belongs to, within a deadline: the failures operators meet first."""
    try:
        identity = await who_am_i(session, settings.discord_api_base, settings.discord_token)
    except Unreachable as exc:
        raise StartupError(
            f"{exc} (DISCORD_API_BASE {settings.discord_api_base}); check the network, DNS and"
            " any firewall or proxy between this machine and Discord"
        ) from None
    except (TokenRefused, DiscordUnavailable) as exc:
        raise StartupError(str(exc)) from None
    log.info("Discord token: bot user %s (id %s)", identity.username, identity.user_id)


async def run(settings: Settings, *, sync_only: bool) -> None:
    path, url = settings.database_path, settings.database_url
    if url is None:
        log.info("database %s (working directory %s)", path.resolve(), Path.cwd())
    else:
        log.info("database: PostgreSQL %s", redact(url))
    problems = (
        None if url is not None else database_problem(path),
        None if sync_only else _port_problem(settings),
    )
    for problem in problems:
        if problem is not None:
            raise StartupError(problem)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await _reach_discord(settings, session)
        await point_discord_at(settings.discord_api_base, settings.discord_token, session=session)
        try:
            store = await stack.enter_async_context(Store.open(settings.database_target))
        except DATABASE_ERRORS as exc:
            reason = (
                describe_database_error(path, exc)
                if url is None
                else describe_postgres_error(url, exc)
            )
            raise StartupError(reason) from None
        services = build_services(settings, store, session)
        # PostgreSQL (several processes): IdentifyTurns(<the store's engine>), so processes
        # take turns to IDENTIFY; None (SQLite, one process) keeps discord.py's spacing.
        identify_turns = IdentifyTurns(store.database.engine) if store.is_postgres else None
        bot = make_bot(services, sync_only=sync_only, identify_turns=identify_turns)
        async with bot:
            if sync_only:
                await bot.login(settings.discord_token)  # setup_hook syncs; no gateway needed
                return
            closing: set[asyncio.Task[None]] = set()  # a strong reference until it is done

            def request_stop() -> None:
                log.info("stop requested; shutting down")
                task = asyncio.create_task(bot.close())
                closing.add(task)
                task.add_done_callback(closing.discard)

            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, request_stop)
            await bot.start(settings.discord_token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="WAN 2.7 Reference-to-Video Discord bot")
    parser.add_argument("--check", action="store_true", help="validate configuration and exit")
    parser.add_argument("--sync", action="store_true", help="sync slash commands, then exit")
    parser.add_argument("--report", action="store_true", help="print spending per server, exit")
    parser.add_argument("--days", type=int, default=7, help="days in --report (default 7)")
    parser.add_argument(
        "--migrate-from-sqlite",
        metavar="PATH",
        type=Path,
        help="copy this SQLite file into the empty PostgreSQL database of DATABASE_URL, exit",
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(
        settings.log_level,
        settings.log_format,
        secrets=(
            settings.discord_token,
            settings.wan_api_key,
            settings.webhook_secret,
            settings.database_password,
        ),
    )
    if args.check:
        return asyncio.run(check(settings))
    if args.report:
        return report_main(settings, args.days)
    if args.migrate_from_sqlite is not None:
        return migrate_from_sqlite(settings, args.migrate_from_sqlite)
    for warning in config_warnings(settings):
        log.warning("configuration: %s", warning)
    try:
        asyncio.run(run(settings, sync_only=args.sync))
    except (StartupError, DiscordEndpointError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    except discord.LoginFailure:
        log.error("cannot start: %s", TokenRefused(host_of(settings.discord_api_base)))
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error(
            "cannot start: MESSAGE_CONTENT_INTENT is true but the Message Content intent is off"
            " for this bot: turn it on in the developer portal (Bot → Privileged Gateway"
            " Intents) or unset MESSAGE_CONTENT_INTENT"
        )
        return 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = describe_network_error(exc) or type(exc).__name__
        log.error("stopped: a connection to Discord failed and was not retried: %s", reason)
        return 1
    if args.sync:
        log.info("commands synced; members see them within a few minutes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
