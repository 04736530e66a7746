"""``/video``: a thin face. Discord values become core values (:mod:`discord_side.inputs`), core
does the work (build + validate, accept = rules + quota + persist + track), and the results become
messages (:class:`discord_side.actions.VideoActions`, :mod:`discord_side.presenter`).
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from core.references import GenerationOptions, build_request, pair_slots
from core.request import ASPECT_RATIOS, RESOLUTIONS, SEED_MAX
from discord_side.actions import VideoActions
from discord_side.casting import complete_characters
from discord_side.client import AppClient
from discord_side.inputs import (
    check_channel_permissions,
    random_seed,
    requester_of,
    to_core_attachment,
)


class VideoCommand(commands.Cog, name="Video"):
    def __init__(self, bot: AppClient, actions: VideoActions) -> None:
        self.bot = bot
        self.actions = actions

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
        check_channel_permissions(interaction)
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
        contents = await self.actions.sniffer.sniff_all(files)
        cast = await self.actions.cast.cast(
            who, characters, references
        )  # saved characters join them
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
        await self.actions.make(interaction, who, built, prompt, cast.copies)
