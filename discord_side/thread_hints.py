"""A one-time hint in a video thread for members who write there without mentioning the bot.

Without the Message Content intent the bot cannot read those messages, and members could wait
for an answer that never comes. The first such message in a video thread gets a short hint;
later ones get nothing. "Once" is remembered in the database (``thread_hints``), so a restart
does not repeat the hint in every busy thread; a set in memory saves the database a write for
each later message.
"""

from __future__ import annotations

import logging
import time

import discord

from discord_side.client import AppClient

log = logging.getLogger(__name__)


def hint_text(bot_mention: str) -> str:
    return (
        f"💡 To make a new video here, mention me: {bot_mention} `now they dance in the rain"
        " --duration 8` (or reply to my video with the ping on). I only read messages that"
        " mention me; see `/help` for the flags."
    )


class ThreadHints:
    def __init__(self, bot: AppClient) -> None:
        self.bot = bot
        self._hinted: set[int] = set()

    async def offer(self, message: discord.Message) -> None:
        """Give ``message``'s thread its hint, if it is a video thread that has had none."""
        thread_id = message.channel.id
        if thread_id in self._hinted or self.bot.user is None:
            return
        if await self.bot.store.latest_job_in_thread(thread_id) is None:
            return  # not a video thread
        self._hinted.add(thread_id)
        if not await self.bot.store.mark_thread_hinted(thread_id, time.time()):
            return  # hinted before a restart
        try:
            await message.reply(
                hint_text(self.bot.user.mention),
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
                silent=True,
            )
        except discord.HTTPException as exc:
            log.info("could not hint in thread %s (%s)", thread_id, exc.status)
