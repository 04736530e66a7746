"""Reading tasks in flight: the read action, what the API's answer means for the job, and
learning run times from completions.

A read that finds the task running places the task's next reads (``core.polling``); one that
finds it done hands the job to delivery (in whichever process claims it) and teaches the
run-time model (``core.runtimes``) how long it took: between the last read that saw it running
and this one, or exactly when a webhook said so. When the model moves, every task in flight of
that resolution is planned again at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Protocol

from core.jobs import Job, JobState
from core.polling import PollPlanner, Watch
from core.runtimes import RunTimeModel
from core.scheduling import Backoff
from core.store import Store
from core.wan import Task, TaskStatus, WanClient, WanError, WanNotFound, WanOperatorError

log = logging.getLogger(__name__)


class Host(Protocol):
    """What the tracker does for reads."""

    def planned(self) -> None:
        """New reads were placed: the scheduler should look again."""

    def resume(self, job: Job) -> None: ...

    def fence(self, job_id: str) -> int:
        """The job's lease fence, for every write (raises ``LeaseLost`` when not ours)."""
        ...

    async def completed(self, job: Job) -> None:
        """The job is completed: hand it to delivery (wherever that happens)."""

    def tell(self, job: Job) -> None: ...

    async def fail(self, job: Job, reason: str) -> Job | None: ...


class Reads:
    def __init__(
        self,
        host: Host,
        store: Store,
        client: WanClient,
        planner: PollPlanner,
        *,
        clock: Callable[[], float],
        backoff: Backoff,
        on_run_time: Callable[[float], None] | None = None,
    ) -> None:
        self._host = host
        self.store = store
        self.client = client
        self.planner = planner
        self.model: RunTimeModel = planner.model
        self._clock = clock
        self._backoff = backoff
        self._on_run_time = on_run_time  # told submit -> completed of every completion

    async def accepted(self, job: Job, task: Task, *, listed: bool) -> None:
        """The job has its task: record it, then act on what the API said of it."""
        self._backoff.reset(job.id)
        submitted = await self.store.transition(
            job.id,
            JobState.SUBMITTED,
            self._clock(),
            fence=self._host.fence(job.id),
            task_id=task.task_id,
        )
        if submitted is None:
            log.warning("job %s: task %s accepted after the job ended", job.id, task.task_id)
            return
        log.info("job %s: submitted as task %s", job.id, task.task_id)
        self._host.tell(submitted)
        if listed:
            # A list item (or a notification we may not trust) carries no result: read it.
            self.planner.read_at(self.watch_of(submitted), self._clock())
            self._host.planned()
        else:
            await self.apply(submitted, task, heard="create")

    def watch_of(self, job: Job) -> Watch:
        """The planner's watch of the job, made from the job when there is none yet (or only the
        placeholder a restart left)."""
        known = self.planner.get(job.id)
        if known is not None and known.submitted_at is not None:
            return known
        submitted = job.submitted_at if job.submitted_at is not None else self._clock()
        watch = Watch(
            job.id,
            submitted,
            job.request.resolution,
            job.request.duration,
            job.deadline_at,
            last_read=submitted,
            last_read_known=known is None,
        )
        return self.planner.watch(watch)

    async def poll(self, job: Job) -> None:
        if not job.state.is_in_flight or job.task_id is None:
            self._host.resume(job)
            return
        if self._clock() >= job.deadline_at:
            await self._host.fail(job, "the video took too long to generate")
            return
        watch = self.watch_of(job)
        asked = self._clock()
        try:
            task = await self.client.get(job.task_id)
        except WanNotFound:
            await self._host.fail(job, "the video service lost the task")
            return
        except WanError as exc:
            delay = self._backoff.next(job.id, getattr(exc, "retry_after", None))
            if isinstance(exc, WanOperatorError):
                log.error("job %s: the API refused our credentials: %s", job.id, exc)
            else:
                log.warning("job %s: read failed (%s); again in %.0fs", job.id, exc, delay)
            self.planner.read_at(watch, min(self._clock() + delay, job.deadline_at))
            self._host.planned()
            return
        finally:
            await self.store.count_poll(job.id, fence=self._host.fence(job.id))
        self._backoff.reset(job.id)
        # A moving average of how long reads take: the planner reads that much earlier.
        self.planner.latency += 0.1 * (self._clock() - asked - self.planner.latency)
        await self.apply(job, task, heard="read")

    async def apply(self, job: Job, task: Task, *, heard: str) -> None:
        """Act on what the API said about the job's task (``heard`` from a create, a read or a
        webhook)."""
        now = self._clock()
        match task.status:
            case TaskStatus.COMPLETED:
                if not task.generated:
                    await self._host.fail(job, "the video service finished without a video")
                    return
                watch = self.planner.forget(job.id)
                completed = await self.store.transition(
                    job.id,
                    JobState.COMPLETED,
                    now,
                    fence=self._host.fence(job.id),
                    result_url=task.generated[0],
                )
                if completed is None:
                    return
                self._ran(completed)
                self._learn(completed, watch, heard)
                self._host.tell(completed)
                await self._host.completed(completed)
            case TaskStatus.FAILED:
                await self._host.fail(job, "the video service could not generate this video")
            case _:
                if task.status is TaskStatus.UNKNOWN and heard != "create":
                    log.warning("job %s: unknown task status %r", job.id, task.raw_status)
                if task.status is TaskStatus.IN_PROGRESS and job.state is JobState.SUBMITTED:
                    running = await self.store.transition(
                        job.id, JobState.RUNNING, now, fence=self._host.fence(job.id)
                    )
                    if running is not None:
                        job = running
                        self._host.tell(running)
                watch = self.watch_of(job)
                if heard == "read":
                    watch.last_read, watch.reads = now, watch.reads + 1
                self.planner.plan(watch, now)
                self._host.planned()

    def _ran(self, job: Job) -> None:
        if self._on_run_time is None or job.completed_at is None or job.submitted_at is None:
            return
        # From our submit to our hearing of it: after a restart, the time we were down too.
        self._on_run_time(job.completed_at - job.submitted_at)

    def _learn(self, job: Job, watch: Watch | None, heard: str) -> None:
        if job.completed_at is None or job.submitted_at is None:
            return
        seconds = job.completed_at - job.submitted_at
        since: float | None = None  # a webhook (or the create's answer) says when: exactly
        if heard == "read":
            if watch is None or not watch.last_read_known:
                return  # read first after a restart: when it finished is not known
            since = watch.last_read - job.submitted_at  # the last read that saw it running
        resolution, duration = job.request.resolution, job.request.duration
        draw = random.Random(job.id).random()  # the same for a job, run after run
        if self.model.observe(resolution, duration, seconds, since=since, draw=draw):
            self.planner.replan(resolution, self._clock())  # the first completions, and shifts
            self._host.planned()
