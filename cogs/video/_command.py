"""``/video``, replies in a video thread, and the Reroll/Delete buttons.

A thin face: Discord values become core values (``to_core_attachment``, ``requester_of``), core
does the work (build + validate, accept = rules + quota + persist + track), and the results
become messages (``discord_side.presenter``). Status messages and delivery live in
``discord_side.delivery``.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from core.errors import UserError
from core.jobs import Job, JobOrigin
from core.references import (
    Attachment,
    BuiltRequest,
    GenerationOptions,
    ReferenceInput,
    build_request,
    is_audio,
    pair_slots,
)
from core.reply_flags import read_reply
from core.request import ASPECT_RATIOS, RESOLUTIONS, SEED_MAX, GenerationRequest
from core.service import Requester
from core.sniffing import Sniffer
from core.text import has_visible
from discord_side import presenter
from discord_side.casting import Casting, complete_characters
from discord_side.delivery import DiscordDelivery, status_channel_id
from discord_side.errors import describe_error
from discord_side.limits import CONTENT_MAX, fit_content, fit_text, length
from discord_side.mentions import without_bot_mentions, without_mentions
from discord_side.permissions import is_moderator, role_ids
from discord_side.privately import tell_privately
from discord_side.reference_copies import Copies, copies_on_message
from discord_side.thread_hints import ThreadHints
from discord_side.views import DeleteButton, RerollButton

if TYPE_CHECKING:
    from bot import WanBot

log = logging.getLogger(__name__)


def to_core_attachment(attachment: discord.Attachment) -> Attachment:
    return Attachment(
        url=attachment.url,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
    )


def requester_of(source: discord.Interaction | discord.Message) -> Requester:
    user = source.user if isinstance(source, discord.Interaction) else source.author
    channel = source.channel
    if source.guild is None or channel is None:
        raise UserError("Videos can only be made in a server.")
    parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
    nsfw_source = channel.parent if isinstance(channel, discord.Thread) else channel
    return Requester(
        guild_id=source.guild.id,
        channel_id=channel.id,
        user_id=user.id,
        role_ids=role_ids(user),
        parent_channel_id=parent_id,
        channel_is_nsfw=bool(getattr(nsfw_source, "nsfw", False)),
        display_name=getattr(user, "display_name", None),
    )


def reply_requester(message: discord.Message, old: Job) -> Requester:
    """Who replies in ``old``'s thread, and where: the thread's channel is the store's word.

    discord.py may not know the thread (archived, or never announced), and the channel's rules
    must hold in its threads all the same.
    """
    who = requester_of(message)
    parent = message.guild.get_channel(old.channel_id) if message.guild else None
    return replace(
        who,
        parent_channel_id=old.channel_id,
        channel_is_nsfw=bool(getattr(parent, "nsfw", False)),
    )


def random_seed() -> int:
    return random.randint(0, SEED_MAX)


# What the bot asks for when invited (the README's permissions integer is this value).
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)


def missing_permissions(permissions: discord.Permissions, in_thread: bool) -> list[str]:
    """What the bot needs in a channel to run a job there, that it lacks."""
    needed = {
        "Send Messages in Threads" if in_thread else "Send Messages": (
            permissions.send_messages_in_threads if in_thread else permissions.send_messages
        ),
        "Embed Links": permissions.embed_links,
        "Attach Files": permissions.attach_files,
    }
    return [name for name, present in needed.items() if not present]


def options_from(request: GenerationRequest, seed: int | None) -> GenerationOptions:
    return GenerationOptions(
        negative_prompt=request.negative_prompt,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
        duration=request.duration,
        seed=seed,
        prompt_extend=request.prompt_extend,
    )


def reply_file_keys(attachments: Sequence[discord.Attachment]) -> list[str]:
    """What each file of a reply becomes: ``ref:N`` (images/videos) or ``voice:N`` (audio)."""
    counts = {"ref": 0, "voice": 0}
    keys = []
    for attachment in attachments:
        kind = "voice" if is_audio(to_core_attachment(attachment)) else "ref"
        counts[kind] += 1
        keys.append(f"{kind}:{counts[kind]}")
    return keys


def split_reply_attachments(
    attachments: Sequence[discord.Attachment],
) -> tuple[list[ReferenceInput], dict[int, Attachment]]:
    """New files on a reply: images/videos become refs 1…n, audio files their voices in order."""
    media: dict[int, Attachment] = {}
    voices: dict[int, Attachment] = {}
    for key, attachment in zip(reply_file_keys(attachments), attachments, strict=True):
        kind, slot = key.split(":")
        (voices if kind == "voice" else media)[int(slot)] = to_core_attachment(attachment)
    return pair_slots(media, voices)


class VideoCog(commands.Cog, name="Video"):
    def __init__(self, bot: WanBot) -> None:
        self.bot = bot
        self.delivery = DiscordDelivery(bot, edit_interval=bot.settings.status_edit_interval)
        self.cast = Casting(bot, self.delivery.keeper)  # saved characters (/character)
        self.hints = ThreadHints(bot)
        self.sniffer = Sniffer(bot.session)

    async def cog_load(self) -> None:
        await self.delivery.load_threads()
        self.bot.tracker.set_events(self.delivery)
        self.bot.add_dynamic_items(RerollButton, DeleteButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(RerollButton, DeleteButton)
        await self.delivery.close()

    # ----------------------------------------------------------------- /video

    @app_commands.command(
        name="video", description="Make a short AI video starring your characters"
    )
    @app_commands.guild_only()
    @app_commands.describe(
        prompt='The scene. Name references as "Image 1", "Video 1"… (numbered within each kind)',
        ref1="Character reference 1: an image (JPEG/PNG/BMP/WEBP) or a video (MP4/MOV)",
        ref2="Character reference 2. Images count Image 1, 2…; videos Video 1, 2…, in this order",
        ref3="Character reference 3 (image or video)",
        ref4="Character reference 4 (image or video)",
        ref5="Character reference 5 (image or video)",
        voice1="Voice clip for reference 1 (MP3/WAV/M4A/OGG)",
        voice2="Voice clip for reference 2",
        voice3="Voice clip for reference 3",
        voice4="Voice clip for reference 4",
        voice5="Voice clip for reference 5",
        start_image="First frame of the video (sets the aspect ratio)",
        negative_prompt="What to avoid, e.g. blurry, watermark, text (max 500 characters)",
        aspect_ratio="Shape of the video (ignored with a start image)",
        resolution="720P or 1080P (default 1080P)",
        duration="Length in seconds, 2-10 (default 5)",
        seed="Seed for reproducible results (random when empty)",
        prompt_extend="Let the model enrich your prompt (default on)",
        characters="Saved characters, comma-separated (see /character); {name} in the prompt",
    )
    @app_commands.choices(
        aspect_ratio=[Choice(name=ratio, value=ratio) for ratio in ASPECT_RATIOS],
        resolution=[Choice(name=resolution, value=resolution) for resolution in RESOLUTIONS],
    )
    @app_commands.autocomplete(characters=complete_characters)
    async def video(
        self,
        interaction: discord.Interaction,
        prompt: str,
        characters: str | None = None,
        ref1: discord.Attachment | None = None,
        ref2: discord.Attachment | None = None,
        ref3: discord.Attachment | None = None,
        ref4: discord.Attachment | None = None,
        ref5: discord.Attachment | None = None,
        voice1: discord.Attachment | None = None,
        voice2: discord.Attachment | None = None,
        voice3: discord.Attachment | None = None,
        voice4: discord.Attachment | None = None,
        voice5: discord.Attachment | None = None,
        start_image: discord.Attachment | None = None,
        negative_prompt: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str = "1080P",
        duration: Range[int, 2, 10] = 5,
        seed: Range[int, 0, SEED_MAX] | None = None,
        prompt_extend: bool = True,
    ) -> None:
        # Acknowledge first: everything after may take longer than Discord's 3 seconds.
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester_of(interaction)
        self._check_channel_permissions(interaction)
        media = {
            slot: to_core_attachment(att)
            for slot, att in enumerate((ref1, ref2, ref3, ref4, ref5), start=1)
            if att is not None
        }
        voices = {
            slot: to_core_attachment(att)
            for slot, att in enumerate((voice1, voice2, voice3, voice4, voice5), start=1)
            if att is not None
        }
        references, stray_voices = pair_slots(media, voices)
        start = to_core_attachment(start_image) if start_image else None
        files = [*media.values(), *voices.values(), *([start] if start else [])]
        # What each file really is, from its first bytes (all at once), before anything is spent.
        contents = await self.sniffer.sniff_all(files)
        cast = await self.cast.cast(who, characters, references)  # saved characters join them
        options = GenerationOptions(
            negative_prompt=negative_prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            duration=duration,
            seed=seed if seed is not None else random_seed(),
            prompt_extend=prompt_extend,
        )
        built = build_request(
            prompt,
            cast.references,
            options,
            start_image=start,
            stray_voices=stray_voices,
            problems=cast.problems,
            contents=contents,
        )
        job = await self.bot.service.accept(who, built, reference_copies=cast.copies)
        await self.cast.remember(job, built, prompt)
        await self._acknowledge(interaction, job, built)

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
        self._check_channel_permissions(interaction)
        job = await self.bot.service.accept(who, built, reference_copies=reference_copies)
        await self.cast.remember(job, built, written_prompt)
        await self._acknowledge(interaction, job, built)
        return job

    def _check_channel_permissions(self, interaction: discord.Interaction) -> None:
        in_thread = isinstance(interaction.channel, discord.Thread)
        missing = missing_permissions(interaction.app_permissions, in_thread)
        if missing:
            raise UserError(
                "I can't post videos in this channel: I need " + ", ".join(missing) + "."
                " Ask a moderator, or try another channel. Nothing was charged."
            )

    async def _acknowledge(
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

    # ----------------------------------------------------------------- reuse

    async def _reuse(
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
        built, copies = await self._reuse(old, old.request.prompt, options)
        job = await self.bot.service.accept(
            who,
            built,
            origin=JobOrigin.REROLL,
            parent_job_id=old.id,
            thread_id=old.thread_id,
            reference_copies=copies,
        )
        await self._acknowledge(interaction, job, built)

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

    # ----------------------------------------------------------------- replies in a thread

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None:
            return
        # One of our threads? The store's answer, kept in memory: no query for other channels.
        if message.channel.id not in self.delivery.threads:
            return
        me = self.bot.user
        mentioned = me is not None and any(user.id == me.id for user in message.mentions)
        # Without the Message Content intent only messages that mention the bot carry text.
        if not (mentioned or self.bot.settings.message_content_intent):
            await self.hints.offer(message)  # once per video thread: how to ask for a video
            return
        old = await self.bot.store.latest_job_in_thread(message.channel.id)
        if old is None:
            return
        try:
            job, built = await self._reply(message, old)
        except Exception as exc:
            text, unexpected = describe_error(exc)
            if unexpected:
                error_id = secrets.token_hex(4)
                log.error("unexpected error %s handling a reply", error_id, exc_info=exc)
                text = f"Something went wrong on our side (error `{error_id}`). Please try again."
            await tell_privately(message, text)  # refusals may carry a moderator's reason
            return
        reply = presenter.accepted_text(job, built.warnings, built.label_map())
        await self._answer(message, reply)

    async def _reply(self, message: discord.Message, old: Job) -> tuple[Job, BuiltRequest]:
        who = reply_requester(message, old)
        await self.bot.service.check_allowed(who)  # refuse banned members before any work
        bot_id = self.bot.user.id if self.bot.user else None
        # Flags first, then names for mentions: a display name is never read as a flag. Flag
        # problems are reported together with the files' and labels' (all at once).
        parsed, flag_problems = read_reply(without_bot_mentions(message.content, bot_id), bot_id)
        overrides = parsed.overrides
        if overrides.negative_prompt:
            negative = without_mentions(overrides.negative_prompt, message, bot_id)
            overrides = replace(overrides, negative_prompt=negative)
        prompt = without_mentions(parsed.prompt, message, bot_id)
        # Nothing visible (only zero-width characters, say) is no new prompt.
        prompt = prompt if has_visible(prompt) else old.request.prompt
        # A reply asks for a new video: a fresh seed unless the reply names one.
        seed = overrides.seed if overrides.seed is not None else random_seed()
        options = replace(overrides.apply(options_from(old.request, None)), seed=seed)
        built, copies = await self._reuse(old, prompt, options, message, flag_problems)
        job = await self.bot.service.accept(
            who,
            built,
            origin=JobOrigin.REPLY,
            parent_job_id=old.id,
            thread_id=message.channel.id,
            reference_copies=copies,
        )
        await self.cast.remember(job, built, prompt)
        return job, built

    @staticmethod
    async def _answer(message: discord.Message, text: str) -> None:
        try:
            await message.reply(
                fit_content(text),
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.warning(
                "could not answer a reply in thread %s (%s)", message.channel.id, exc.status
            )


async def setup(bot: WanBot) -> None:
    await bot.add_cog(VideoCog(bot))
