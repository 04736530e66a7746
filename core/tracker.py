"""The tracker: the job workflow - submit, read, reconcile, deliver - on one scheduler.

There is no sleeping task per job. Each unfinished job has at most one pending *action* in one of
the scheduler's lanes (``core.scheduling``); the scheduler starts what is due within the API
budget and two bounded pools. Each action reads the job from the store, writes its transition
*before* the side effect that depends on it, and queues the job's next action. So after a crash
the database alone says what to do next, and :meth:`Tracker.start` resumes every unfinished job.

The API budget (``WAN_MAX_RPS``/``WAN_BURST``) is spent in this order: reads the poll planner
(``core.polling``) finds worth their cost, lists (one serves every job reconciling), creates,
then the reads that keep every task within ``TRACKER_LAG_SECONDS`` of being noticed; while
creates or lists wait, reads take at most their share, so those always have headroom. The
run-time model (``core.runtimes``) learns from every completion, re-plans the reads of tasks in
flight when it moves, and gives status messages an ETA once it has earned one. A 429 holds off
only the kind of call it refused.

Any unexpected exception in a job's action fails the job (refunded, the member told): a job is
never left stuck. A create of unknown outcome is reconciled (``core.reconcile``), never repeated
blindly.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from core.deliveries import Deliveries, VideoSource
from core.jobs import Job, JobState
from core.notices import JobEvents, Notices, Progress
from core.polling import PollPlanner, Watch
from core.ratelimit import Pace
from core.reads import Reads
from core.runtimes import RunTimeModel
from core.scheduling import AllGates, Backoff, DueQueue, Hold, Lane, Pool, Scheduler, Share
from core.store import AuditRecord, Store
from core.submissions import Submissions
from core.tracker_config import TrackerConfig, tracker_config
from core.wan import (
    CREATE,
    LIST,
    READ,
    Task,
    WanClient,
)
from core.webhooks import token_digest

__all__ = ["JobEvents", "Progress", "Tracker", "TrackerConfig", "VideoSource", "tracker_config"]

log = logging.getLogger(__name__)

UNEXPECTED = "something went wrong on our side; you were not charged"


class Action(enum.Enum):
    SUBMIT = "submit"
    POLL = "poll"
    RECONCILE = "reconcile"
    DELIVER = "deliver"


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
        webhook_url: Callable[[Job], str | None] | None = None,
        on_run_time: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        cfg = self.config = config or TrackerConfig()
        self._clock = clock
        self.model = RunTimeModel(trust_after=cfg.trust_after, window=cfg.model_window)
        self.planner = PollPlanner(
            self.model,
            lag=cfg.lag_target,
            relative_lag=cfg.relative_lag,
            read_cost=cfg.read_cost,
            rare_chance=cfg.rare_chance,
            webhooks=webhooks,
            webhook_interval=cfg.webhook_poll_interval,
        )
        self._queues: dict[Action, DueQueue[str, None]] = {
            action: DueQueue() for action in (Action.SUBMIT, Action.RECONCILE, Action.DELIVER)
        }
        self._scheduler = Scheduler(self._lanes(), clock=clock)
        self._notices = Notices(self._mark_told)
        self._running: set[str] = set()
        self._rewake: set[str] = set()
        self._backoff = Backoff(cfg.error_backoff_base, cfg.error_backoff_cap)
        self.submissions = Submissions(
            self,
            store,
            client,
            cfg,
            webhooks=webhooks,
            webhook_url=webhook_url,
            clock=clock,
            backoff=self._backoff,
            tasks=self._scheduler.tasks,
        )
        self.reads = Reads(
            self,
            store,
            client,
            self.planner,
            clock=clock,
            backoff=self._backoff,
            on_run_time=on_run_time,
        )
        self.deliveries = Deliveries(
            self, store, client, session, cfg, self._notices, clock=clock, download_dir=download_dir
        )
        self._started = False

    def _lanes(self) -> list[Lane[str, Any]]:
        cfg = self.config
        api, deliveries = Pool("api", cfg.concurrency), Pool("delivery", cfg.delivery_concurrency)
        # Reconciles take turns on one listing: one at a time, so they never fill the API pool.
        reconciling = Pool("reconcile", 1)
        total = Pace(cfg.max_rps, cfg.burst)
        # Reads take at most their share while creates or lists wait, else the whole budget.
        share = Share(Pace(cfg.read_rps, cfg.burst), self._others_waiting)
        reads = AllGates(share, total, self._hold(READ))

        def start(action: Action) -> Callable[[str, Any], Coroutine[Any, Any, None] | None]:
            return lambda job_id, _value: self._begin(job_id, action)

        creates = AllGates(total, self._hold(CREATE))
        # One listing serves every reconcile due (most make no request): not charged per start;
        # the listing itself waits in the client's limiter like any request.
        lists = self._hold(LIST)
        queues = self._queues
        return [  # in priority order
            Lane("read", self.planner.valuable, api, start(Action.POLL), reads),
            Lane(
                "reconcile", queues[Action.RECONCILE], reconciling, start(Action.RECONCILE), lists
            ),
            Lane("submit", queues[Action.SUBMIT], api, start(Action.SUBMIT), creates),
            Lane("read-lag", self.planner.guaranteed, api, start(Action.POLL), reads),
            Lane("deliver", queues[Action.DELIVER], deliveries, start(Action.DELIVER)),
        ]

    def _hold(self, kind: str) -> Hold:
        return Hold(lambda: self.client.held_for(kind))

    def _others_waiting(self, now: float) -> bool:
        """Creates or lists are due and not held off by the API."""
        for action, kind in ((Action.SUBMIT, CREATE), (Action.RECONCILE, LIST)):
            due = self._queues[action].first_due()
            if due is not None and due <= now and self.client.held_for(kind) <= 0.0:
                return True
        return False

    # ----------------------------------------------------------------- lifecycle

    def set_events(self, events: JobEvents) -> None:
        self._notices.events = events

    async def start(self) -> int:
        """Resume every unfinished job from the store; return how many were scheduled."""
        # Enough of the latest completions to fill the model's window of every kind, mostly.
        history = await self.store.recent_completions(18 * self.config.model_window)
        self.model.load(reversed(history))
        jobs = await self.store.unfinished_states()  # ids and states only: cheap for 10,000s
        now = self._clock()
        for job_id, state in jobs:
            self._resume(job_id, state, now)
        for ended in await self.store.unnotified_endings(now - self.config.notify_window):
            self._notices.send(ended)  # told before the restart? the nonce avoids a repeat
        self._scheduler.start("tracker")
        self._started = True
        log.info("tracker started with %d unfinished job(s)", len(jobs))
        return len(jobs)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop scheduling and cancel running actions; their jobs resume on the next start.

        Notices already under way get ``grace`` seconds to reach Discord first.
        """
        await self._scheduler.stop()  # its runs, and the notices of a long hold
        await self._notices.close(grace)
        if self._started:
            log.info("tracker stopped")
        self._started = False

    async def notices_sent(self) -> None:
        """Wait until every notice under way has been handled (tests, shutdown)."""
        await self._notices.sent()

    def stats(self) -> dict[str, Any]:
        scheduled = self.planner.pending + sum(len(queue) for queue in self._queues.values())
        return {"scheduled": scheduled, "running": len(self._running)}

    def video_source(self, job: Job) -> VideoSource:
        """The result of a completed job, as a delivery gets it."""
        return self.deliveries.source(job)

    def progress(self, job: Job) -> Progress:
        """What the job's status message shows besides its state."""
        if job.state.is_in_flight and job.submitted_at is not None:
            estimate = self.model.estimate(job.request.resolution, job.request.duration)
            return Progress(job.submitted_at, estimate.median if estimate.trusted else None)
        if job.state is JobState.RESERVED:
            due = self._queues[Action.SUBMIT].due(job.id)
            held = self.submissions.waiting_until(job, due)
            if held is not None:
                return Progress(job.created_at, None, *held)
        return Progress(job.created_at)

    # ----------------------------------------------------------------- scheduling

    def enqueue(self, job: Job) -> None:
        """A freshly accepted job: submit it now."""
        self._schedule(job.id, Action.SUBMIT, self._clock())

    def wake(self, job_id: str) -> None:
        """Act on the job now (a webhook said it changed): its pending action, or a read."""
        if job_id in self._running:
            self._rewake.add(job_id)
            return
        for queue in self._queues.values():
            if job_id in queue:
                queue.put(job_id, self._clock(), None)
                self._scheduler.wake()
                return
        watch = self.planner.get(job_id) or Watch(job_id)
        self.planner.read_at(watch, self._clock())
        self._scheduler.wake()

    def _schedule(self, job_id: str, action: Action, due: float) -> None:
        """Set the job's one pending action (replacing any other)."""
        self._unqueue(job_id)
        self._queues[action].put(job_id, due, None)
        self._scheduler.wake()

    def _unqueue(self, job_id: str) -> None:
        for queue in self._queues.values():
            queue.remove(job_id)
        self.planner.unqueue(job_id)

    def _forget(self, job_id: str) -> None:
        self._unqueue(job_id)
        self.planner.forget(job_id)
        self._backoff.reset(job_id)
        self.submissions.forget(job_id)

    def _resume(self, job_id: str, state: JobState, now: float) -> None:
        """Queue what a job in ``state`` needs next (the database says; nothing else)."""
        match state:
            case JobState.RESERVED:
                self._schedule(job_id, Action.SUBMIT, now)
            case JobState.SUBMITTING:
                self._schedule(job_id, Action.RECONCILE, now)
            case JobState.SUBMITTED | JobState.RUNNING:
                self._unqueue(job_id)
                self.planner.resume(job_id, now)
                self._scheduler.wake()
            case JobState.COMPLETED:
                self._schedule(job_id, Action.DELIVER, now)
            case _:
                self._forget(job_id)

    def _begin(self, job_id: str, action: Action) -> Coroutine[Any, Any, None] | None:
        if job_id in self._running:
            self._rewake.add(job_id)  # acted on again when its current action ends
            return None
        self._running.add(job_id)
        return self._guarded(job_id, action, self._perform(job_id, action))

    async def _guarded(self, job_id: str, action: Action, work: Coroutine[Any, Any, None]) -> None:
        """Run one action of a job; whatever it raises, the job does not stay stuck."""
        try:
            await work
        except Exception:
            log.exception("job %s: %s failed unexpectedly; failing the job", job_id, action.value)
            try:
                job = await self.store.get_job(job_id)
                if job is not None and not job.state.is_finished:
                    await self.fail(job, UNEXPECTED)
            except Exception:
                log.exception("job %s: could not fail it either; trying again later", job_id)
                self._schedule(job_id, action, self._clock() + self.config.error_backoff_cap)
        finally:
            self._running.discard(job_id)
            if job_id in self._rewake:
                self._rewake.discard(job_id)
                latest = await self.store.get_job(job_id)
                if latest is not None and not latest.state.is_finished:
                    self._resume(latest.id, latest.state, self._clock())

    async def _perform(self, job_id: str, action: Action) -> None:
        job = await self.store.get_job(job_id)
        if job is None or job.state.is_finished:
            self._forget(job_id)
            return
        match action:
            case Action.SUBMIT:
                await self.submissions.submit(job)
            case Action.POLL:
                await self.reads.poll(job)
            case Action.RECONCILE:
                await self.submissions.reconcile(job)
            case Action.DELIVER:
                await self.deliveries.deliver(job)

    # ----------------------------------------------------------------- endings and notices

    async def _mark_told(self, job_id: str) -> None:
        await self.store.mark_user_notified(job_id, self._clock())

    async def fail(self, job: Job, reason: str) -> Job | None:
        """Fail a job: refunded once, forgotten, and the user told."""
        return await self._end(job.id, JobState.FAILED, reason)

    async def cancel(
        self, job_id: str, reason: str, audit: AuditRecord | None = None
    ) -> Job | None:
        """Stop tracking a job and refund it. The API has no cancel: its task may still run."""
        return await self._end(job_id, JobState.CANCELLED, reason, audit)

    async def _end(
        self, job_id: str, state: JobState, reason: str, audit: AuditRecord | None = None
    ) -> Job | None:
        updated = await self.store.transition(
            job_id, state, self._clock(), audit=audit, error=reason[:500]
        )
        self._forget(job_id)
        if updated is not None:
            log.info("job %s %s: %s", job_id, state.value, reason)
            self._notices.send(updated)
        return updated

    # ----------------------------------------------------------------- for the actions

    def submit_at(self, job_id: str, due: float) -> None:
        self._schedule(job_id, Action.SUBMIT, due)

    def reconcile_at(self, job_id: str, due: float) -> None:
        self._schedule(job_id, Action.RECONCILE, due)

    def resume(self, job: Job) -> None:
        self._resume(job.id, job.state, self._clock())

    def tell(self, job: Job) -> None:
        self._notices.send(job)

    def queued_submits(self) -> list[str]:
        return list(self._queues[Action.SUBMIT])

    def deliver_at(self, job_id: str, due: float) -> None:
        self._schedule(job_id, Action.DELIVER, due)

    def planned(self) -> None:
        self._scheduler.wake()

    async def accepted(self, job: Job, task: Task, *, listed: bool) -> None:
        await self.reads.accepted(job, task, listed=listed)

    # ----------------------------------------------------------------- webhooks

    async def on_webhook(self, token: str, task: Task, verified: bool) -> bool:
        """The webhook receiver's handler: False when the token belongs to no job."""
        job = await self.store.job_by_webhook_token_hash(token_digest(token))
        if job is None:
            return False
        if not job.state.is_finished:
            await self.notify(job, task, verified)
        return True

    async def notify(self, job: Job, task: Task, verified: bool) -> None:
        """A webhook said the task changed. Unverified bodies only prompt one read, and only
        when they claim the task ended: at most one read per job when webhooks arrive."""
        if job.task_id is None:
            # The job's own URL names the task: the evidence a create of unknown outcome needs.
            if self.submissions.evidence(job, task.task_id):
                self.wake(job.id)
            return
        if task.task_id != job.task_id:
            log.warning("job %s: webhook for another task %s ignored", job.id, task.task_id)
            return
        if verified and job.state.is_in_flight and job.id not in self._running:
            self._running.add(job.id)
            await self._guarded(job.id, Action.POLL, self.reads.apply(job, task, heard="webhook"))
        elif task.status.is_final:
            self.wake(job.id)
