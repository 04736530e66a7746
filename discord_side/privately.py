"""Answering a member's message in private, when there is no interaction to answer ephemerally.

A reply in a video thread is a plain message: whatever the bot answers there is public. A refusal
(a ban and its reason, a pause, a channel rule, the quota) or a mistake in the reply is the
member's business only, so it goes by DM. When the member's DMs are closed, a short public note
says only that the bot could not make the video, never why.
"""

from __future__ import annotations

import logging
from typing import Final

import discord

from discord_side.presenter import shorten

log = logging.getLogger(__name__)

NO_DM_NOTE: Final = (
    "I can't make a video from this message, and I couldn't tell you why in a DM."
    " Allow direct messages from this server's members, or use `/video` (only you see its"
    " answers)."
)


async def tell_privately(message: discord.Message, text: str) -> None:
    """Tell the author of ``message`` ``text`` by DM; else a public note with no reason."""
    try:
        await message.author.send(
            shorten(f"About your message {message.jump_url}:\n{text}", 2000),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        return
    except discord.HTTPException as exc:
        log.info("could not DM user %s (%s %s)", message.author.id, exc.status, exc.code)
    try:
        await message.reply(
            NO_DM_NOTE, mention_author=True, allowed_mentions=discord.AllowedMentions(users=False)
        )
    except discord.HTTPException as exc:
        log.warning("could not answer a message in channel %s (%s)", message.channel.id, exc.status)
