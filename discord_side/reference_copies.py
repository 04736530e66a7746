"""Keep a job's reference files alive, so rerolls and replies work days later.

Files attached to a slash command are *ephemeral* attachments: Discord removes them after an
undocumented time, and their signed links expire in about a day. So once a video's thread exists,
the bot re-posts the reference files there, on a regular message it controls, and remembers where
each one went (``Job.reference_copies``). Reusing them later means fetching that message, which
Discord documents to return fresh links. Files larger than the server's upload limit cannot be
re-posted; for those (and for old jobs) the bot asks Discord to refresh the original links.

A reply in a thread that brings new files needs no copy: its files live on the reply itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import discord

from core.jobs import Job
from core.media import DownloadedVideo, MediaError, download_file, largest_upload
from discord_side.cdn import refresh_urls
from discord_side.client import AppClient

log = logging.getLogger(__name__)

MAX_FILES_PER_MESSAGE = 10  # Discord's limit
DOWNLOAD_TIMEOUT_SECONDS = 120.0
KEPT_TEXT = (
    "🎭 The reference files of this thread's videos, kept here so that 🎲 Reroll and replies"
    " keep working after Discord drops the originals."
)

Copies = dict[str, list[int]]  # key → [channel id, message id, attachment position]


def reference_urls(job: Job) -> dict[str, str]:
    """Every file a job's request points at, by key: ``ref:N``, ``voice:N``, ``start``."""
    urls: dict[str, str] = {}
    for ref in job.references:
        urls[f"ref:{ref.slot}"] = ref.media.url
        if ref.voice is not None:
            urls[f"voice:{ref.slot}"] = ref.voice.url
    if job.request.start_image_url:
        urls["start"] = job.request.start_image_url
    return urls


def copies_on_message(message: discord.Message, keys: Sequence[str | None]) -> Copies:
    """Copies for files that already live on a regular message (``keys[i]`` per attachment)."""
    return {
        key: [message.channel.id, message.id, position]
        for position, key in enumerate(keys)
        if key is not None
    }


@dataclass(frozen=True, slots=True)
class FileToKeep:
    """A file to re-post: where to fetch it, and what Discord said of it."""

    key: str
    url: str
    filename: str
    size: int  # 0 when unknown


class ReferenceKeeper:
    def __init__(self, bot: AppClient) -> None:
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()

    def keep_later(self, job: Job, thread: discord.Thread) -> None:
        """Re-post ``job``'s reference files into ``thread`` in the background."""
        if set(reference_urls(job)) <= set(job.reference_copies):
            return  # every file already lives on a regular message (a reply's, the library's)
        task = asyncio.create_task(self._keep_logged(job, thread), name=f"keep-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _keep_logged(self, job: Job, thread: discord.Thread) -> None:
        try:
            await self.keep(job, thread)
        except Exception:
            log.exception("job %s: keeping the reference files failed", job.id)

    async def keep(self, job: Job, thread: discord.Thread) -> Copies:
        """Re-post the files of ``job`` that have no lasting copy yet; returns all its copies."""
        sizes = {f"ref:{ref.slot}": ref.media.size for ref in job.references} | {
            f"voice:{ref.slot}": ref.voice.size for ref in job.references if ref.voice
        }
        names = {f"ref:{ref.slot}": ref.media.filename for ref in job.references} | {
            f"voice:{ref.slot}": ref.voice.filename for ref in job.references if ref.voice
        }
        files = [
            FileToKeep(key, url, names.get(key, "start-image.png"), sizes.get(key, 0))
            for key, url in reference_urls(job).items()
            if key not in job.reference_copies
        ]
        kept = await self.repost(
            files,
            thread,
            limit=largest_upload(thread.guild.filesize_limit),
            text=KEPT_TEXT,
            nonce=f"rf{job.id}",
            what=f"job {job.id}",
        )
        copies = job.reference_copies | kept
        if kept:
            await self.bot.store.set_reference_copies(job.id, copies)
            log.info("job %s: kept %d reference file(s) in thread %s", job.id, len(kept), thread.id)
        return copies

    async def repost(
        self,
        files: Sequence[FileToKeep],
        channel: discord.abc.Messageable,
        *,
        limit: int,
        text: str | None,
        nonce: str,
        what: str,
    ) -> Copies:
        """Download ``files`` and post them on regular messages in ``channel``.

        Returns where each one went, by key. A file over ``limit`` (the channel's upload limit)
        or that cannot be downloaded is left out and logged. ``nonce`` (at most 23 characters)
        makes a repeated call return the earlier messages; ``text`` goes on the first one.
        """
        downloaded: list[tuple[str, DownloadedVideo]] = []
        copies: Copies = {}
        try:
            for file in files:
                if file.size > limit:
                    continue  # too large to re-post here: the original link is refreshed later
                try:
                    got = await download_file(
                        self.bot.session,
                        file.url,
                        max_bytes=limit,
                        filename=file.filename,
                        timeout=DOWNLOAD_TIMEOUT_SECONDS,
                    )
                except MediaError as exc:
                    log.info("%s: %s not kept (%s)", what, file.key, exc)
                    continue
                downloaded.append((file.key, got))
            for number, batch in enumerate(_batches(downloaded, limit)):
                message = await channel.send(
                    text if number == 0 else None,
                    files=[discord.File(got.path, filename=got.filename) for _, got in batch],
                    nonce=f"{nonce}{number}",
                    allowed_mentions=discord.AllowedMentions.none(),
                    silent=True,
                )
                copies |= copies_on_message(message, [key for key, _ in batch])
        finally:
            for _, got in downloaded:
                got.cleanup()
        return copies

    async def fresh_urls(self, job: Job) -> dict[str, str]:
        """Live links for every file of ``job``, by key. Raises ``ReferencesExpired``."""
        return await self.fresh_links(job.reference_copies, reference_urls(job))

    async def fresh_links(self, copies: Copies, wanted: Mapping[str, str]) -> dict[str, str]:
        """Live links for ``wanted`` (key → a link Discord gave once), read from the messages
        ``copies`` names, else refreshed. Raises ``ReferencesExpired``."""
        fresh: dict[str, str] = {}
        by_message: dict[tuple[int, int], list[tuple[str, int]]] = {}
        for key, (channel_id, message_id, position) in copies.items():
            if key in wanted:
                by_message.setdefault((channel_id, message_id), []).append((key, position))
        for (channel_id, message_id), entries in by_message.items():
            with contextlib.suppress(discord.HTTPException, TypeError, IndexError):
                channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(
                    channel_id
                )
                if not isinstance(channel, discord.abc.Messageable):
                    continue
                message = await channel.fetch_message(message_id)  # fresh links, documented
                for key, position in entries:
                    fresh[key] = message.attachments[position].url
        missing = {key: url for key, url in wanted.items() if key not in fresh}
        if missing:
            refreshed = await refresh_urls(self.bot.http, missing.values())
            fresh |= {key: refreshed[url] for key, url in missing.items()}
        return fresh


def _batches(
    files: list[tuple[str, DownloadedVideo]], limit: int
) -> Iterator[list[tuple[str, DownloadedVideo]]]:
    """Group files into messages of at most 10 files and ``limit`` bytes in all."""
    batch: list[tuple[str, DownloadedVideo]] = []
    total = 0
    for entry in files:
        size = entry[1].size
        if batch and (len(batch) == MAX_FILES_PER_MESSAGE or total + size > limit):
            yield batch
            batch, total = [], 0
        batch.append(entry)
        total += size
    if batch:
        yield batch
