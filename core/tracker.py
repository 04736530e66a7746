"""The tracker: the job workflow - submit, read, reconcile, deliver - on one scheduler.

There is no sleeping task per job. Each unfinished job has at most one pending *action* in one of
the scheduler's lanes (``core.scheduling``); the scheduler starts what is due within the API
budget and two bounded pools. Each action reads the job from the store, writes its transition
*before* the side effect that depends on it, and queues the job's next action. So after a crash
the database alone says what to do next, and :meth:`Tracker.start` resumes every unfinished job.

The lanes (``core.tracker_lanes``) say in which order the API budget is spent. The run-time
model (``core.runtimes``) learns from every completion, re-plans the reads of tasks in flight
when it moves, and gives status messages an ETA once it has earned one.

Several processes may share one PostgreSQL database: each acts only on the jobs it holds the
lease of (``core.claims``; the tracker's side in ``core.tracker_leases``), every write carries
the lease's fence, and only the process holding the API budget (``core.budget``) claims jobs
that need the API; after a read finds a task done, its lease is given back and every process is
signalled, so deliveries spread. Webhooks reach the job's owner wherever they arrive
(``core.tracker_webhooks``). With SQLite, the same code runs with the owner ``"local"`` and a
budget always held.

Any unexpected exception in a job's action fails the job (refunded, the member told): a job is
never left stuck. A create of unknown outcome is reconciled (``core.reconcile``), never repeated
blindly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from core.budget import Budget, LocalBudget
from core.claims import Claims, LeaseLost
from core.deliveries import Deliveries, VideoSource
from core.jobs import Job, JobState
from core.notices import JobEvents, Notices, Progress
from core.polling import PollPlanner, Watch
from core.reads import Reads
from core.runtimes import RunTimeModel
from core.scheduling import Backoff, DueQueue, Scheduler, spawn
from core.store import LOCAL_OWNER, LocalSignals, SignalEvent, Signals, Store
from core.submissions import Submissions
from core.tracker_config import TrackerConfig, tracker_config
from core.tracker_endings import JobEndings
from core.tracker_lanes import QUEUED_ACTIONS, Action, tracker_lanes
from core.tracker_leases import LeaseHost
from core.tracker_webhooks import TrackerWebhooks
from core.wan import Task, WanClient

__all__ = [
    "LOCAL_OWNER",
    "JobEvents",
    "Progress",
    "Tracker",
    "TrackerConfig",
    "VideoSource",
    "tracker_config",
]

log = logging.getLogger(__name__)

UNEXPECTED = "something went wrong on our side; you were not charged"


class Tracker(LeaseHost, JobEndings):
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
        owner: str = LOCAL_OWNER,
        signals: Signals | None = None,
        budget: Budget | None = None,
        on_leases: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        cfg = self.config = config or TrackerConfig()
        self._clock = clock
        self.signals: Signals = signals or LocalSignals()
        self.budget: Budget = budget or LocalBudget()
        self.claims = Claims(
            store,
            self,
            self.budget,
            owner=owner,
            ttl=cfg.lease_seconds,
            clock=clock,
            on_count=on_leases,
        )
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
            action: DueQueue() for action in QUEUED_ACTIONS
        }
        lanes = tracker_lanes(cfg, self.planner, self._queues, client, self.budget, self._begin)
        self._delivery_pool = lanes.delivery_pool
        self._scheduler = Scheduler(lanes.lanes, clock=clock)
        self._notices = Notices(self._mark_told)
        self._running: set[str] = set()
        self._actions: dict[str, asyncio.Task[Any]] = {}  # job id → its action under way
        self._ready: set[str] = set()  # claimed to deliver, not started yet
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
        self._tasks = self._scheduler.tasks  # background work, cancelled when the tracker stops
        self.webhooks = TrackerWebhooks(
            self, store, self.signals, self.submissions, clock=clock, tasks=self._tasks
        )
        self._started = False

    # ----------------------------------------------------------------- lifecycle

    def set_events(self, events: JobEvents) -> None:
        self._notices.events = events

    async def start(self) -> int:
        """Claim every unfinished job this process may act on and resume it; how many."""
        self.signals.listen(self._signalled)
        self.signals.on_reconnect(self.claims.wake)  # signals may have been missed: claim now
        self.budget.subscribe(self._budget_moved)
        await self.signals.start()
        await self.budget.start()
        # Enough of the latest completions to fill the model's window of every kind, mostly.
        history = await self.store.recent_completions(18 * self.config.model_window)
        self.model.load(reversed(history))
        adopted = await self.claims.claim()  # ids and states only: cheap for 10,000s
        self._scheduler.start("tracker")
        spawn(self.claims.run(), name="leases", tasks=self._scheduler.tasks)
        self._started = True
        log.info("tracker started with %d unfinished job(s) (owner %s)", adopted, self.owner)
        return adopted

    async def stop(self, grace: float = 5.0) -> None:
        """Stop scheduling and cancel running actions; their jobs resume on the next start
        (here, or in another process: the leases are given back).

        Notices already under way get ``grace`` seconds to reach Discord first.
        """
        await self._scheduler.stop()  # its runs, the lease loop, and the notices of a long hold
        await self._notices.close(grace)
        if self.owner != LOCAL_OWNER:  # "local" is ours again at the next start anyway
            try:
                await self.claims.release_all()
            except Exception as exc:
                log.warning("leases not given back (%s); they expire", exc)
        await self.budget.stop()
        await self.signals.close()
        if self._started:
            log.info("tracker stopped")
        self._started = False

    @property
    def owner(self) -> str:
        return self.claims.owner

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
        """A freshly accepted job: whoever holds the API budget claims it and submits it."""
        self.claims.wake(others=False)
        spawn(self.signals.notify(SignalEvent.NEW, job.id), name="notify-new", tasks=self._tasks)

    def wake(self, job_id: str) -> None:
        """Act on the job now (a webhook said it changed): its pending action, or a read."""
        if job_id not in self.claims:
            return
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
        """Nothing more to do for the job here: no action, no lease."""
        self._unschedule(job_id)
        self.claims.forget(job_id)

    def _unschedule(self, job_id: str) -> None:
        self._unqueue(job_id)
        self.planner.forget(job_id)
        self._backoff.reset(job_id)
        self.submissions.forget(job_id)
        self._ready.discard(job_id)

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
        if job_id not in self.claims:
            self._forget(job_id)  # dropped while it waited
            return None
        if job_id in self._running:
            self._rewake.add(job_id)  # acted on again when its current action ends
            return None
        self._running.add(job_id)
        self._ready.discard(job_id)
        return self._guarded(job_id, action, self._perform(job_id, action))

    async def _guarded(self, job_id: str, action: Action, work: Coroutine[Any, Any, None]) -> None:
        """Run one action of a job; whatever it raises, the job does not stay stuck."""
        task = asyncio.current_task()
        if task is not None:
            self._actions[job_id] = task  # cancelled if the lease is lost meanwhile
        try:
            await work
        except LeaseLost:
            log.info("job %s: %s stopped, its lease is no longer ours", job_id, action.value)
            self._forget(job_id)
        except Exception:
            log.exception("job %s: %s failed unexpectedly; failing the job", job_id, action.value)
            try:
                job = await self.store.get_job(job_id)
                if job is not None and not job.state.is_finished and job_id in self.claims:
                    await self.fail(job, UNEXPECTED)
            except LeaseLost:
                self._forget(job_id)
            except Exception:
                log.exception("job %s: could not fail it either; trying again later", job_id)
                self._schedule(job_id, action, self._clock() + self.config.error_backoff_cap)
        finally:
            self._actions.pop(job_id, None)
            self._running.discard(job_id)
            await self._after(job_id, action)

    async def _after(self, job_id: str, action: Action) -> None:
        """What an action's end calls for: an API job handed over, a wake-up it missed."""
        rewake = job_id in self._rewake
        self._rewake.discard(job_id)
        room = self.delivery_room() >= 2 * self._delivery_pool.capacity
        if action is Action.DELIVER and room and self.claims.others_waiting:
            self.claims.wake(api=False)  # more wait, and room for a batch of them: claim it
        if job_id in self.claims.api and not self.budget.held:
            self.claims.release_later([job_id])  # the new budget holder takes it from here
            self._forget(job_id)
        elif rewake and job_id in self.claims:
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
        """The webhook receiver's handler (``core.tracker_webhooks``)."""
        return await self.webhooks.on_webhook(token, task, verified)

    async def apply_heard(self, job: Job, task: Task) -> None:
        self._running.add(job.id)
        applying = self._guarded(job.id, Action.POLL, self.reads.apply(job, task, heard="webhook"))
        # Its own task: dropping the job cancels the action, never the webhook's request.
        await asyncio.wait([spawn(applying, name="webhook-apply", tasks=self._tasks)])
