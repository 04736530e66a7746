"""Start the WAN 2.7 Reference-to-Video Discord bot.

python bot.py            run the bot (configuration from the environment / .env)
python bot.py --sync     also sync slash commands globally (Discord allows ~200 a day)
python bot.py --check    validate configuration, try the token and API key, exit 0/1
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

import aiohttp
import discord
from discord.ext import commands
from dotenv import load_dotenv

from cogs.discord_endpoint import DiscordEndpointError, point_discord_at
from cogs.errors import BotCommandTree
from core.config import ConfigError, Settings
from core.ratelimit import RateLimiter
from core.service import VideoService
from core.store import Store
from core.tracker import Tracker, tracker_config
from core.wan import WanClient, WanError, WanOperatorError
from core.webhooks import HttpServer, WebhookReceiver, make_http_app

log = logging.getLogger("bot")

EXTENSIONS = ("cogs.video", "cogs.account", "cogs.admin")


class WanBot(commands.Bot):
    """The bot: owns nothing it was handed; starts and stops the background work."""

    def __init__(
        self,
        *,
        settings: Settings,
        session: aiohttp.ClientSession,
        store: Store,
        client: WanClient,
        sync_globally: bool = False,
    ) -> None:
        intents = discord.Intents.default()
        # Privileged: without it the bot still sees messages that mention it (see README).
        intents.message_content = settings.message_content_intent
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=BotCommandTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
        )
        self.settings = settings
        self.session = session
        self.store = store
        self.wan = client
        self.tracker = Tracker(
            store,
            client,
            session,
            webhooks=settings.webhooks_enabled,
            config=tracker_config(settings),
        )
        self.service = VideoService(settings, store, self.tracker)
        self._sync_globally = sync_globally
        self._http: HttpServer | None = None

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # Cogs have registered the delivery callback and persistent buttons by now.
        await self.tracker.start()
        if self.settings.http_port:
            receiver = None
            if self.settings.webhooks_enabled:
                receiver = WebhookReceiver(
                    self.tracker.on_webhook, secret=self.settings.webhook_secret
                )
            app = make_http_app(receiver, self._health)
            self._http = HttpServer(app, self.settings.http_host, self.settings.http_port)
            await self._http.start()
            log.info("HTTP server (webhooks, /healthz) on port %d", self._http.port)
        await self._sync_commands()

    async def _sync_commands(self) -> None:
        # Syncing counts against a daily limit: only when asked, or to the dev guild.
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(id=self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d command(s) to dev guild %s", len(synced), guild.id)
        if self._sync_globally:
            synced = await self.tree.sync()
            log.info("synced %d command(s) globally", len(synced))

    def _health(self) -> dict[str, Any]:
        return {"ok": not self.is_closed(), "ready": self.is_ready(), **self.tracker.stats()}

    async def close(self) -> None:
        # Background work first, while the session and database are still open.
        await self.tracker.stop()
        if self._http is not None:
            await self._http.stop()
        await super().close()


def make_client(settings: Settings, session: aiohttp.ClientSession) -> WanClient:
    return WanClient(
        session,
        base_url=settings.wan_api_base,
        api_key=settings.wan_api_key,
        key_header=settings.wan_api_key_header,
        limiter=RateLimiter(settings.api_max_rps, settings.api_burst),
    )


def load_settings() -> Settings:
    load_dotenv()
    try:
        return Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"bot: {exc}", file=sys.stderr)
        print("See README.md, section Configuration, and .env.example.", file=sys.stderr)
        raise SystemExit(1) from None


async def check(settings: Settings) -> int:
    """Validate the configuration, the Discord token and the API key; print a report."""
    print(f"configuration: ok ({settings!r})")  # Settings' repr leaves the secrets out
    async with aiohttp.ClientSession() as session:
        discord_ok = await _check_discord(settings, session)
        wan_ok = await _check_wan(settings, session)
    return 0 if discord_ok and wan_ok else 1


async def _check_discord(settings: Settings, session: aiohttp.ClientSession) -> bool:
    try:
        await point_discord_at(settings.discord_api_base, settings.discord_token, session=session)
    except (DiscordEndpointError, aiohttp.ClientError, TimeoutError) as exc:
        print(f"discord: cannot use {settings.discord_api_base} ({exc})")
        return False
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        user = await http.static_login(settings.discord_token)
    except discord.LoginFailure:
        print("discord token: REFUSED by Discord (improper token)")
        return False
    except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
        print(f"discord token: could not check ({type(exc).__name__})")
        return False
    finally:
        await http.close()
    print(f"discord token: ok (logged in as {user['username']}, id {user['id']})")
    return True


async def _check_wan(settings: Settings, session: aiohttp.ClientSession) -> bool:
    client = make_client(settings, session)
    try:
        tasks = await client.list_tasks()
    except WanOperatorError as exc:
        print(f"WAN API key: REFUSED ({exc})")
        return False
    except WanError as exc:
        print(f"WAN API key: could not check ({exc})")
        return False
    print(f"WAN API key: ok ({len(tasks)} task(s) listed at {settings.wan_api_base})")
    return True


async def run(settings: Settings, *, sync_globally: bool) -> None:
    async with (
        aiohttp.ClientSession() as session,
        Store.open(settings.database_path) as store,
    ):
        await point_discord_at(settings.discord_api_base, settings.discord_token, session=session)
        client = make_client(settings, session)
        async with WanBot(
            settings=settings,
            session=session,
            store=store,
            client=client,
            sync_globally=sync_globally,
        ) as bot:
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
    parser.add_argument("--sync", action="store_true", help="sync slash commands globally")
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if args.check:
        return asyncio.run(check(settings))
    try:
        asyncio.run(run(settings, sync_globally=args.sync))
    except (DiscordEndpointError, discord.LoginFailure, discord.PrivilegedIntentsRequired) as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
