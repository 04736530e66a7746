"""Handing a finished job to the Discord side: the result as a :class:`VideoSource`, and the
deliver action with its retries.

The Discord side's ``deliver`` must be idempotent per job (it posts with a per-job nonce); a
delivery that keeps failing ends the job as failed and refunded after ``delivery_attempts``, with
growing waits between tries, so a Discord outage does not lose the video but cannot keep a job
forever either.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

import aiohttp

from core.jobs import Job, JobState
from core.media import DownloadedVideo, MediaDownloadError, download_video
from core.notices import Notices
from core.store import Store
from core.tracker_config import TrackerConfig
from core.wan import Task, WanClient

log = logging.getLogger(__name__)

Download = Callable[[str, int, str], Awaitable[DownloadedVideo]]
ReadTask = Callable[[str], Awaitable[Task]]


class VideoSource:
    """What a delivery callback gets: the result URL and a way to stream it to a temp file."""

    def __init__(self, job: Job, download: Download, read_task: ReadTask) -> None:
        self.job = job
        self.url = job.result_url or ""
        self._download = download
        self._read_task = read_task

    async def download(self, max_bytes: int) -> DownloadedVideo:
        """Download the result (raises core.media errors). Refreshes an expired signed URL once."""
        try:
            return await self._download(self.url, max_bytes, self.job.id)
        except MediaDownloadError as exc:
            if not exc.expired or self.job.task_id is None:
                raise
            task = await self._read_task(self.job.task_id)
            if not task.generated:
                raise
            self.url = task.generated[0]
            return await self._download(self.url, max_bytes, self.job.id)

    def open(self, max_bytes: int) -> AbstractAsyncContextManager[DownloadedVideo]:
        return _Opened(self, max_bytes)


class _Opened(AbstractAsyncContextManager[DownloadedVideo]):
    def __init__(self, source: VideoSource, max_bytes: int) -> None:
        self._source = source
        self._max_bytes = max_bytes
        self._video: DownloadedVideo | None = None

    async def __aenter__(self) -> DownloadedVideo:
        self._video = await self._source.download(self._max_bytes)
        return self._video

    async def __aexit__(self, *exc: object) -> None:
        if self._video is not None:
            self._video.cleanup()


class Host(Protocol):
    """What the tracker does for deliveries."""

    def deliver_at(self, job_id: str, due: float) -> None: ...

    def resume(self, job: Job) -> None: ...

    def fence(self, job_id: str) -> int:
        """The job's lease fence, for every write (raises ``LeaseLost`` when not ours)."""
        ...

    async def fail(self, job: Job, reason: str) -> Job | None: ...


class Deliveries:
    def __init__(
        self,
        host: Host,
        store: Store,
        client: WanClient,
        session: aiohttp.ClientSession,
        config: TrackerConfig,
        notices: Notices,
        *,
        clock: Callable[[], float],
        download_dir: Path | None = None,
    ) -> None:
        self._host = host
        self.store = store
        self.client = client
        self._session = session
        self.config = config
        self._notices = notices
        self._clock = clock
        self._download_dir = download_dir

    async def download(self, url: str, max_bytes: int, job_id: str) -> DownloadedVideo:
        return await download_video(
            self._session,
            url,
            allowed_url=url,
            max_bytes=max_bytes,
            dest_dir=self._download_dir,
            timeout=self.config.download_timeout,
            name=f"wan-{job_id}",
        )

    def source(self, job: Job) -> VideoSource:
        return VideoSource(job, self.download, self.client.get)

    async def deliver(self, job: Job) -> None:
        if job.state is not JobState.COMPLETED:
            self._host.resume(job)
            return
        cfg = self.config
        events = self._notices.events
        if events is None:
            self._host.deliver_at(job.id, self._clock() + cfg.delivery_backoff_base)
            return
        try:
            message_id = await events.deliver(job, self.source(job))
        except Exception as exc:
            attempts = await self.store.count_delivery_attempt(
                job.id, f"delivery: {exc!r}"[:500], fence=self._host.fence(job.id)
            )
            if attempts is None:
                return  # fenced out: another process delivers it now
            if attempts >= cfg.delivery_attempts:
                log.exception("job %s: delivery failed %d times; giving up", job.id, attempts)
                await self._host.fail(job, "the video was made but could not be posted")
                return
            delay = min(cfg.delivery_backoff_base * 3 ** (attempts - 1), cfg.delivery_backoff_cap)
            log.warning(
                "job %s: delivery failed (%r); retry %d in %.0fs", job.id, exc, attempts, delay
            )
            self._host.deliver_at(job.id, self._clock() + delay)
            return
        delivered = await self.store.transition(
            job.id,
            JobState.DELIVERED,
            self._clock(),
            fence=self._host.fence(job.id),
            delivered_message_id=message_id,
        )
        if delivered is not None:
            log.info("job %s: delivered as message %s", job.id, message_id)
            self._notices.send(delivered)
