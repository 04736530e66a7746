"""The Discord side of a job's life: its status message, its thread, and the delivered video.

Registered with the tracker as its :class:`core.tracker.JobEvents`. Everything is posted as the
bot's own channel messages (never through an interaction token, which dies after 15 minutes),
so it works the same for a job resumed after a restart.

Exactly-once posting: the status message, the failure notice and the delivery each carry a
per-job nonce (Discord then returns the first message instead of a duplicate), and before
delivering the bot also looks for its own earlier delivery of the job where it posts, for a
crash that happened longer ago than Discord's nonce window.

A thread that takes no message (deleted, locked, no permission) is no dead end: the message
goes to the channel instead, and when the channel refuses too the member is told where the
video is (:mod:`discord_side.places`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

import discord
from discord.utils import MISSING

from core.jobs import Job, JobOrigin, JobState
from core.media import MediaTooLarge, largest_upload
from core.notices import Progress
from core.tracker import VideoSource
from discord_side import presenter
from discord_side.client import AppClient
from discord_side.delivery._refresh import ProgressRefresh
from discord_side.delivery._status_edits import EDIT_INTERVAL_SECONDS, StatusEdits
from discord_side.delivery._where import (
    NO_PINGS,
    NO_THREAD_NOTE,
    NONCE_TRUST_SECONDS,
    THREAD_ALREADY_CREATED,
    USERS_ONLY,
    Target,
    no_thread_note,
    status_channel_id,
    status_link,
)
from discord_side.places import (
    MOVED_NOTES,
    THREAD_LIMITS,
    TOO_MANY_THREADS_NOTE,
    Place,
    Refusal,
    places,
    refusal,
    unposted_dm,
    unposted_note,
)
from discord_side.reference_copies import ReferenceKeeper
from discord_side.views import delivery_view

log = logging.getLogger(__name__)


class NowhereToPost(Exception):
    """Discord refused the video everywhere and the member could not be told either."""


class DiscordDelivery:
    def __init__(
        self,
        bot: AppClient,
        edit_interval: float = EDIT_INTERVAL_SECONDS,
        keeper: ReferenceKeeper | None = None,
        progress: Callable[[Job], Progress | None] | None = None,
    ) -> None:
        self.bot = bot
        self._progress = progress or bot.tracker.progress  # the timing a status message shows
        self.keeper = keeper or ReferenceKeeper(bot)
        # Every thread a job was made in, from the store: replies there are for the bot.
        # discord.py's cache is no guide (it drops archived threads, and misses some).
        self.threads: set[int] = set()
        self.edits = StatusEdits(self._show, interval=edit_interval, forget=self._forget)
        self.refresh = ProgressRefresh(self._refresh, edit_interval=edit_interval)
        self._locks: dict[str, asyncio.Lock] = {}
        self._threadless: set[str] = set()  # jobs whose channel refused a thread (this run)
        self._notes: dict[str, str] = {}  # why a job's messages are not in a thread (this run)

    async def load_threads(self) -> None:
        self.threads |= await self.bot.store.video_thread_ids()

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

    async def _send_somewhere(self, job: Job, what: str, text: str, nonce: str) -> int:
        """Post in the job's thread, else in its channel (as a reply to the thread's starter).

        Raises the channel's refusal when neither takes it, and other errors (5xx) at once.
        """
        for place in places(job):
            reply: dict[str, Any] = {}
            if (reference := place.reference()) is not None:
                reply["reference"] = reference
            try:
                target = await self.channel(place.channel_id)
                message = await target.send(text, nonce=nonce, allowed_mentions=USERS_ONLY, **reply)
                return message.id
            except discord.HTTPException as exc:
                if refusal(exc) is None or not place.in_thread:
                    raise
                log.warning(
                    "job %s: thread %s refused the %s (%s %s); using the channel",
                    job.id,
                    place.channel_id,
                    what,
                    exc.status,
                    exc.code,
                )
        raise AssertionError("unreachable: the last place is the channel, which raises")

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
            target: Target
            message: discord.Message | discord.PartialMessage
            if job.status_message_id is None:
                job, target, message = await self._post_status(job)
                await self.bot.store.set_discord_ids(job.id, status_message_id=message.id)
            else:
                # The message is there but its thread is not: a restart after a crash between.
                target = await self.channel(job.channel_id)
                message = target.get_partial_message(job.status_message_id)
            if job.thread_id is None and job.id not in self._threadless:
                if isinstance(target, discord.TextChannel):
                    await self._start_thread(job, target, message)
                else:
                    self._threadless.add(job.id)  # asked in a thread or voice channel: none to make
            updated = await self.bot.store.get_job(job.id)
            return updated or job

    async def _post_status(self, job: Job) -> tuple[Job, Target, discord.Message]:
        """The status message: in the job's thread if it has one, else in its channel."""
        mention = f"<@{job.user_id}>"
        if job.thread_id is not None:
            try:
                thread = await self.channel(job.thread_id)
                message = await thread.send(
                    content=mention,
                    embed=presenter.status_embed(job, progress=self._progress(job)),
                    nonce=f"st{job.id}",
                    allowed_mentions=USERS_ONLY,
                )
                return job, thread, message
            except discord.HTTPException as exc:
                why = refusal(exc)
                if why is None:
                    raise
                # A reply or reroll whose thread is gone or locked: the job leaves it for good.
                log.warning(
                    "job %s: thread %s refused the status message (%s %s); using the channel",
                    job.id,
                    job.thread_id,
                    exc.status,
                    exc.code,
                )
                # In reply to the thread's starter message (it shares the thread's id).
                starter = Place(job.channel_id, in_thread=False, reply_to=job.thread_id)
                await self.bot.store.set_discord_ids(job.id, thread_id=None)
                self._threadless.add(job.id)
                self._notes[job.id] = MOVED_NOTES[why]
                job = replace(job, thread_id=None)
                channel = await self.channel(job.channel_id)
                message = await channel.send(
                    content=mention,
                    embed=presenter.status_embed(job, self._notes[job.id], self._progress(job)),
                    nonce=f"st{job.id}",
                    allowed_mentions=USERS_ONLY,
                    reference=starter.reference(),  # type: ignore[arg-type]  # None is allowed
                )
                return job, channel, message
        channel = await self.channel(job.channel_id)
        message = await channel.send(
            embed=presenter.status_embed(job, progress=self._progress(job)),
            nonce=f"st{job.id}",
            allowed_mentions=USERS_ONLY,
        )
        return job, channel, message

    async def _start_thread(
        self,
        job: Job,
        channel: discord.TextChannel,
        message: discord.Message | discord.PartialMessage,
    ) -> None:
        me = channel.guild.me  # None until the gateway has sent the guild (early after a start)
        thread_id: int | None = None
        note = NO_THREAD_NOTE
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
                if exc.code in THREAD_LIMITS:
                    note = TOO_MANY_THREADS_NOTE
                elif exc.code == THREAD_ALREADY_CREATED:
                    # Made before a crash, not yet recorded: a message's thread shares its id.
                    thread_id = message.id
                else:
                    raise
        if thread_id is None:
            self._threadless.add(job.id)
            self._notes[job.id] = note
            log.info(
                "job %s: no thread in channel %s; delivering in the channel", job.id, channel.id
            )
            current = await self.bot.store.get_job(job.id)
            shown = current or job
            await message.edit(embed=presenter.status_embed(shown, note, self._progress(shown)))
            return
        await self.bot.store.set_discord_ids(job.id, thread_id=thread_id)
        self.threads.add(thread_id)
        if job.origin is JobOrigin.COMMAND:
            # Slash-command files are ephemeral: keep copies in the new thread for later reuse.
            made = await self.channel(thread_id)
            if isinstance(made, discord.Thread):
                self.keeper.keep_later(job, made)

    def _status_note(self, job: Job, target: Target) -> str | None:
        """The note a status message keeps on every edit, not only the first."""
        if (
            job.state is JobState.DELIVERED
            and job.delivered_message_id == job.status_message_id
            and job.result_url
        ):
            return unposted_note(job.result_url)  # the video could only be linked from here
        return self._notes.get(job.id) or no_thread_note(job, target)

    async def _show(self, job: Job) -> None:
        """Edit the job's status message to show its state (and the note it keeps)."""
        assert job.status_message_id is not None  # StatusEdits edits only posted messages
        target = await self.channel(status_channel_id(job))
        progress = self._progress(job)
        await target.get_partial_message(job.status_message_id).edit(
            embed=presenter.status_embed(job, self._status_note(job, target), progress)
        )
        self.refresh.plan(job, progress)

    def _refresh(self, job: Job) -> None:
        if job.id not in self.edits.pending:  # an edit under way shows the newest state anyway
            self.edits.request(job)

    def _forget(self, job_id: str) -> None:
        self.refresh.cancel(job_id)
        self._locks.pop(job_id, None)
        self._threadless.discard(job_id)
        self._notes.pop(job_id, None)

    async def close(self) -> None:
        self.refresh.close()
        await self.edits.close()
        await self.keeper.close()

    # ----------------------------------------------------------------- JobEvents

    async def job_changed(self, job: Job) -> None:
        self.refresh.cancel(job.id)  # this edit shows the newest state; refreshes follow it
        job = await self.ensure_status_message(job)
        self.edits.request(job)
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            text = presenter.failure_text(job)
            nonce = f"fl{job.id}"
            try:
                await self._send_somewhere(job, "failure notice", text, nonce)
            except discord.HTTPException as exc:
                if refusal(exc) is None or await self._direct_message(job, text, nonce) is None:
                    raise

    async def deliver(self, job: Job, video: VideoSource) -> int:
        # Right after a start the guild is not known yet, and with it the upload limit of a
        # boosted server: a video that would fit would be posted as a link.
        await self.bot.wait_until_ready()
        job = await self.ensure_status_message(job)
        # Within Discord's nonce window the nonce alone prevents a double post; later than
        # that (a restart after a long outage), look for our own earlier post first.
        look_back = job.completed_at is None or time.time() - job.completed_at > NONCE_TRUST_SECONDS
        refused: Refusal | None = None
        for place in places(job):
            try:
                target = await self.channel(place.channel_id)
                if look_back and (earlier := await self._earlier_delivery(target, job)):
                    log.info("job %s: already delivered as message %s", job.id, earlier)
                    return earlier
                note = None if refused is None else MOVED_NOTES[refused]
                return await self._post(job, video, target, note, place.reference())
            except discord.HTTPException as exc:
                refused = refusal(exc)
                if refused is None:
                    raise
                log.warning(
                    "job %s: %s %s refused the video (%s %s)",
                    job.id,
                    "thread" if place.in_thread else "channel",
                    place.channel_id,
                    exc.status,
                    exc.code,
                )
        self._count(job, "failed")  # no place took the video: a link from elsewhere, at best
        return await self._point_the_way(job, video.url)

    def _count(self, job: Job, outcome: str) -> None:
        """A delivery's outcome, and how long after the API finished the video was posted."""
        lag = None if job.completed_at is None else time.time() - job.completed_at
        self.bot.metrics.delivered(outcome, lag)

    async def _point_the_way(self, job: Job, url: str) -> int:
        """Nowhere takes the video: link it from the status message, and DM the member."""
        shown: int | None = None
        if job.status_message_id is not None:
            try:
                target = await self.channel(status_channel_id(job))
                await target.get_partial_message(job.status_message_id).edit(
                    embed=presenter.status_embed(job, unposted_note(url))
                )
                shown = job.status_message_id
            except discord.HTTPException as exc:
                log.warning("job %s: status message not editable either (%s)", job.id, exc.status)
        link = status_link(job) if shown is not None else None
        sent = await self._direct_message(job, unposted_dm(job, url, link), f"dm{job.id}")
        if shown is None and sent is None:
            raise NowhereToPost(f"job {job.id}: no thread, channel or DM took the video")
        log.info("job %s: posted nowhere; linked from the status message / a DM", job.id)
        return shown if shown is not None else cast(int, sent)  # one of them is set

    async def _direct_message(self, job: Job, text: str, nonce: str) -> int | None:
        """DM the requester (the last way to reach them); None if their DMs are closed."""
        try:
            channel = await self.bot.create_dm(discord.Object(id=job.user_id))
            message = await channel.send(text, nonce=nonce, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.warning("job %s: could not DM the requester (%s %s)", job.id, exc.status, exc.code)
            return None
        return message.id

    async def _post(
        self,
        job: Job,
        video: VideoSource,
        target: Target,
        note: str | None = None,
        reference: discord.MessageReference | None = None,
    ) -> int:
        limit = target.guild.filesize_limit
        suffix = f"\n{note}" if note else ""
        # Only passed when there is one: discord.py raises TypeError for reference=MISSING.
        reply: dict[str, Any] = {"reference": reference} if reference is not None else {}

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
                posted = await send(presenter.delivery_text(job), file)
        except MediaTooLarge as exc:
            text = presenter.link_text(job, video.url, exc.size, limit)
        except discord.HTTPException as exc:
            if exc.code != 40005:  # request entity too large: the server's limit is lower
                raise
            text = presenter.link_text(job, video.url, None, limit)
        else:
            self._count(job, "file")
            return posted
        posted = await send(text)
        self._count(job, "link")
        return posted

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
