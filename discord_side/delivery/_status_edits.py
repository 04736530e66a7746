"""Status-message edits, throttled: at most one per job per interval, always the newest state.

Discord asks for about one edit per message every 5 seconds; a job may change faster (submitted,
running, completed within a second). Each job has at most one pending edit task; a state that
comes while it waits replaces the one it will show, and one that comes while it runs schedules
one more edit after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import discord

from core.jobs import Job

log = logging.getLogger(__name__)

EDIT_INTERVAL_SECONDS = 5.0  # Discord asks for about one edit per message every 5 s


class StatusEdits:
    def __init__(
        self,
        edit: Callable[[Job], Awaitable[None]],
        *,
        interval: float = EDIT_INTERVAL_SECONDS,
        forget: Callable[[str], None] = lambda _job_id: None,
    ) -> None:
        self._edit = edit  # shows the job on its status message
        self._forget_job = forget  # called when a finished job's last edit is done
        self._interval = interval
        self._last_edit: dict[str, float] = {}
        self._latest: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    @property
    def pending(self) -> Mapping[str, asyncio.Task[None]]:
        """The edit task of each job that has one waiting or running."""
        return self._tasks

    def request(self, job: Job) -> None:
        """Edit the status message with the newest state, at most once per interval."""
        self._latest[job.id] = job
        if job.id in self._tasks:
            return
        wait = max(self._last_edit.get(job.id, 0.0) + self._interval - time.monotonic(), 0.0)
        task = asyncio.create_task(self._edit_later(job.id, wait), name=f"status-{job.id}")
        self._tasks[job.id] = task

    async def _edit_later(self, job_id: str, wait: float) -> None:
        job: Job | None = None
        try:
            await asyncio.sleep(wait)
            job = self._latest.pop(job_id)
            if job.status_message_id is None:
                return
            await self._edit(job)
            self._last_edit[job_id] = time.monotonic()
        except discord.HTTPException as exc:
            log.warning("job %s: status edit failed (%s)", job_id, exc.status)
        except Exception:
            log.exception("job %s: status edit failed", job_id)
        finally:
            self._tasks.pop(job_id, None)
            if job_id in self._latest and not self._closing:  # a newer state came meanwhile
                self.request(self._latest[job_id])
            elif job is None or job.state.is_finished:
                # Only a finished job is forgotten: its last edit time spaces the next edit.
                self._last_edit.pop(job_id, None)
                self._forget_job(job_id)

    async def close(self) -> None:
        self._closing = True  # a cancelled edit must not schedule another
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
