"""What the Discord side and the cogs need from the bot, as a protocol (``bot.WanBot`` is one).

Nothing under ``discord_side/`` or ``cogs/`` imports ``bot.py`` (CI enforces it): they are typed
against :class:`AppClient`, the engine's services plus the few discord.py client calls they
make, and extensions get it from the bot they are given with :func:`app_client`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol, runtime_checkable

import aiohttp
import discord
from discord import app_commands
from discord.abc import GuildChannel, PrivateChannel, Snowflake
from discord.http import HTTPClient

from core.config import Settings
from core.metrics import Metrics
from core.service import VideoService
from core.store import Store
from core.tracker import Tracker


@runtime_checkable
class AppClient(Protocol):
    """The bot: the engine's services (read-only) and discord.py's client."""

    @property
    def settings(self) -> Settings: ...
    @property
    def store(self) -> Store: ...
    @property
    def service(self) -> VideoService: ...
    @property
    def session(self) -> aiohttp.ClientSession: ...
    @property
    def tracker(self) -> Tracker: ...
    @property
    def metrics(self) -> Metrics: ...

    # discord.py's client, as much of it as the Discord side uses
    @property
    def user(self) -> discord.ClientUser | None: ...
    @property
    def application_id(self) -> int | None: ...
    @property
    def guilds(self) -> Sequence[discord.Guild]: ...
    @property
    def latency(self) -> float: ...
    @property
    def http(self) -> HTTPClient: ...
    @property
    def ws(self) -> Any: ...
    @property
    def tree(self) -> app_commands.CommandTree[Any]: ...
    def get_channel(self, id: int, /) -> GuildChannel | discord.Thread | PrivateChannel | None: ...
    async def fetch_channel(
        self, channel_id: int, /
    ) -> GuildChannel | PrivateChannel | discord.Thread: ...
    async def create_dm(self, user: Snowflake) -> discord.DMChannel: ...
    async def wait_until_ready(self) -> None: ...
    def is_closed(self) -> bool: ...
    def is_ready(self) -> bool: ...
    def add_listener(
        self, func: Callable[..., Coroutine[Any, Any, Any]], /, name: str = ...
    ) -> None: ...


def app_client(bot: object) -> AppClient:
    """The bot given to an extension's ``setup``, typed; a bot without the services is refused."""
    if not isinstance(bot, AppClient):
        raise TypeError(f"{type(bot).__name__} lacks the bot's services (settings, store, ...)")
    return bot
