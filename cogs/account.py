"""Commands for everyone: ``/quota``, ``/history`` and ``/help``.

Thin: each command reads core values (quota status, the member's jobs) and turns them into an
ephemeral message. Errors are raised as :class:`core.errors.UserError` and shown by the tree's
one error policy (:mod:`discord_side.errors`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from core.jobs import UNFINISHED_STATES, Job
from core.quota import QuotaStatus, quota_status
from core.references import (
    IMAGE_FORMATS_TEXT,
    VIDEO_FORMATS_TEXT,
    VOICE_FORMATS_TEXT,
    VOICE_MAX_BYTES,
)
from core.reply_flags import ALLOWED_FLAGS_TEXT
from core.request import (
    ASPECT_RATIOS,
    DURATION_MAX,
    DURATION_MIN,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE_PX,
    IMAGE_MIN_SIDE_PX,
    MAX_REFERENCES,
    NEGATIVE_PROMPT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    RESOLUTIONS,
    VIDEO_MAX_BYTES,
)
from core.store import Ban, GuildSettings
from discord_side.errors import report_error
from discord_side.limits import fit_embed
from discord_side.members import guild_member, role_ids
from discord_side.permissions import BotServices, services
from discord_side.presenter import job_link, settings_line, short_state, shorten

log = logging.getLogger(__name__)

HISTORY_PAGE_SIZE = 5
# Under the 15-minute token life: on timeout the buttons are removed through the latest token.
HISTORY_TIMEOUT = 600.0
UNFINISHED_SHOWN = 10


# ----------------------------------------------------------------- /quota


def quota_embed(
    status: QuotaStatus,
    unfinished: Sequence[Job],
    guild: GuildSettings,
    ban: Ban | None,
    hd_multiplier: float,
) -> discord.Embed:
    limits = status.limits
    embed = discord.Embed(title="Your video quota in this server", colour=discord.Colour.blurple())
    resets = int(status.resets_at.timestamp())
    if limits.exempt:
        embed.description = "Your role is exempt: no daily or at-once limit applies to you."
    else:
        embed.description = (
            f"**{status.remaining} s** of video left today"
            f" (daily allowance {limits.daily_seconds} s, {max(status.used, 0)} s used).\n"
            f"Resets <t:{resets}:R> (00:00 UTC).\n"
            f"At most {limits.max_concurrent} video(s) at once."
        )
    cost = "A video costs its duration in seconds"
    if hd_multiplier != 1:
        cost += f"; 1080P costs ×{hd_multiplier:g}"
    embed.add_field(name="Cost", value=cost + ". Failed or cancelled videos are refunded.")
    caps = []
    if guild.max_duration is not None:
        caps.append(f"at most {guild.max_duration} s long")
    if guild.max_resolution is not None:
        caps.append(f"at most {guild.max_resolution}")
    if caps:
        embed.add_field(name="Server limits", value="Videos " + ", ".join(caps) + ".")
    if ban is not None:
        reason = f": {ban.reason}" if ban.reason else "."
        embed.add_field(
            name="⛔ Not allowed",
            value=shorten(f"You may not make videos in this server{reason}", 1024),
            inline=False,
        )
    elif guild.paused:
        reason = f" ({guild.pause_reason})" if guild.pause_reason else ""
        embed.add_field(
            name="⏸️ Paused",
            value=shorten(f"Video requests are paused in this server{reason}.", 1024),
            inline=False,
        )
    if unfinished:
        lines = [
            f"`{job.id}` {short_state(job)} · <t:{int(job.created_at)}:R> · "
            f"[open]({job_link(job)})\n{shorten(job.request.prompt, 80)}"
            for job in unfinished
        ]
        more = status.unfinished - len(unfinished)
        if more > 0:
            lines.append(f"…and {more} more")
        name = f"Being made now ({status.unfinished})"
        embed.add_field(name=name, value=shorten("\n".join(lines), 1024), inline=False)
    else:
        embed.add_field(name="Being made now", value="Nothing right now.", inline=False)
    return fit_embed(embed)


# ----------------------------------------------------------------- /history


def history_embed(jobs: Sequence[Job], page: int, pages: int, total: int) -> discord.Embed:
    embed = discord.Embed(title="Your videos in this server", colour=discord.Colour.blurple())
    for job in jobs:
        value = (
            f"{shorten(job.request.prompt, 300)}\n"
            f"{settings_line(job.request)}\n"
            f"<t:{int(job.created_at)}:R> · [open]({job_link(job)})"
        )
        embed.add_field(
            name=shorten(f"{short_state(job)} · {job.id}", 256),
            value=shorten(value, 1024),
            inline=False,
        )
    embed.set_footer(text=f"Page {page + 1}/{pages} · {total} video(s), newest first")
    return fit_embed(embed)


class HistoryView(discord.ui.View):
    """Newer/Older buttons for one member's ``/history``; nobody else may turn its pages."""

    def __init__(
        self,
        bot: BotServices,
        interaction: discord.Interaction,
        total: int,
    ) -> None:
        super().__init__(timeout=HISTORY_TIMEOUT)
        self.bot = bot
        self.owner_id = interaction.user.id
        self.guild_id = interaction.guild_id or 0
        self.page = 0
        self.pages = page_count(total)
        self.total = total
        # Each press brings a fresh token; the latest one is used to remove the buttons later.
        self._latest = interaction
        self._sync_buttons()

    async def render(self, page: int) -> discord.Embed:
        """The embed for ``page`` (clamped), re-counting in case videos were made meanwhile."""
        store = self.bot.store
        self.total = await store.count_jobs_for_user(self.guild_id, self.owner_id)
        self.pages = page_count(self.total)
        self.page = min(max(page, 0), self.pages - 1)
        jobs = await store.jobs_for_user(
            self.guild_id,
            self.owner_id,
            limit=HISTORY_PAGE_SIZE,
            offset=self.page * HISTORY_PAGE_SIZE,
        )
        self._sync_buttons()
        return history_embed(jobs, self.page, self.pages, self.total)

    def _sync_buttons(self) -> None:
        self.newer.disabled = self.page <= 0
        self.older.disabled = self.page >= self.pages - 1

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            "Only the member who ran /history can turn its pages. Run /history for yours.",
            ephemeral=True,
        )
        return False

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        self._latest = interaction
        embed = await self.render(page)
        await interaction.response.edit_message(embed=embed, view=self)

    @discord.ui.button(label="◀ Newer", style=discord.ButtonStyle.secondary)
    async def newer(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.page - 1)

    @discord.ui.button(label="Older ▶", style=discord.ButtonStyle.secondary)
    async def older(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.page + 1)

    async def on_timeout(self) -> None:
        try:
            await self._latest.edit_original_response(view=None)
        except discord.HTTPException:
            log.debug("could not remove the history buttons (interaction %s)", self._latest.id)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        await report_error(interaction, error)


def page_count(total: int) -> int:
    return max((total + HISTORY_PAGE_SIZE - 1) // HISTORY_PAGE_SIZE, 1)


# ----------------------------------------------------------------- /help


def help_embed(*, bot_mention: str, message_content: bool, hd_multiplier: float) -> discord.Embed:
    mb = 1000 * 1000
    embed = discord.Embed(title="Making videos with /video", colour=discord.Colour.blurple())
    embed.description = (
        f"Attach 1 to {MAX_REFERENCES} references to `/video` as `ref1`…`ref{MAX_REFERENCES}`:"
        " pictures or short videos of the characters you want to see.\n"
        "In your prompt, call them by their **labels**. Images are *Image 1*, *Image 2*, …;"
        " videos are *Video 1*, *Video 2*, …, each counted within its kind in the order of"
        " the refs. So with ref1 = a video and ref2 = an image, ref1 is **Video 1** and ref2"
        " is **Image 1**: *“Image 1 hands Video 1 a guitar on a beach at sunset”*.\n"
        "Saved characters are named as `{name}` instead (below).\n"
        "A reference the prompt doesn't name may be ignored. To make a character speak, give"
        f" its ref a voice clip with the matching `voice1`…`voice{MAX_REFERENCES}` option."
    )
    embed.add_field(
        name="Limits",
        value=(
            f"• References: at most {MAX_REFERENCES} in total\n"
            f"• Images: {IMAGE_FORMATS_TEXT}, {IMAGE_MIN_SIDE_PX}–{IMAGE_MAX_SIDE_PX} px per"
            f" side, up to {IMAGE_MAX_BYTES // mb} MB\n"
            f"• Videos: {VIDEO_FORMATS_TEXT}, up to {VIDEO_MAX_BYTES // mb} MB\n"
            f"• Voice clips: {VOICE_FORMATS_TEXT}, up to {VOICE_MAX_BYTES // mb} MB\n"
            f"• Prompt: up to {PROMPT_MAX_CHARS} characters; negative prompt up to"
            f" {NEGATIVE_PROMPT_MAX_CHARS}\n"
            f"• Duration {DURATION_MIN}–{DURATION_MAX} s · resolution {' or '.join(RESOLUTIONS)}"
            f" · aspect ratio {', '.join(ASPECT_RATIOS)}\n"
            "• Discord's own upload limit may be lower than these."
        ),
        inline=False,
    )
    if message_content:
        how_to_reply = "Just reply in the thread; no need to mention the bot."
    else:
        how_to_reply = (
            f"Start your reply with {bot_mention} (or reply to the bot's video message with"
            " the ping on): otherwise the bot can't read it."
        )
    embed.add_field(
        name="Changing a video: reply in its thread",
        value=(
            "Every video gets a thread. A reply there makes a new video from the same references,"
            " with a new prompt and/or changed settings, e.g.\n"
            f"{bot_mention} `Image 1 dances in the rain --seed 42 --duration 8 --ar 9:16"
            ' --res 720P --neg "blurry, text" --no-extend`\n'
            f"Flags: {ALLOWED_FLAGS_TEXT}. Settings you don't change stay as they were; a reply"
            " with only flags keeps the prompt. Attach new files to the reply to replace the"
            f" references (labels are counted again).\n{how_to_reply}"
        ),
        inline=False,
    )
    embed.add_field(
        name="Saved characters: save once, use by name",
        value=(
            "`/character save name ref [voice]` keeps a character for your videos (moderators"
            " can save `scope: server` ones for everyone). Then `/video characters: fox, cat`"
            " adds them to the references, and in the prompt **`{fox}`** stands for fox:"
            " *“{fox} chases {cat} through the snow”*. Before sending, each `{name}` becomes"
            " its label (Image 2…) and the answer shows the map (`{fox} → Image 2`); plain"
            " labels still work. Characters come after your attached refs, at most"
            f" {MAX_REFERENCES} in all. Rerolls and replies keep the same characters."
            " `/character list`, `show`, `rename`, `delete` manage them."
        ),
        inline=False,
    )
    embed.add_field(
        name="From any message: Apps → Make a video",
        value=(
            "On a message with pictures or clips, open its menu (right-click, or long-press on"
            " a phone) → Apps → **Make a video**. Its files become ref 1, 2, … in their order;"
            " a form asks for the prompt, and optionally saved characters, the duration and"
            " the aspect ratio. Then it goes as with `/video`."
        ),
        inline=False,
    )
    embed.add_field(
        name="Where your files are kept",
        value=(
            "Files attached to `/video` are re-posted in the video's public thread, so rerolls"
            " and replies keep working after Discord drops the originals. Saved characters'"
            " files are kept in the server's public **🎭 Character library** thread until"
            " deleted with `/character delete`."
        ),
        inline=False,
    )
    cost = "Each video costs its duration in seconds of your daily quota"
    if hd_multiplier != 1:
        cost += f" (1080P ×{hd_multiplier:g})"
    embed.add_field(
        name="Quota",
        value=cost + "; failed or cancelled videos are refunded. See `/quota` and `/history`.",
        inline=False,
    )
    return fit_embed(embed)


# ----------------------------------------------------------------- the cog


class AccountCog(commands.Cog, name="Account"):
    """``/quota``, ``/history`` and ``/help``."""

    def __init__(self, bot: BotServices, *, clock: Callable[[], float] = time.time) -> None:
        self.bot = bot
        self._clock = clock

    @app_commands.command(
        name="quota", description="How much video you can still make today, and what's cooking"
    )
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction) -> None:
        member = guild_member(interaction)
        # Defer first: the store may be busy, and Discord wants an answer within 3 s.
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = member.guild.id
        store = self.bot.store
        status = await quota_status(
            store, self.bot.settings, guild_id, member.id, role_ids(member), self._clock()
        )
        unfinished = await store.jobs_in_guild(
            guild_id, user_id=member.id, states=UNFINISHED_STATES, limit=UNFINISHED_SHOWN
        )
        embed = quota_embed(
            status,
            unfinished,
            await store.guild_settings(guild_id),
            await store.get_ban(guild_id, member.id),
            self.bot.settings.hd_multiplier,
        )
        await interaction.followup.send(embed=embed, ephemeral=True)

    @app_commands.command(name="history", description="Your recent videos in this server")
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        member = guild_member(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        total = await self.bot.store.count_jobs_for_user(member.guild.id, member.id)
        if total == 0:
            await interaction.followup.send(
                "You haven't made any videos in this server yet. Try `/video`, or `/help`.",
                ephemeral=True,
            )
            return
        view = HistoryView(self.bot, interaction, total)
        embed = await view.render(0)
        if view.pages == 1:
            await interaction.followup.send(embed=embed, ephemeral=True)
            view.stop()
            return
        await interaction.followup.send(embed=embed, view=view, ephemeral=True)

    @app_commands.command(
        name="help", description="How to write prompts, saved characters, the limits, replies"
    )
    async def show_help(self, interaction: discord.Interaction) -> None:
        user = interaction.client.user
        embed = help_embed(
            bot_mention=user.mention if user is not None else "@bot",
            message_content=self.bot.settings.message_content_intent,
            hd_multiplier=self.bot.settings.hd_multiplier,
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AccountCog(services(bot)))
