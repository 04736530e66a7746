"""Which servers the bot stays in: the operator's allow-list (``ALLOWED_GUILD_IDS``).

A server not on the list gets every command refused (the tree's check and
``VideoService.check_allowed``); with ``LEAVE_UNLISTED_GUILDS`` (the default) the bot also tells
the server's owner why and leaves it, when it joins one and, at start-up, for servers it had
joined before the list was set.
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from discord_side.permissions import BotServices, services

log = logging.getLogger(__name__)


def owner_notice(guild_name: str) -> str:
    return (
        f"Hello! I was added to **{guild_name}**, but this video bot is only enabled in the"
        " servers its operator chose, so I have left it. Nothing was charged. If you think this"
        " is a mistake, ask the person who runs the bot to add the server."
    )


class GuildsCog(commands.Cog, name="Guilds"):
    def __init__(self, bot: commands.Bot, bot_services: BotServices) -> None:
        self.bot = bot
        self.settings = bot_services.settings
        self._leaving: set[int] = set()  # on_guild_join and on_ready may meet the same server

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._check(guild)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        # READY again after a new session is harmless: servers already left are not listed.
        for guild in list(self.bot.guilds):
            await self._check(guild)

    async def _check(self, guild: discord.Guild) -> None:
        if self.settings.guild_allowed(guild.id) or guild.id in self._leaving:
            return
        if not self.settings.leave_unlisted_guilds:
            log.warning(
                "in server %s (%s), which is not on ALLOWED_GUILD_IDS: its commands are refused"
                " (LEAVE_UNLISTED_GUILDS=false keeps the bot there)",
                guild.id,
                guild.name,
            )
            return
        self._leaving.add(guild.id)
        try:
            await self._tell_owner(guild)
            await guild.leave()
        except discord.HTTPException as exc:
            self._leaving.discard(guild.id)  # try again at the next start or READY
            log.error("could not leave server %s (%s): %s", guild.id, guild.name, exc)
            return
        log.warning("left server %s (%s): not on ALLOWED_GUILD_IDS", guild.id, guild.name)

    async def _tell_owner(self, guild: discord.Guild) -> None:
        owner_id = guild.owner_id
        if owner_id is None:
            return
        try:
            owner = self.bot.get_user(owner_id) or await self.bot.fetch_user(owner_id)
            await owner.send(owner_notice(guild.name))
        except discord.HTTPException as exc:  # DMs closed (50007), unknown user…
            log.info("could not tell the owner of server %s why the bot left: %s", guild.id, exc)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(GuildsCog(bot, services(bot)))
