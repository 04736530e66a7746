"""Replies in a video thread: a new video from the same characters, with the reply's changes.

The reply's flags (``--seed 42 --ar 9:16``…) change the settings, its text the prompt, its files
the attached references; saved characters stay. Refusals are told privately (they may carry a
moderator's reason), and the first message without a mention gets a one-time hint.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace

import discord
from discord.ext import commands

from core.jobs import Job, JobOrigin
from core.references import BuiltRequest
from core.reply_flags import read_reply
from core.text import has_visible
from discord_side import presenter
from discord_side.actions import VideoActions
from discord_side.client import AppClient
from discord_side.errors import describe_error
from discord_side.inputs import options_from, random_seed, reply_requester
from discord_side.limits import fit_content
from discord_side.mentions import without_bot_mentions, without_mentions
from discord_side.privately import tell_privately
from discord_side.thread_hints import ThreadHints

log = logging.getLogger(__name__)


class VideoReplies(commands.Cog, name="VideoReplies"):
    def __init__(self, bot: AppClient, actions: VideoActions) -> None:
        self.bot = bot
        self.actions = actions
        self.hints = ThreadHints(bot)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None:
            return
        # One of our threads? The store's answer, kept in memory: no query for other channels.
        if message.channel.id not in self.actions.delivery.threads:
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
        built, copies = await self.actions.reuse(old, prompt, options, message, flag_problems)
        job = await self.bot.service.accept(
            who,
            built,
            origin=JobOrigin.REPLY,
            parent_job_id=old.id,
            thread_id=message.channel.id,
            reference_copies=copies,
        )
        await self.actions.cast.remember(job, built, prompt)
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
