"""The Discord side of a job's life: its status message, its thread, and the delivered video.

Registered with the tracker as its :class:`core.tracker.JobEvents`. Everything is posted as the
bot's own channel messages (never through an interaction token, which dies after 15 minutes),
so it works the same for a job resumed after a restart.

The status message shows the job's timing (``core.notices.Progress``, asked of the tracker at each
edit): elapsed time and the ETA are Discord's live relative timestamps (``<t:…:R>``), which every
client keeps ticking without an edit. The message is edited on every change of state, at most
once per edit interval; while an ETA is shown, also when the progress bar has moved by a cell
(never more often than every ``REFRESH_MIN_SECONDS``) - a few edits per job, planned with one
timer each, with no loop over jobs.

Exactly-once posting: the status message, the failure notice and the delivery each carry a
per-job nonce (Discord then returns the first message instead of a duplicate), and before
delivering the bot also looks for its own earlier delivery of the job in the thread, for a
crash that happened longer ago than Discord's nonce window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord.utils import MISSING

from cogs import presenter
from cogs.reference_copies import ReferenceKeeper
from cogs.views import delivery_view
from core.jobs import Job, JobOrigin, JobState
from core.media import MediaTooLarge, largest_upload
from core.tracker import Progress, VideoSource

if TYPE_CHECKING:
    from bot import WanBot

log = logging.getLogger(__name__)

THREAD_ALREADY_CREATED = 160004  # Discord: "A thread has already been created for this message"
NONCE_TRUST_SECONDS = 240.0  # Discord dedupes a reused nonce for "a few minutes"
EDIT_INTERVAL_SECONDS = 5.0  # Discord asks for about one edit per message every 5 s
REFRESH_MIN_SECONDS = 15.0  # progress-bar edits, at most this often per job
NO_THREAD_NOTE = (
    "I can't create a thread here (I need the Create Public Threads permission),"
    " so the video will be posted in this channel."
)
NO_THREAD_POST_NOTE = (
    "(Posted here because I can't post in the thread: I need Send Messages in Threads.)"
)
USERS_ONLY = discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False)
NO_PINGS = discord.AllowedMentions.none()
Target = discord.TextChannel | discord.Thread | discord.VoiceChannel | discord.StageChannel


def status_channel_id(job: Job) -> int:
    """Where the status message lives: the channel for a thread's starter, else the thread."""
    if job.thread_id is None or job.thread_id == job.status_message_id:
        return job.channel_id  # a thread started from a message shares that message's id
    return job.thread_id


def no_thread_note(job: Job, target: Target) -> str | None:
    """Why the video comes in the channel: kept on every edit, not only the first."""
    # A /video in a text channel always gets a thread unless Discord refused one.
    if job.thread_id is None and isinstance(target, discord.TextChannel):
        return NO_THREAD_NOTE
    return None


class DiscordDelivery:
    def __init__(
        self,
        bot: WanBot,
        edit_interval: float = EDIT_INTERVAL_SECONDS,
        keeper: ReferenceKeeper | None = None,
        progress: Callable[[Job], Progress | None] | None = None,
    ) -> None:
        self.bot = bot
        self.keeper = keeper or ReferenceKeeper(bot)
        self._edit_interval = edit_interval
        self._progress = progress or bot.tracker.progress
        self._refreshes: dict[str, asyncio.TimerHandle] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_edit: dict[str, float] = {}
        self._latest: dict[str, Job] = {}
        self._edits: dict[str, asyncio.Task[None]] = {}
        self._threadless: set[str] = set()  # jobs whose channel refused a thread (this run)
        self._closing = False

    # ----------------------------------------------------------------- channels

    async def channel(self, channel_id: int) -> Target:
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            channel = await self.bot.fetch_channel(channel_id)
        if not isinstance(channel, Target):
            raise TypeError(f"channel {channel_id} cannot hold messages")
        return channel

    def _lock(self, job_id: str) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    # ----------------------------------------------------------------- status message

    async def ensure_status_message(self, job: Job) -> Job:
        """Post the job's status message (and start its thread) unless that was done already."""
        async with self._lock(job.id):
            fresh = await self.bot.store.get_job(job.id)
            job = fresh or job
            if job.status_message_id is not None and (
                job.thread_id is not None or job.id in self._threadless
            ):
                return job
            target = await self.channel(job.thread_id or job.channel_id)
            message: discord.Message | discord.PartialMessage
            if job.status_message_id is None:
                message = await target.send(
                    content=f"<@{job.user_id}>" if job.thread_id else None,
                    embed=presenter.status_embed(job, progress=self._progress(job)),
                    nonce=f"st{job.id}",
                    allowed_mentions=USERS_ONLY,
                )
                await self.bot.store.set_discord_ids(job.id, status_message_id=message.id)
            else:
                # The message is there but its thread is not: a restart after a crash between.
                message = target.get_partial_message(job.status_message_id)
            if job.thread_id is None and isinstance(target, discord.TextChannel):
                await self._start_thread(job, target, message)
            elif job.thread_id is None:
                self._threadless.add(job.id)  # asked in a thread or voice channel: none to make
            updated = await self.bot.store.get_job(job.id)
            return updated or job

    async def _start_thread(
        self,
        job: Job,
        channel: discord.TextChannel,
        message: discord.Message | discord.PartialMessage,
    ) -> None:
        me = channel.guild.me  # None until the gateway has sent the guild (early after a start)
        thread_id: int | None = None
        if me is None or channel.permissions_for(me).create_public_threads:
            try:
                thread = await message.create_thread(
                    name=presenter.shorten(f"🎬 {job.request.prompt}", 95),
                    auto_archive_duration=1440,
                )
                thread_id = thread.id
            except discord.Forbidden:
                thread_id = None
            except discord.HTTPException as exc:
                if exc.code != THREAD_ALREADY_CREATED:
                    raise
                # Made before a crash, not yet recorded: a message's thread shares its id.
                thread_id = message.id
        if thread_id is None:
            self._threadless.add(job.id)
            log.info(
                "job %s: no thread in channel %s; delivering in the channel", job.id, channel.id
            )
            current = await self.bot.store.get_job(job.id)
            shown = current or job
            await message.edit(
                embed=presenter.status_embed(shown, NO_THREAD_NOTE, self._progress(shown))
            )
            return
        await self.bot.store.set_discord_ids(job.id, thread_id=thread_id)
        if job.origin is JobOrigin.COMMAND:
            # Slash-command files are ephemeral: keep copies in the new thread for later reuse.
            made = await self.channel(thread_id)
            if isinstance(made, discord.Thread):
                self.keeper.keep_later(job, made)

    def _request_edit(self, job: Job) -> None:
        """Edit the status message with the newest state, at most once per interval."""
        self._latest[job.id] = job
        if job.id in self._edits:
            return
        wait = max(self._last_edit.get(job.id, 0.0) + self._edit_interval - time.monotonic(), 0.0)
        task = asyncio.create_task(self._edit_later(job.id, wait), name=f"status-{job.id}")
        self._edits[job.id] = task

    async def _edit_later(self, job_id: str, wait: float) -> None:
        job: Job | None = None
        try:
            await asyncio.sleep(wait)
            job = self._latest.pop(job_id)
            if job.status_message_id is None:
                return
            target = await self.channel(status_channel_id(job))
            progress = self._progress(job)
            await target.get_partial_message(job.status_message_id).edit(
                embed=presenter.status_embed(job, no_thread_note(job, target), progress)
            )
            self._last_edit[job_id] = time.monotonic()
            self._plan_refresh(job, progress)
        except discord.HTTPException as exc:
            log.warning("job %s: status edit failed (%s)", job_id, exc.status)
        except Exception:
            log.exception("job %s: status edit failed", job_id)
        finally:
            self._edits.pop(job_id, None)
            if job_id in self._latest and not self._closing:  # a newer state came meanwhile
                self._request_edit(self._latest[job_id])
            elif job is None or job.state.is_finished:
                # Only a finished job is forgotten: its last edit time spaces the next edit.
                self._forget(job_id)

    def _plan_refresh(self, job: Job, progress: Progress | None) -> None:
        """While an ETA is shown, edit again when the bar has moved by a cell."""
        self._cancel_refresh(job.id)
        if self._closing or progress is None or progress.expected_seconds is None:
            return
        if not job.state.is_in_flight:
            return
        now = time.time()
        cell = progress.expected_seconds / presenter.BAR_CELLS
        done = math.floor((now - progress.since) / cell) + 1 if cell > 0 else presenter.BAR_CELLS
        due = max(progress.since + cell * done, now + max(self._edit_interval, REFRESH_MIN_SECONDS))
        if due >= progress.since + progress.expected_seconds:
            return  # the ETA is near: the next news is the video itself
        loop = asyncio.get_running_loop()
        self._refreshes[job.id] = loop.call_later(due - now, self._refresh, job)

    def _refresh(self, job: Job) -> None:
        self._refreshes.pop(job.id, None)
        if not self._closing and job.id not in self._latest and job.id not in self._edits:
            self._request_edit(job)

    def _cancel_refresh(self, job_id: str) -> None:
        handle = self._refreshes.pop(job_id, None)
        if handle is not None:
            handle.cancel()

    def _forget(self, job_id: str) -> None:
        self._cancel_refresh(job_id)
        self._last_edit.pop(job_id, None)
        self._locks.pop(job_id, None)
        self._threadless.discard(job_id)

    async def close(self) -> None:
        self._closing = True  # a cancelled edit must not schedule another
        for job_id in list(self._refreshes):
            self._cancel_refresh(job_id)
        for task in list(self._edits.values()):
            task.cancel()
        await asyncio.gather(*self._edits.values(), return_exceptions=True)
        await self.keeper.close()

    # ----------------------------------------------------------------- JobEvents

    async def job_changed(self, job: Job) -> None:
        self._cancel_refresh(job.id)  # this edit shows the newest state; refreshes follow it
        job = await self.ensure_status_message(job)
        self._request_edit(job)
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            target = await self.channel(job.thread_id or job.channel_id)
            await target.send(
                presenter.failure_text(job), nonce=f"fl{job.id}", allowed_mentions=USERS_ONLY
            )

    async def deliver(self, job: Job, video: VideoSource) -> int:
        # Right after a start the guild is not known yet, and with it the upload limit of a
        # boosted server: a video that would fit would be posted as a link.
        await self.bot.wait_until_ready()
        job = await self.ensure_status_message(job)
        channel = await self.channel(job.channel_id)
        target = await self.channel(job.thread_id) if job.thread_id else channel
        # Within Discord's nonce window the nonce alone prevents a double post; later than
        # that (a restart after a long outage), look for our own earlier post first.
        if job.completed_at is None or time.time() - job.completed_at > NONCE_TRUST_SECONDS:
            earlier = await self._earlier_delivery(target, job)
            if earlier is not None:
                log.info("job %s: already delivered as message %s", job.id, earlier)
                return earlier
        try:
            return await self._post(job, video, target)
        except discord.Forbidden:
            if target is channel:
                raise
            log.warning("job %s: cannot post in thread %s; using the channel", job.id, target.id)
            return await self._post(job, video, channel, note=NO_THREAD_POST_NOTE)

    async def _post(
        self, job: Job, video: VideoSource, target: Target, note: str | None = None
    ) -> int:
        limit = target.guild.filesize_limit
        suffix = f"\n{note}" if note else ""
        # Only passed when there is one: discord.py raises TypeError for reference=MISSING.
        reply: dict[str, Any] = {}
        if note and job.status_message_id is not None:
            reply["reference"] = target.get_partial_message(job.status_message_id)

        async def send(text: str, file: discord.File = MISSING) -> int:
            message: discord.Message = await target.send(
                text + suffix,
                file=file,
                embed=presenter.delivery_embed(job),
                view=delivery_view(job),
                nonce=job.delivery_nonce,
                allowed_mentions=USERS_ONLY,
                **reply,
            )
            return message.id

        try:
            async with video.open(largest_upload(limit)) as downloaded:
                file = discord.File(downloaded.path, filename=downloaded.filename)
                return await send(presenter.delivery_text(job), file)
        except MediaTooLarge as exc:
            return await send(presenter.link_text(job, video.url, exc.size, limit))
        except discord.HTTPException as exc:
            if exc.code != 40005:  # request entity too large: the server's limit is lower
                raise
            return await send(presenter.link_text(job, video.url, None, limit))

    async def _earlier_delivery(self, target: Target, job: Job) -> int | None:
        """The bot's own delivery of this job, if a crash hid it from the database."""
        me = self.bot.user
        if me is None:
            return None
        marker = presenter.delivery_marker(job)
        try:
            async for message in target.history(limit=25):
                if message.author.id == me.id and marker in message.content:
                    return message.id
        except discord.HTTPException:
            return None  # no Read Message History: rely on the nonce
        return None
