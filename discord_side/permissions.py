"""Who the invoking member is, who counts as a moderator, and the run-time moderator check.

``default_permissions`` on ``/admin`` only *hides* the commands by default: a server's owner can
let anyone use them (Server Settings → Integrations). So each moderator command checks again when
it runs: the member needs Manage Server, or the server's moderator role (``/admin defaults``).
:func:`check_moderator` is that check: the admin cog runs it from its ``interaction_check`` (for
every command of the cog); a single command elsewhere carries :func:`moderator_only`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

import discord
from discord import app_commands

from core.config import Settings
from core.service import VideoService
from core.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

NOT_MODERATOR_MESSAGE = (
    "Only moderators can use this: it needs the Manage Server permission"
    " or this server's moderator role."
)


@runtime_checkable
class BotServices(Protocol):
    """What the cogs need from the bot (``bot.WanBot`` provides it).

    A protocol, so cogs (and their tests) don't import ``bot.py`` and its start-up machinery.
    Read-only properties so that plain attributes satisfy it.
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def service(self) -> VideoService: ...


def services(client: object) -> BotServices:
    """The bot's services, from ``interaction.client`` or the bot given to ``setup``."""
    if not isinstance(client, BotServices):
        raise TypeError(f"{type(client).__name__} lacks the bot's settings, store and service")
    return client


class NotModerator(app_commands.CheckFailure):
    """The member may see the command (integration settings) but is not a moderator."""

    def __init__(self, message: str = NOT_MODERATOR_MESSAGE) -> None:
        super().__init__(message)


def has_manage_server(member: discord.Member) -> bool:
    """Manage Server (or Administrator, or ownership), as Discord resolved it when possible."""
    # An interaction's member carries the permissions Discord computed; a cached member's
    # guild_permissions are computed from the role cache (owner and Administrator included).
    permissions = member.resolved_permissions
    if permissions is None:
        permissions = member.guild_permissions
    return permissions.manage_guild or permissions.administrator


async def is_moderator(bot: BotServices, member: discord.Member) -> bool:
    """Manage Server, or the server's moderator role from its settings (read fresh each time)."""
    if has_manage_server(member):
        return True
    role_id = (await bot.store.guild_settings(member.guild.id)).moderator_role_id
    return role_id is not None and any(role.id == role_id for role in member.roles)


async def check_moderator(interaction: discord.Interaction) -> bool:
    """True for a moderator; otherwise raises :class:`NotModerator` (or ``NoPrivateMessage``),
    which the tree's error policy shows to the member ephemerally."""
    member = interaction.user
    if interaction.guild_id is None or not isinstance(member, discord.Member):
        raise app_commands.NoPrivateMessage("This command only works in a server.")
    if not await is_moderator(services(interaction.client), member):
        log.info(
            "refused %s to non-moderator %s in guild %s",
            interaction.command.qualified_name if interaction.command else "a command",
            member.id,
            interaction.guild_id,
        )
        raise NotModerator()
    return True


def moderator_only() -> Callable[[T], T]:
    """``@moderator_only()`` on an app command: refuse anyone who is not a moderator.

    Raises :class:`NotModerator` (a ``CheckFailure``), which the tree's error policy shows to
    the member ephemerally.
    """
    return app_commands.check(check_moderator)
