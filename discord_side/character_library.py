"""Where saved characters' files live: one public thread per server, "🎭 Character library".

Files attached to a slash command are ephemeral on Discord (dropped after a while), so a saved
character's file is re-posted once on a regular message the bot owns, in the server's library
thread, with the same mechanism that keeps a video's references
(:class:`discord_side.reference_copies.ReferenceKeeper`). Reading that message back gives fresh
links, months later. A thread rather than a DM: DMs can be closed by the member, other members need
server characters too, and a thread keeps the channel itself quiet. The thread is made, the
first time, beside the channel where a character is saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

import discord

from core.characters import braced
from core.errors import UserError
from core.media import largest_upload
from core.references import Attachment
from core.store import Character, Files
from discord_side.client import AppClient
from discord_side.reference_copies import FileToKeep, ReferenceKeeper

log = logging.getLogger(__name__)

LIBRARY_NAME = "🎭 Character library"
LIBRARY_INTRO = (
    "🎭 This thread keeps the files of this server's saved characters (`/character`), so"
    " videos can use them by name, for as long as they are saved. Deleting a message here"
    " breaks its character: use `/character delete` instead."
)
ARCHIVE_MINUTES: Final = 10080  # a week; posting in an archived thread opens it again


def caption(name: str, owner_id: int, scope: str) -> str:
    """The text on a character's message in the library thread (no one is pinged by it)."""
    whose = "their own videos" if scope == "me" else "everyone in this server"
    return f"🎭 {braced(name)} · saved by <@{owner_id}> for {whose}"


class LibraryUnavailable(UserError):
    """The bot can't keep files here (permissions, channel type)."""


class CharacterLibrary:
    def __init__(self, bot: AppClient, keeper: ReferenceKeeper) -> None:
        self.bot = bot
        self.keeper = keeper
        self._locks: dict[int, asyncio.Lock] = {}  # per server: one library thread, not two

    async def thread(self, channel: discord.abc.GuildChannel | discord.Thread) -> discord.Thread:
        """The server's library thread; made beside ``channel`` the first time."""
        guild = channel.guild
        async with self._locks.setdefault(guild.id, asyncio.Lock()):
            known = await self.bot.store.library_channel(guild.id)
            if known is not None:
                found = await self._existing(known)
                if found is not None:
                    return found
                log.warning("guild %s: the character library thread %s is gone", guild.id, known)
            parent = channel.parent if isinstance(channel, discord.Thread) else channel
            if not isinstance(parent, discord.TextChannel):
                raise LibraryUnavailable(
                    "I keep saved characters in a thread, and can't start one here: save it"
                    " from a text channel."
                )
            me = guild.me
            if me is not None:
                allowed = parent.permissions_for(me)
                needed = {
                    "Create Public Threads": allowed.create_public_threads,
                    "Send Messages in Threads": allowed.send_messages_in_threads,
                    "Attach Files": allowed.attach_files,
                }
                missing = [name for name, present in needed.items() if not present]
                if missing:
                    raise LibraryUnavailable(
                        f"I keep saved characters in a thread, and in {parent.mention} I need "
                        + ", ".join(missing)
                        + ". Ask a moderator, or save it from another channel."
                    )
            made = await parent.create_thread(
                name=LIBRARY_NAME,
                type=discord.ChannelType.public_thread,
                auto_archive_duration=ARCHIVE_MINUTES,
            )
            await made.send(LIBRARY_INTRO, allowed_mentions=discord.AllowedMentions.none())
            await self.bot.store.set_library_channel(guild.id, made.id, time.time())
            log.info("guild %s: character library thread %s made", guild.id, made.id)
            return made

    async def _existing(self, channel_id: int) -> discord.Thread | None:
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(channel_id)
            except discord.NotFound:
                return None
        return channel if isinstance(channel, discord.Thread) else None

    def fits(self, thread: discord.Thread, size: int) -> bool:
        return size <= largest_upload(thread.guild.filesize_limit)

    async def keep(
        self,
        thread: discord.Thread,
        media: Attachment,
        voice: Attachment | None,
        *,
        caption: str,
        nonce: str,
    ) -> Files:
        """Post the files in the library thread; where each went (``media``, ``voice``)."""
        files = [FileToKeep("media", media.url, media.filename, media.size)]
        if voice is not None:
            files.append(FileToKeep("voice", voice.url, voice.filename, voice.size))
        kept = await self.keeper.repost(
            files,
            thread,
            limit=largest_upload(thread.guild.filesize_limit),
            text=caption,
            nonce=nonce,
            what=f"character in guild {thread.guild.id}",
        )
        if len(kept) != len(files):
            await self.discard(kept)
            raise UserError(
                "I couldn't copy your file from Discord to keep it. Please try again in a moment."
                " Nothing was saved."
            )
        return kept

    async def discard(self, files: Files) -> None:
        """Delete the library messages holding ``files`` (best effort: logged, never raised)."""
        for channel_id, message_id in {(place[0], place[1]) for place in files.values()}:
            with contextlib.suppress(discord.NotFound):
                try:
                    channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(
                        channel_id
                    )
                    if isinstance(channel, discord.Thread | discord.TextChannel):
                        await channel.get_partial_message(message_id).delete()
                except discord.HTTPException as exc:
                    log.warning(
                        "could not delete character file message %s (%s)", message_id, exc.status
                    )

    async def recaption(self, character: Character) -> None:
        """Show the character's current name on its library message (best effort)."""
        channel_id, message_id, _ = character.files["media"]
        try:
            channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)
            if isinstance(channel, discord.Thread | discord.TextChannel):
                await channel.get_partial_message(message_id).edit(
                    content=caption(character.name, character.owner_id, character.scope)
                )
        except discord.HTTPException as exc:
            log.info("could not update character message %s (%s)", message_id, exc.status)

    async def fresh_media_url(self, character: Character) -> str | None:
        """A live link to the character's file (for a thumbnail), or None when it is gone."""
        try:
            fresh = await self.keeper.fresh_links(
                {"media": character.files["media"]}, {"media": character.media.url}
            )
        except UserError:
            return None
        return fresh["media"]
