"""``/admin``: the moderators' tools, a thin face over :mod:`core.moderation`.

``_cog`` has the commands and the moderator check, ``_options`` their ranges and choices,
``_render`` the answers' embeds and lines.
"""

from __future__ import annotations

from discord.ext import commands

from cogs.admin._cog import AdminCog
from discord_side.permissions import services

__all__ = ["AdminCog", "setup"]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(services(bot)))
