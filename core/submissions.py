"""Getting a job to the API: the create, waiting when the API says "not now", and reconciling a
create whose outcome is unknown.

The job is ``submitting`` before the create is sent (so a crash leaves it there, and a restart
reconciles it), and the job's deadline is checked again right before the create goes out. A create
the API certainly did not take (429, 503, no connection) puts the job back to ``reserved`` for a
later try: a long ``Retry-After`` holds only creates (reads and deliveries go on), and the members
whose jobs wait that long are told so on their status messages. A create of unknown outcome is
never repeated blindly: ``core.reconcile`` decides from the API's list and from evidence (the
job's own webhook URL naming its task) whether to adopt, submit again, wait, or fail and refund.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from typing import Protocol

from core.jobs import Job, JobState
from core.reconcile import Verdict, decide
from core.scheduling import Backoff, spawn
from core.store import Store
from core.tracker_config import TrackerConfig
from core.wan import (
    Task,
    TaskStatus,
    WanClient,
    WanDeadlinePassed,
    WanError,
    WanOperatorError,
    WanSubmitUnknown,
    WanUserError,
)

log = logging.getLogger(__name__)

TOO_LATE = "the video service did not accept the job in time"
NOT_CONFIRMED = "the video service did not confirm the job; you were not charged"


class Host(Protocol):
    """What the tracker does for submissions (its queues, its endings, its notices)."""

    def submit_at(self, job_id: str, due: float) -> None: ...

    def reconcile_at(self, job_id: str, due: float) -> None: ...

    def resume(self, job: Job) -> None: ...

    def tell(self, job: Job) -> None: ...

    def queued_submits(self) -> Iterable[str]: ...

    def fence(self, job_id: str) -> int:
        """The job's lease fence, for every write (raises ``LeaseLost`` when not ours)."""
        ...

    async def fail(self, job: Job, reason: str) -> Job | None: ...

    async def accepted(self, job: Job, task: Task, *, listed: bool) -> None: ...


class Submissions:
    def __init__(
        self,
        host: Host,
        store: Store,
        client: WanClient,
        config: TrackerConfig,
        *,
        webhooks: bool,
        webhook_url: Callable[[Job], str | None] | None,
        clock: Callable[[], float],
        backoff: Backoff,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self._host = host
        self.store = store
        self.client = client
        self.config = config
        self._webhooks = webhooks
        self._webhook_url = webhook_url
        self._clock = clock
        self._backoff = backoff
        self.submitting_now: set[str] = set()  # creates under way (not to be reconciled)
        self._evidence: dict[str, str] = {}  # job id → the task its own webhook URL named
        self.held_until = 0.0  # a 429 on a create asked us to hold creates until then
        # One listing (all pages) serves every job reconciling at once: when it was taken, and
        # the listed tasks no job owned then.
        self._listing: tuple[float, list[str], bool] | None = None  # taken, unowned, complete
        self._listing_lock = asyncio.Lock()
        self._told_until = 0.0
        self._tasks = tasks  # the owner's background tasks (cancelled when it stops)

    def forget(self, job_id: str) -> None:
        self._evidence.pop(job_id, None)

    def evidence(self, job: Job, task_id: str) -> bool:
        """A notification to the job's own URL named ``task_id``. True: reconcile it now."""
        self._evidence[job.id] = task_id
        return job.state is JobState.SUBMITTING and job.id not in self.submitting_now

    def waiting_until(self, job: Job, due: float | None) -> tuple[float, bool] | None:
        """When a job queued for ``due`` will really be sent, if that is a long wait, and
        whether its deadline comes first."""
        now = self._clock()
        later = max(due or now, self.held_until)
        if later - now < self.config.long_wait:
            return None
        return min(later, job.deadline_at), later >= job.deadline_at

    # ----------------------------------------------------------------- submit

    async def submit(self, job: Job) -> None:
        if job.state is not JobState.RESERVED:
            self._host.resume(job)
            return
        if self._clock() >= job.deadline_at:
            await self._host.fail(job, TOO_LATE)
            return
        submitting = await self.store.transition(
            job.id,
            JobState.SUBMITTING,
            self._clock(),
            fence=self._host.fence(job.id),
            submit_attempts=job.submit_attempts + 1,
        )
        if submitting is None:
            return  # cancelled meanwhile
        self.submitting_now.add(job.id)
        webhook_url = self._webhook_url(job) if self._webhook_url is not None else None
        try:
            task = await self.client.create(
                job.request, webhook_url=webhook_url, not_after=job.deadline_at
            )
        except WanDeadlinePassed:
            await self._host.fail(submitting, TOO_LATE)
            return
        except WanUserError as exc:
            await self._host.fail(submitting, f"the video service refused the request: {exc}")
            return
        except WanOperatorError as exc:
            log.error("job %s: the API refused our credentials or credits: %s", job.id, exc)
            await self._host.fail(
                submitting, "the video service is not available (the operator was told)"
            )
            return
        except WanSubmitUnknown as exc:
            log.warning("job %s: submit outcome unknown (%s); reconciling", job.id, exc)
            due = self._clock() if job.id in self._evidence else self._list_after(submitting)
            self._host.reconcile_at(job.id, due)
            return
        except WanError as exc:
            await self._later(job, exc)
            return
        finally:
            self.submitting_now.discard(job.id)
        self._backoff.reset(job.id)
        self._evidence.pop(job.id, None)
        await self._host.accepted(submitting, task, listed=False)

    async def _later(self, job: Job, exc: WanError) -> None:
        """The API certainly did not take it: back to reserved, and try again later."""
        back = await self.store.transition(
            job.id, JobState.RESERVED, self._clock(), fence=self._host.fence(job.id)
        )
        if back is None:
            return
        retry_after = getattr(exc, "retry_after", None)
        delay = self._backoff.next(job.id, retry_after)
        log.warning("job %s: submit failed (%s); retrying in %.0fs", job.id, exc, delay)
        now = self._clock()
        self._host.submit_at(job.id, min(now + delay, job.deadline_at))
        if retry_after is not None:
            self.held_until = max(self.held_until, now + retry_after)
        if delay >= self.config.long_wait:
            self._host.tell(back)  # its status message says how long it waits
        if self.held_until - now >= self.config.long_wait and self.held_until > self._told_until:
            self._told_until = self.held_until
            spawn(self._tell_queued(), name="tell-queued", tasks=self._tasks)

    async def _tell_queued(self) -> None:
        """Every job waiting to be sent is told on its status message that the API holds it."""
        for job_id in list(self._host.queued_submits()):
            job = await self.store.get_job(job_id)
            if job is not None and job.state is JobState.RESERVED:
                self._host.tell(job)

    # ----------------------------------------------------------------- reconcile

    async def reconcile(self, job: Job) -> None:
        if job.state is not JobState.SUBMITTING:
            self._host.resume(job)
            return
        now = self._clock()
        waited = now - (job.submitting_at or now)
        evidence = self._evidence.get(job.id)
        if evidence is None and now < self._list_after(job):
            self._host.reconcile_at(job.id, self._list_after(job))
            return
        orphans: list[str] = []
        waiting = [job.id]
        complete = True
        if evidence is not None and await self.store.known_task_ids([evidence]):
            log.warning("job %s: its webhook named task %s, owned by another job", job.id, evidence)
            evidence = None
        if evidence is None:
            try:
                orphans, complete = await self._unowned(since=self._list_after(job))
            except WanError as exc:
                delay = self._backoff.next(job.id)
                log.warning("job %s: cannot list tasks (%s); again in %.0fs", job.id, exc, delay)
                self._host.reconcile_at(job.id, self._clock() + delay)
                return
            if self.config.key_dedicated and len(orphans) == 1:  # only that rule needs them
                waiting = [
                    job_id
                    for job_id in await self.store.ids_in_state(JobState.SUBMITTING)
                    if job_id not in self.submitting_now
                ]
        decision = decide(
            job.id,
            orphans,
            waiting,
            complete=complete,
            evidence=evidence,
            key_dedicated=self.config.key_dedicated,
            webhooks=self._webhooks,
            waited=waited,
            evidence_wait=self.config.evidence_wait,
        )
        match decision.verdict:
            case Verdict.ADOPT:
                assert decision.task_id is not None
                log.info("job %s: adopting task %s (%s)", job.id, decision.task_id, decision.why)
                self._evidence.pop(job.id, None)
                task = Task(decision.task_id, TaskStatus.UNKNOWN)
                await self._host.accepted(job, task, listed=True)
            case Verdict.SUBMIT_AGAIN:
                back = await self.store.transition(
                    job.id, JobState.RESERVED, self._clock(), fence=self._host.fence(job.id)
                )
                if back is not None:
                    log.info("job %s: no task was created; submitting again", job.id)
                    self._host.submit_at(job.id, self._clock())
            case Verdict.WAIT:
                again = min(60.0, self.config.evidence_wait - waited)
                self._host.reconcile_at(job.id, self._clock() + again)
            case Verdict.FAIL:
                log.warning("job %s: cannot tell which task is its own: %s", job.id, decision.why)
                await self._host.fail(job, NOT_CONFIRMED)

    def _list_after(self, job: Job) -> float:
        """When a listing can show what the job's create made: the grace after it, rounded up
        to a grid so that the jobs of the same few seconds share one listing."""
        grace = self.config.reconcile_grace
        grid = max(grace / 4, 1.0)
        return math.ceil(((job.submitting_at or 0.0) + grace) / grid) * grid

    async def _unowned(self, *, since: float) -> tuple[list[str], bool]:
        """The listed tasks no job owns, and whether the list was read to its end, from a
        listing taken at ``since`` or later (one that could show a task the job's create made):
        fetched once for all jobs that need it."""
        async with self._listing_lock:
            if self._listing is None or self._listing[0] < since:
                taken = self._clock()
                listed, complete = await self.client.list_all_tasks()
                known = await self.store.known_task_ids(task.task_id for task in listed)
                unowned = [task.task_id for task in listed if task.task_id not in known]
                self._listing = (taken, unowned, complete)
            _taken, candidates, complete = self._listing
        known = await self.store.known_task_ids(candidates)  # adopted since the listing
        return [task_id for task_id in candidates if task_id not in known], complete
