"""The tracker: one scheduler that submits, polls, reconciles and delivers every job.

There is no sleeping task per job. Each unfinished job has at most one pending *action*
(submit, poll, reconcile, deliver) with a due time in a heap; one loop pops what is due and runs
it on a bounded pool. Each action reads the job from the store, writes its transition *before*
the side effect that depends on it, and schedules the job's next action. So after a crash the
database alone says what to do next, and :meth:`Tracker.start` resumes every unfinished job.

Polling is adaptive: the first read comes shortly before the expected finish (learned from
recent completions of the same duration and resolution), then reads tighten to ``lag_target``
apart, and back off when the task runs long or the API struggles. With webhooks on, a
notification wakes the job at once and polling is only a slow fallback.

A submit whose outcome is unknown (the POST may have reached the API) is never repeated blindly:
the job stays ``submitting`` and is *reconciled* through the list operation: a task the API
lists that no job owns is adopted when exactly one job is waiting for one; if none appears the
job is submitted again; if it is ambiguous the job fails and is refunded (never a second paid task).
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import logging
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from core.jobs import Job, JobState
from core.media import DownloadedVideo, MediaDownloadError, download_video
from core.store import AuditRecord, Store
from core.wan import (
    Task,
    TaskStatus,
    WanClient,
    WanError,
    WanNotFound,
    WanOperatorError,
    WanSubmitUnknown,
    WanUserError,
)
from core.webhooks import token_digest

log = logging.getLogger(__name__)


API_POOL = "api"
DELIVERY_POOL = "delivery"


class Action(enum.Enum):
    SUBMIT = "submit"
    POLL = "poll"
    RECONCILE = "reconcile"
    DELIVER = "deliver"


class VideoSource:
    """What a delivery callback gets: the result URL and a way to stream it to a temp file."""

    def __init__(self, tracker: Tracker, job: Job) -> None:
        self._tracker = tracker
        self.job = job
        self.url = job.result_url or ""

    async def download(self, max_bytes: int) -> DownloadedVideo:
        """Download the result (raises core.media errors). Refreshes an expired signed URL once."""
        try:
            return await self._tracker._download(self.url, max_bytes, self.job.id)
        except MediaDownloadError as exc:
            if not exc.expired or self.job.task_id is None:
                raise
            task = await self._tracker.client.get(self.job.task_id)
            if not task.generated:
                raise
            self.url = task.generated[0]
            return await self._tracker._download(self.url, max_bytes, self.job.id)

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


class JobEvents(Protocol):
    """What the Discord side registers: told of every change, and asked to deliver."""

    async def job_changed(self, job: Job) -> None:
        """A job moved to a new state (update its status message; tell the user on failure)."""

    async def deliver(self, job: Job, video: VideoSource) -> int:
        """Post the result; return the delivered message's id. Must be idempotent per job."""
        ...


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    lag_target: float = 3.0  # how soon after completion we want to notice it (seconds)
    default_expected: Callable[[int, str], float] = field(
        default=lambda duration, resolution: 60.0 + 12.0 * duration
    )
    first_poll_fraction: float = 0.85  # first read at this share of the expected run time
    webhook_fallback_factor: float = 2.0  # with webhooks, first read at expected × this
    webhook_poll_interval: float = 60.0
    max_poll_interval: float = 60.0
    error_backoff_base: float = 5.0
    error_backoff_cap: float = 120.0
    reconcile_grace: float = 30.0  # let the API's list catch up before deciding a POST was lost
    delivery_attempts: int = 8
    delivery_backoff_base: float = 5.0
    delivery_backoff_cap: float = 600.0
    download_timeout: float = 300.0
    concurrency: int = 32  # actions that call the API at once (the rate limiter paces them)
    delivery_concurrency: int = 8  # deliveries at once (downloads and Discord uploads)
    history_size: int = 20
    notify_window: float = 7 * 86_400.0  # re-send endings not told for up to a week


@dataclass(order=True, slots=True)
class _Entry:
    due: float
    seq: int
    job_id: str = field(compare=False)
    action: Action = field(compare=False)


class Tracker:
    def __init__(
        self,
        store: Store,
        client: WanClient,
        session: aiohttp.ClientSession,
        *,
        webhooks: bool = False,
        config: TrackerConfig | None = None,
        clock: Callable[[], float] = time.time,
        download_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self._session = session
        self._webhooks = webhooks
        self.config = config or TrackerConfig()
        self._clock = clock
        self._download_dir = download_dir
        self._events: JobEvents | None = None
        self._heaps: dict[str, list[_Entry]] = {API_POOL: [], DELIVERY_POOL: []}
        self._capacity = {
            API_POOL: self.config.concurrency,
            DELIVERY_POOL: self.config.delivery_concurrency,
        }
        self._busy = dict.fromkeys(self._capacity, 0)
        self._pending: dict[str, _Entry] = {}  # job id → its one live heap entry
        self._running: set[str] = set()
        self._rewake: set[str] = set()
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._run_times: dict[tuple[int, str], deque[float]] = {}
        self._seeded: set[tuple[int, str]] = set()
        self._errors_in_a_row: dict[str, int] = defaultdict(int)
        self._submitting_now: set[str] = set()
        self._notices: dict[str, asyncio.Task[None]] = {}  # job id → its latest notice

    # ----------------------------------------------------------------- lifecycle

    def set_events(self, events: JobEvents) -> None:
        self._events = events

    async def start(self) -> int:
        """Resume every unfinished job from the store; return how many were scheduled."""
        jobs = await self.store.unfinished_states()  # ids and states only: cheap for 10,000s
        now = self._clock()
        for job_id, state in jobs:
            self._resume(job_id, state, now)
        for ended in await self.store.unnotified_endings(now - self.config.notify_window):
            await self._changed(ended)  # told before the restart? the nonce avoids a repeat
        self._loop_task = asyncio.create_task(self._run(), name="tracker")
        self._loop_task.add_done_callback(_log_crash)
        log.info("tracker started with %d unfinished job(s)", len(jobs))
        return len(jobs)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop scheduling and cancel running actions; their jobs resume on the next start.

        Notices already under way get ``grace`` seconds to reach Discord first.
        """
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        notices = list(self._notices.values())
        if notices:
            _done, late = await asyncio.wait(notices, timeout=grace)
            for notice in late:
                notice.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        log.info("tracker stopped")

    def stats(self) -> dict[str, Any]:
        return {"scheduled": len(self._pending), "running": len(self._running)}

    def _schedule_resumed(self, job: Job, now: float) -> None:
        self._resume(job.id, job.state, now)

    def _resume(self, job_id: str, state: JobState, now: float) -> None:
        """Schedule what a job in ``state`` needs next (the database says; nothing else)."""
        match state:
            case JobState.RESERVED:
                self.schedule(job_id, Action.SUBMIT, now)
            case JobState.SUBMITTING:
                self.schedule(job_id, Action.RECONCILE, now)
            case JobState.SUBMITTED | JobState.RUNNING:
                self.schedule(job_id, Action.POLL, now)
            case JobState.COMPLETED:
                self.schedule(job_id, Action.DELIVER, now)
            case _:
                pass

    # ----------------------------------------------------------------- scheduling

    def schedule(self, job_id: str, action: Action, due: float) -> None:
        """Set the job's one pending action (replacing any other)."""
        entry = _Entry(due, next(self._seq), job_id, action)
        self._pending[job_id] = entry
        heap = self._heaps[_pool(action)]
        heapq.heappush(heap, entry)
        if heap[0] is entry:
            self._wakeup.set()

    def enqueue(self, job: Job) -> None:
        """A freshly accepted job: submit it now."""
        self.schedule(job.id, Action.SUBMIT, self._clock())

    def wake(self, job_id: str, action: Action = Action.POLL) -> None:
        """Act on the job now (a webhook said it changed)."""
        if job_id in self._running:
            self._rewake.add(job_id)
            return
        current = self._pending.get(job_id)
        if current is not None and current.action is not Action.POLL:
            action = current.action  # never turn a pending submit/deliver into a poll
        self.schedule(job_id, action, self._clock())

    def forget(self, job_id: str) -> None:
        self._pending.pop(job_id, None)

    async def _run(self) -> None:
        # Two pools, so that deliveries (Discord) never wait behind API calls held up by the
        # API's rate limit, and the other way round. A pool at capacity is simply not popped.
        while True:
            now = self._clock()
            next_due: float | None = None
            for pool, heap in self._heaps.items():
                while heap and heap[0].due <= now and self._busy[pool] < self._capacity[pool]:
                    self._start(heapq.heappop(heap), pool)
                if heap and self._busy[pool] < self._capacity[pool]:
                    due = heap[0].due
                    next_due = due if next_due is None else min(next_due, due)
            timeout = None if next_due is None else max(next_due - now, 0.0)
            self._wakeup.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _start(self, entry: _Entry, pool: str) -> None:
        if self._pending.get(entry.job_id) is not entry:
            return  # superseded
        del self._pending[entry.job_id]
        if entry.job_id in self._running:
            self._rewake.add(entry.job_id)  # acted on again when its current action ends
            return
        self._busy[pool] += 1
        self._running.add(entry.job_id)
        task = asyncio.create_task(self._perform(entry, pool), name=f"job-{entry.job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_crash)

    async def _perform(self, entry: _Entry, pool: str) -> None:
        try:
            job = await self.store.get_job(entry.job_id)
            if job is None or job.state.is_finished:
                return
            match entry.action:
                case Action.SUBMIT:
                    await self._submit(job)
                case Action.POLL:
                    await self._poll(job)
                case Action.RECONCILE:
                    await self._reconcile(job)
                case Action.DELIVER:
                    await self._deliver(job)
        finally:
            self._running.discard(entry.job_id)
            self._busy[pool] -= 1
            self._wakeup.set()  # a slot is free
            if entry.job_id in self._rewake:
                self._rewake.discard(entry.job_id)
                if entry.job_id not in self._pending:
                    latest = await self.store.get_job(entry.job_id)
                    if latest is not None and not latest.state.is_finished:
                        self._schedule_resumed(latest, self._clock())

    # ----------------------------------------------------------------- transitions

    async def _changed(self, job: Job) -> None:
        """Tell the Discord side, without making the scheduler wait for Discord.

        Notices of one job run one after another, in order; a failed or cancelled job is marked
        as told only once the notice went out (otherwise :meth:`start` sends it again).
        """
        if self._events is None:
            return
        previous = self._notices.get(job.id)
        notice = asyncio.create_task(self._notify_after(previous, job), name=f"notice-{job.id}")
        self._notices[job.id] = notice
        notice.add_done_callback(lambda done: self._notice_done(job.id, done))

    async def notices_sent(self) -> None:
        """Wait until every notice under way has been handled (tests, shutdown)."""
        while self._notices:
            await asyncio.wait(list(self._notices.values()))

    def _notice_done(self, job_id: str, notice: asyncio.Task[None]) -> None:
        if self._notices.get(job_id) is notice:
            del self._notices[job_id]

    async def _notify_after(self, previous: asyncio.Task[None] | None, job: Job) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        assert self._events is not None
        try:
            await self._events.job_changed(job)
        except Exception:
            log.exception("job %s: telling Discord about %s failed", job.id, job.state.value)
            return
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            await self.store.mark_user_notified(job.id, self._clock())

    async def fail(self, job: Job, reason: str, *, state: JobState = JobState.FAILED) -> Job | None:
        """Fail (or cancel) a job: refunded once, forgotten, and the user told."""
        updated = await self.store.transition(job.id, state, self._clock(), error=reason[:500])
        self.forget(job.id)
        if updated is not None:
            log.info("job %s %s: %s", job.id, state.value, reason)
            await self._changed(updated)
        return updated

    async def cancel(
        self, job_id: str, reason: str, audit: AuditRecord | None = None
    ) -> Job | None:
        """Stop tracking a job and refund it. The API has no cancel: its task may still run."""
        updated = await self.store.transition(
            job_id, JobState.CANCELLED, self._clock(), audit=audit, error=reason[:500]
        )
        self.forget(job_id)
        if updated is not None:
            log.info("job %s cancelled: %s", job_id, reason)
            await self._changed(updated)
        return updated

    async def on_webhook(self, token: str, task: Task, verified: bool) -> bool:
        """The webhook receiver's handler: False when the token belongs to no job."""
        job = await self.store.job_by_webhook_token_hash(token_digest(token))
        if job is None:
            return False
        if not job.state.is_finished:
            await self.notify(job, task, verified)
        return True

    def _past_deadline(self, job: Job) -> bool:
        return self._clock() >= job.deadline_at

    # ----------------------------------------------------------------- submit

    async def _submit(self, job: Job) -> None:
        if job.state is not JobState.RESERVED:
            self._schedule_resumed(job, self._clock())
            return
        if self._past_deadline(job):
            await self.fail(job, "the video service did not accept the job in time")
            return
        submitting = await self.store.transition(
            job.id, JobState.SUBMITTING, self._clock(), submit_attempts=job.submit_attempts + 1
        )
        if submitting is None:
            return  # cancelled meanwhile
        self._submitting_now.add(job.id)
        try:
            task = await self.client.create(job.request)
        except WanUserError as exc:
            await self.fail(submitting, f"the video service refused the request: {exc}")
            return
        except WanOperatorError as exc:
            log.error("job %s: the API refused our credentials or credits: %s", job.id, exc)
            await self.fail(
                submitting, "the video service is not available (the operator was told)"
            )
            return
        except WanSubmitUnknown as exc:
            log.warning("job %s: submit outcome unknown (%s); reconciling", job.id, exc)
            self.schedule(job.id, Action.RECONCILE, self._clock() + self.config.reconcile_grace)
            return
        except WanError as exc:
            # The API certainly did not take it: back to reserved and retry later.
            back = await self.store.transition(job.id, JobState.RESERVED, self._clock())
            if back is not None:
                delay = self._error_delay(job.id)
                log.warning("job %s: submit failed (%s); retrying in %.0fs", job.id, exc, delay)
                self.schedule(job.id, Action.SUBMIT, self._clock() + delay)
            return
        finally:
            self._submitting_now.discard(job.id)
        await self._accepted(submitting, task)

    async def _accepted(self, job: Job, task: Task, *, listed: bool = False) -> None:
        self._errors_in_a_row.pop(job.id, None)
        submitted = await self.store.transition(
            job.id, JobState.SUBMITTED, self._clock(), task_id=task.task_id
        )
        if submitted is None:
            log.warning("job %s: task %s accepted after the job ended", job.id, task.task_id)
            return
        log.info("job %s: submitted as task %s", job.id, task.task_id)
        await self._changed(submitted)
        if listed:
            # A list item carries no result URLs: read the task itself.
            self.schedule(job.id, Action.POLL, self._clock())
        else:
            await self._apply(submitted, task, from_poll=False)

    # ----------------------------------------------------------------- reconcile

    async def _reconcile(self, job: Job) -> None:
        if job.state is not JobState.SUBMITTING:
            self._schedule_resumed(job, self._clock())
            return
        now = self._clock()
        waited = now - (job.submitting_at or now)
        if waited < self.config.reconcile_grace:
            self.schedule(job.id, Action.RECONCILE, now + self.config.reconcile_grace - waited)
            return
        try:
            listed = await self.client.list_tasks()
        except WanError as exc:
            delay = self._error_delay(job.id)
            log.warning(
                "job %s: cannot list tasks to reconcile (%s); again in %.0fs", job.id, exc, delay
            )
            self.schedule(job.id, Action.RECONCILE, self._clock() + delay)
            return
        known = await self.store.known_task_ids(task.task_id for task in listed)
        orphans = [task for task in listed if task.task_id not in known]
        waiting = [
            job_id
            for job_id in await self.store.ids_in_state(JobState.SUBMITTING)
            if job_id not in self._submitting_now
        ]
        if not orphans:
            # No unowned task exists: the POST never created one. Submitting again is safe.
            back = await self.store.transition(job.id, JobState.RESERVED, self._clock())
            if back is not None:
                log.info("job %s: no task was created; submitting again", job.id)
                self.schedule(job.id, Action.SUBMIT, self._clock())
            return
        if len(orphans) == 1 and waiting == [job.id]:
            log.info("job %s: adopting unowned task %s", job.id, orphans[0].task_id)
            await self._accepted(job, orphans[0], listed=True)
            return
        log.warning(
            "job %s: cannot tell which of %d unowned task(s) is its own (%d job(s) waiting): %s",
            job.id,
            len(orphans),
            len(waiting),
            ", ".join(task.task_id for task in orphans),
        )
        await self.fail(job, "the video service did not confirm the job; you were not charged")

    # ----------------------------------------------------------------- poll

    async def _poll(self, job: Job) -> None:
        if not job.state.is_in_flight or job.task_id is None:
            self._schedule_resumed(job, self._clock())
            return
        if self._past_deadline(job):
            await self.fail(job, "the video took too long to generate")
            return
        try:
            task = await self.client.get(job.task_id)
        except WanNotFound:
            await self.fail(job, "the video service lost the task")
            return
        except WanOperatorError as exc:
            log.error("job %s: the API refused our credentials: %s", job.id, exc)
            self.schedule(job.id, Action.POLL, self._clock() + self._error_delay(job.id))
            return
        except WanError as exc:
            delay = self._error_delay(job.id)
            log.warning("job %s: poll failed (%s); again in %.0fs", job.id, exc, delay)
            self.schedule(job.id, Action.POLL, min(self._clock() + delay, job.deadline_at))
            return
        finally:
            await self.store.count_poll(job.id)
        self._errors_in_a_row.pop(job.id, None)
        await self._apply(job, task, from_poll=True)

    async def notify(self, job: Job, task: Task, verified: bool) -> None:
        """A webhook said the task changed. Unverified bodies only prompt a read."""
        if job.state is JobState.SUBMITTING and job.task_id is None and verified:
            if job.id not in self._submitting_now:
                await self._accepted(job, task)
            return
        if job.task_id is not None and task.task_id != job.task_id:
            log.warning("job %s: webhook for another task %s ignored", job.id, task.task_id)
            return
        if verified and job.state.is_in_flight and job.id not in self._running:
            self.forget(job.id)
            await self._apply(job, task, from_poll=False)
            return
        self.wake(job.id, Action.RECONCILE if job.state is JobState.SUBMITTING else Action.POLL)

    async def _apply(self, job: Job, task: Task, *, from_poll: bool) -> None:
        now = self._clock()
        match task.status:
            case TaskStatus.COMPLETED:
                if not task.generated:
                    await self.fail(job, "the video service finished without a video")
                    return
                completed = await self.store.transition(
                    job.id, JobState.COMPLETED, now, result_url=task.generated[0]
                )
                if completed is None:
                    return
                self._learn(completed)
                await self._changed(completed)
                self.schedule(job.id, Action.DELIVER, self._clock())
            case TaskStatus.FAILED:
                await self.fail(job, "the video service could not generate this video")
            case _:
                if task.status is TaskStatus.UNKNOWN:
                    log.warning("job %s: unknown task status %r", job.id, task.raw_status)
                if task.status is TaskStatus.IN_PROGRESS and job.state is JobState.SUBMITTED:
                    running = await self.store.transition(job.id, JobState.RUNNING, now)
                    if running is not None:
                        job = running
                        await self._changed(running)
                self.schedule(job.id, Action.POLL, await self._next_poll(job))

    # ----------------------------------------------------------------- timing

    async def expected_run_time(self, duration: int, resolution: str) -> float:
        key = (duration, resolution)
        if key not in self._seeded:
            self._seeded.add(key)
            history = await self.store.recent_run_times(
                resolution, duration, self.config.history_size
            )
            self._run_times.setdefault(key, deque(maxlen=self.config.history_size)).extend(
                reversed(history)
            )
        samples = self._run_times.get(key)
        if samples:
            return statistics.median(samples)
        return self.config.default_expected(duration, resolution)

    def _learn(self, job: Job) -> None:
        if job.completed_at is None or job.submitted_at is None:
            return
        key = (job.request.duration, job.request.resolution)
        self._run_times.setdefault(key, deque(maxlen=self.config.history_size)).append(
            job.completed_at - job.submitted_at
        )

    async def _next_poll(self, job: Job) -> float:
        cfg = self.config
        now = self._clock()
        started = job.submitted_at or now
        expected = await self.expected_run_time(job.request.duration, job.request.resolution)
        elapsed = now - started
        if self._webhooks:
            first = started + expected * cfg.webhook_fallback_factor
            due = first if now < first else now + cfg.webhook_poll_interval
        elif elapsed < expected * cfg.first_poll_fraction:
            due = started + expected * cfg.first_poll_fraction
        elif elapsed < expected * 1.5:
            due = now + cfg.lag_target
        else:
            # Running long: back off gently, in proportion to how long it has run.
            due = now + min(max(cfg.lag_target, (elapsed - expected) / 4), cfg.max_poll_interval)
        return min(max(due, now), job.deadline_at)

    def _error_delay(self, job_id: str) -> float:
        self._errors_in_a_row[job_id] += 1
        count = self._errors_in_a_row[job_id]
        delay: float = self.config.error_backoff_base * 2.0 ** (count - 1)
        return min(delay, self.config.error_backoff_cap)

    # ----------------------------------------------------------------- deliver

    async def _download(self, url: str, max_bytes: int, job_id: str) -> DownloadedVideo:
        return await download_video(
            self._session,
            url,
            allowed_url=url,
            max_bytes=max_bytes,
            dest_dir=self._download_dir,
            timeout=self.config.download_timeout,
            name=f"wan-{job_id}",
        )

    async def _deliver(self, job: Job) -> None:
        if job.state is not JobState.COMPLETED:
            self._schedule_resumed(job, self._clock())
            return
        if self._events is None:
            self.schedule(job.id, Action.DELIVER, self._clock() + self.config.delivery_backoff_base)
            return
        try:
            message_id = await self._events.deliver(job, VideoSource(self, job))
        except Exception as exc:
            attempts = await self.store.count_delivery_attempt(job.id, f"delivery: {exc!r}"[:500])
            if attempts >= self.config.delivery_attempts:
                log.exception("job %s: delivery failed %d times; giving up", job.id, attempts)
                await self.fail(job, "the video was made but could not be posted")
                return
            delay = min(
                self.config.delivery_backoff_base * 3 ** (attempts - 1),
                self.config.delivery_backoff_cap,
            )
            log.warning(
                "job %s: delivery failed (%r); retry %d in %.0fs", job.id, exc, attempts, delay
            )
            self.schedule(job.id, Action.DELIVER, self._clock() + delay)
            return
        delivered = await self.store.transition(
            job.id, JobState.DELIVERED, self._clock(), delivered_message_id=message_id
        )
        if delivered is not None:
            log.info("job %s: delivered as message %s", job.id, message_id)
            await self._changed(delivered)


def _pool(action: Action) -> str:
    return DELIVERY_POOL if action is Action.DELIVER else API_POOL


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s crashed", task.get_name(), exc_info=task.exception())
