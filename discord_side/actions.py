"""What the video features do once Discord's values are read: accept and acknowledge a request,
reuse a job's references, and the Reroll/Delete buttons' handlers.

One :class:`VideoActions` is built by the bot in ``setup_hook`` over its delivery; extensions
(``/video``, replies, "Make a video") and the persistent buttons reach it through
:func:`video_actions` on the bot, typed, never by a cog's name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import discord

from core.errors import UserError
from core.jobs import Job, JobOrigin
from core.references import (
    Attachment,
    BuiltRequest,
    GenerationOptions,
    ReferenceInput,
    build_request,
)
from core.service import Requester
from core.sniffing import Sniffer
from discord_side import presenter
from discord_side.casting import Casting
from discord_side.client import AppClient
from discord_side.delivery import DiscordDelivery, status_channel_id
from discord_side.inputs import (
    check_channel_permissions,
    options_from,
    random_seed,
    reply_file_keys,
    requester_of,
    split_reply_attachments,
    to_core_attachment,
)
from discord_side.limits import CONTENT_MAX, fit_text, length
from discord_side.permissions import is_moderator
from discord_side.reference_copies import Copies, copies_on_message

log = logging.getLogger(__name__)


class VideoActions:
    def __init__(self, bot: AppClient, delivery: DiscordDelivery) -> None:
        self.bot = bot
        self.delivery = delivery
        self.cast = Casting(bot, delivery.keeper)  # saved characters (/character)
        self.sniffer = Sniffer(bot.session)

    async def make(
        self,
        interaction: discord.Interaction,
        who: Requester,
        built: BuiltRequest,
        written_prompt: str,
        reference_copies: Copies,
    ) -> Job:
        """Accept a request made outside /video ("Make a video" on a message) and tell the
        member, as /video does. The interaction must be deferred already."""
        check_channel_permissions(interaction)
        job = await self.bot.service.accept(who, built, reference_copies=reference_copies)
        await self.cast.remember(job, built, written_prompt)
        await self.acknowledge(interaction, job, built)
        return job

    async def acknowledge(
        self, interaction: discord.Interaction, job: Job, built: BuiltRequest
    ) -> None:
        """Tell the member first (interaction webhook), then post the public status message.

        The status message goes through the channel, whose rate limit is far stricter: under a
        burst of requests in one channel the member still hears at once that the job is in.
        """
        text = presenter.accepted_text(job, built.warnings, built.label_map())
        answer = await interaction.followup.send(text, ephemeral=True, wait=True)
        try:
            job = await self.delivery.ensure_status_message(job)
        except discord.HTTPException as exc:
            # Accepted and charged whatever Discord says now; the job's next change posts it.
            log.warning("job %s: no status message yet (HTTP %s)", job.id, exc.status)
            return
        if job.status_message_id is None:
            return
        where = f"{job.guild_id}/{status_channel_id(job)}/{job.status_message_id}"
        link = f"https://discord.com/channels/{where}"
        try:
            suffix = f"\n\nStatus: {link}"
            content = fit_text(text, CONTENT_MAX - length(suffix)) + suffix
            await answer.edit(content=content)
        except discord.HTTPException as exc:
            log.info("job %s: could not add the status link (HTTP %s)", job.id, exc.status)

    async def reuse(
        self,
        old: Job,
        prompt: str,
        options: GenerationOptions,
        reply: discord.Message | None = None,
        problems: Sequence[str] = (),
    ) -> tuple[BuiltRequest, Copies]:
        """A request from ``old``'s references (live links) or from a reply's new files.

        Also returns where lasting copies of the files are, for the new job to remember.
        ``problems`` found already (a reply's flags) are reported with the request's own.
        """
        tags = await self.cast.still_saved(old)  # its saved characters, unless deleted since
        if reply is not None and reply.attachments:
            # New characters: the old start frame would not match them, so it is dropped.
            references, stray = split_reply_attachments(reply.attachments)
            copies = copies_on_message(reply, reply_file_keys(reply.attachments))
            files = [to_core_attachment(attachment) for attachment in reply.attachments]
            contents = await self.sniffer.sniff_all(files)
            cast = await self.cast.again(old, tags, references, prompt)  # saved ones stay
            built = build_request(
                cast.prompt or prompt,
                cast.references,
                options,
                stray_voices=stray,
                problems=[*problems, *cast.problems],
                contents=contents,
            )
            return built, copies | cast.copies
        fresh = await self.delivery.keeper.fresh_urls(old)
        references = [
            ReferenceInput(
                slot=ref.slot,
                media=replace(ref.media, url=fresh[f"ref:{ref.slot}"]),
                voice=replace(ref.voice, url=fresh[f"voice:{ref.slot}"]) if ref.voice else None,
                character=tags.of(ref),
            )
            for ref in old.references
        ]
        start_image = None
        if "start" in fresh:
            name = PurePosixPath(urlsplit(fresh["start"]).path).name or "start-image.png"
            start_image = Attachment(url=fresh["start"], filename=name, content_type=None, size=0)
        built = build_request(prompt, references, options, start_image, problems=problems)
        return built, old.reference_copies

    async def reroll(self, interaction: discord.Interaction, job_id: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester_of(interaction)
        old = await self._job_here(job_id, who.guild_id)
        options = options_from(old.request, random_seed())
        built, copies = await self.reuse(old, old.request.prompt, options)
        job = await self.bot.service.accept(
            who,
            built,
            origin=JobOrigin.REROLL,
            parent_job_id=old.id,
            thread_id=old.thread_id,
            reference_copies=copies,
        )
        await self.acknowledge(interaction, job, built)

    async def delete(self, interaction: discord.Interaction, job_id: str) -> None:
        who = requester_of(interaction)
        job = await self._job_here(job_id, who.guild_id)
        member = interaction.user
        allowed = job.user_id == member.id or (
            isinstance(member, discord.Member) and await is_moderator(self.bot, member)
        )
        if not allowed:
            raise UserError(
                "Only the person who asked for this video, or a moderator, can delete it."
            )
        if interaction.message is not None:
            try:
                await interaction.message.delete()
            except discord.NotFound:
                # A second click, or two people at once: what is gone is deleted.
                await interaction.response.send_message("🗑️ Already deleted.", ephemeral=True)
                return
        await interaction.response.send_message("🗑️ Deleted.", ephemeral=True)

    async def _job_here(self, job_id: str, guild_id: int) -> Job:
        job = await self.bot.store.get_job(job_id)
        if job is None or job.guild_id != guild_id:
            raise UserError("That video's job no longer exists.")
        return job


@runtime_checkable
class HasVideoActions(Protocol):
    @property
    def actions(self) -> VideoActions: ...


def video_actions(bot: object) -> VideoActions:
    """The bot's video actions (built in its ``setup_hook``), typed."""
    if not isinstance(bot, HasVideoActions):
        raise TypeError(f"{type(bot).__name__} has no video actions")
    return bot.actions
