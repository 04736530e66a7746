"""Apps → "Make a video" on any message with images or videos: a modal, then as ``/video``.

The message's files become the references in their order (images and videos ref 1, 2, …; audio
files the voices of those refs, in order); the modal asks for the prompt and, optionally, saved
characters, the duration and the aspect ratio. Then everything goes as for ``/video``: the same
checks, messages, quota and thread.

The modal's custom id names the message (``wan:make:<channel>:<message>``) and its answer is
handled from the interaction itself (``on_interaction``), not from the modal object in memory:
a modal opened before a restart still works when it is sent after.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

import discord
from discord import app_commands
from discord.ext import commands

from core.errors import UserError
from core.references import GenerationOptions, build_request, duration_problem, is_audio
from core.request import ASPECT_RATIOS, DEFAULT_DURATION, DURATION_MAX, DURATION_MIN
from discord_side.actions import VideoActions, video_actions
from discord_side.client import AppClient, app_client
from discord_side.errors import report_error
from discord_side.inputs import (
    random_seed,
    reply_file_keys,
    requester_of,
    split_reply_attachments,
    to_core_attachment,
)
from discord_side.reference_copies import copies_on_message

log = logging.getLogger(__name__)

MENU_NAME: Final = "Make a video"
MODAL_ID: Final = re.compile(r"wan:make:(?P<channel>[0-9]{1,20}):(?P<message>[0-9]{1,20})")
PROMPT_MAX_CHARS: Final = 4000  # a modal's text input holds at most 4000 characters
NO_MEDIA: Final = (
    "That message has no images or videos to make a video from. Use it on a message with"
    " pictures (JPEG/PNG/BMP/WEBP) or clips (MP4/MOV) of your characters, or use `/video`."
)


def make_video_modal(channel_id: int, message_id: int) -> discord.ui.Modal:
    modal = discord.ui.Modal(
        title=MENU_NAME, custom_id=f"wan:make:{channel_id}:{message_id}", timeout=900
    )
    modal.add_item(
        discord.ui.TextInput(
            label="Prompt",
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            placeholder="Image 1 and Image 2 dance in the rain (the message's files, in order)",
            max_length=PROMPT_MAX_CHARS,
        )
    )
    modal.add_item(
        discord.ui.TextInput(
            label="Saved characters (optional)",
            custom_id="characters",
            placeholder="fox, cat (then write {fox} and {cat} in the prompt)",
            required=False,
            max_length=200,
        )
    )
    modal.add_item(
        discord.ui.TextInput(
            label=f"Duration in seconds ({DURATION_MIN}-{DURATION_MAX}, optional)",
            custom_id="duration",
            placeholder=str(DEFAULT_DURATION),
            required=False,
            max_length=8,
        )
    )
    modal.add_item(
        discord.ui.TextInput(
            label="Aspect ratio (optional)",
            custom_id="aspect_ratio",
            placeholder=", ".join(ASPECT_RATIOS),
            required=False,
            max_length=16,
        )
    )
    return modal


def submitted_values(data: Mapping[str, Any]) -> dict[str, str]:
    """Text input values by custom id, from a modal submit's components (rows or labels)."""

    def walk(components: Any) -> Iterator[Mapping[str, Any]]:
        for component in components or ():
            if not isinstance(component, Mapping):
                continue
            yield component
            yield from walk(component.get("components"))
            if isinstance(component.get("component"), Mapping):
                yield from walk([component["component"]])

    return {
        str(c["custom_id"]): str(c.get("value") or "")
        for c in walk(data.get("components"))
        if c.get("type") == 4 and "custom_id" in c
    }


def read_duration(raw: str) -> tuple[int, list[str]]:
    """The modal's duration (empty: the default) and what is wrong with it."""
    text = raw.strip().lower().removesuffix("s").strip()
    if not text:
        return DEFAULT_DURATION, []
    if not text.isdigit():
        return DEFAULT_DURATION, [
            f"duration {raw.strip()!r} is not a number: use a whole number of seconds from"
            f" {DURATION_MIN} to {DURATION_MAX}"
        ]
    problem = duration_problem(int(text))
    return int(text), [problem] if problem else []


class MakeVideoCog(commands.Cog, name="MakeVideo"):
    def __init__(self, bot: AppClient, actions: VideoActions) -> None:
        self.bot = bot
        self.actions = actions
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.open_modal)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.guild_only()
    async def open_modal(self, interaction: discord.Interaction, message: discord.Message) -> None:
        # A modal must be the first answer (no defer first): only quick checks before it.
        if not any(not is_audio(to_core_attachment(a)) for a in message.attachments):
            await interaction.response.send_message(NO_MEDIA, ephemeral=True)
            return
        await interaction.response.send_modal(make_video_modal(message.channel.id, message.id))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Mapping[str, Any] = interaction.data or {}
        found = MODAL_ID.fullmatch(str(data.get("custom_id", "")))
        if found is None:
            return
        try:
            await self.submit(interaction, int(found["channel"]), int(found["message"]), data)
        except Exception as exc:
            await report_error(interaction, exc)

    async def submit(
        self,
        interaction: discord.Interaction,
        channel_id: int,
        message_id: int,
        data: Mapping[str, Any],
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester_of(interaction)
        values = submitted_values(data)
        message = await self._message(channel_id, message_id)
        references, stray = split_reply_attachments(message.attachments)
        # What the message's files really are, from their first bytes, as for /video.
        files = [to_core_attachment(attachment) for attachment in message.attachments]
        contents = await self.actions.sniffer.sniff_all(files)
        duration, problems = read_duration(values.get("duration", ""))
        cast = await self.actions.cast.cast(who, values.get("characters"), references)
        options = GenerationOptions(
            aspect_ratio=values.get("aspect_ratio") or None,
            duration=duration,
            seed=random_seed(),
        )
        prompt = values.get("prompt", "")
        built = build_request(
            prompt,
            cast.references,
            options,
            stray_voices=stray,
            problems=[*problems, *cast.problems],
            contents=contents,
        )
        # The message's files stay on it: that message is their lasting copy.
        copies = copies_on_message(message, reply_file_keys(message.attachments)) | cast.copies
        await self.actions.make(interaction, who, built, prompt, copies)

    async def _message(self, channel_id: int, message_id: int) -> discord.Message:
        """The message, fetched now: its links are fresh, and it may have changed."""
        try:
            channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise UserError("I can't read messages there.")
            message = await channel.fetch_message(message_id)
        except discord.NotFound:
            raise UserError("That message is gone: nothing to make a video from.") from None
        except discord.Forbidden:
            raise UserError(
                "I can't read that message (I need Read Message History there). Nothing was"
                " charged."
            ) from None
        if not any(not is_audio(to_core_attachment(a)) for a in message.attachments):
            raise UserError(NO_MEDIA)
        return message


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(MakeVideoCog(app_client(bot), video_actions(bot)))
