"""``/video`` and replies in a video thread (python-discord/bot's ``exts/<area>/`` style).

``_command`` has ``/video``, ``_replies`` the replies in a video's thread. Both are faces over
the bot's :class:`discord_side.actions.VideoActions`, which the Reroll/Delete buttons
(:mod:`discord_side.views`, registered by the bot) call too.
"""

from __future__ import annotations

from discord.ext import commands

from cogs.video._command import VideoCommand
from cogs.video._replies import VideoReplies
from discord_side.actions import video_actions
from discord_side.client import app_client

__all__ = ["VideoCommand", "VideoReplies", "setup"]


async def setup(bot: commands.Bot) -> None:
    client, actions = app_client(bot), video_actions(bot)
    await bot.add_cog(VideoCommand(client, actions))
    await bot.add_cog(VideoReplies(client, actions))
