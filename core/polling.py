"""When to read each task in flight: the poll planner.

Every read costs a share of the API budget and nothing else, so the planner gives each task in
flight two times, and the scheduler spends the read budget on them in this order:

- **valuable** (first claim on the read budget): the moment a read becomes worth its cost,
  i.e. the detection lag it would end, in expectation, reaches ``read_cost`` seconds. For a
  run-time distribution F and the last read at r, a read at t ends on average
  ``∫ᵣᵗ (F(s) − F(r)) ds / (1 − F(r))`` seconds of lag; reads therefore bunch where the model
  expects the task to finish, and become rare where it cannot have finished yet.
- **guaranteed** (only from budget left after creates and lists): never let a finished task wait
  longer than ``lag`` seconds unseen. Only a trusted model may skip the start, up to the point
  where the task has a ``rare_chance`` of being done; where the model is no guide (nothing
  learned yet, or the task has run past the model's 99th percentile) the spacing is also at least
  ``relative_lag`` of the running time: a task running far longer than expected is read less
  often, in proportion, not forever at the lag target.

Until a kind of task (a resolution and a duration) is trusted - five completions of it - and
once a task runs past the model's 99th percentile, the model is no guide: the guaranteed read is
then also the valuable one. So a fresh install reads every task every ``lag`` seconds while the
budget allows, whatever the prior says (the first read at a phase of each task's own, so that
what is learned carries no read grid), and the first completions make the model and re-plan
every task in flight of that resolution.

With webhooks on, notifications bring the news and reads are only a fallback: the first when the
model says the task is done with 99 % (twice the prior before anything is learned), then every
``webhook_interval`` seconds or ``relative_lag`` of the running time.

Planning one task is a handful of closed-form evaluations (a bisection on the lag integral), so
planning thousands of tasks at once stays cheap; nothing is ever re-planned per tick.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.runtimes import RunTime, RunTimeModel
from core.scheduling import DueQueue

_BISECTIONS = 24


@dataclass(slots=True)
class Watch:
    """What the planner knows of one task in flight. ``submitted_at`` None: resumed after a
    restart and not read yet (so not known yet)."""

    job_id: str
    submitted_at: float | None = None
    resolution: str = ""
    duration: int = 0
    deadline_at: float = float("inf")
    last_read: float = 0.0
    reads: int = 0
    last_read_known: bool = True  # False: resumed after a restart, not read since


class _ReadLane:
    """One of the planner's two queues, as a scheduler source: a read taken from either
    removes the task from both."""

    def __init__(self, mine: DueQueue[str, Watch], other: DueQueue[str, Watch]) -> None:
        self._mine = mine
        self._other = other

    def first_due(self) -> float | None:
        return self._mine.first_due()

    def pop_due(self, now: float) -> tuple[str, Watch] | None:
        item = self._mine.pop_due(now)
        if item is not None:
            self._other.remove(item[0])
        return item


class PollPlanner:
    def __init__(
        self,
        model: RunTimeModel,
        *,
        lag: float = 3.0,
        relative_lag: float = 0.08,
        read_cost: float = 0.75,
        rare_chance: float = 0.01,
        webhooks: bool = False,
        webhook_interval: float = 60.0,
        webhook_prior_factor: float = 2.0,
    ) -> None:
        self.model = model
        self.lag = lag
        self.relative_lag = relative_lag
        self.read_cost = read_cost
        self.rare_chance = rare_chance
        self.webhooks = webhooks
        self.webhook_interval = webhook_interval
        self.webhook_prior_factor = webhook_prior_factor
        self._value: DueQueue[str, Watch] = DueQueue()
        self._guarantee: DueQueue[str, Watch] = DueQueue()
        self.valuable = _ReadLane(self._value, self._guarantee)
        self.guaranteed = _ReadLane(self._guarantee, self._value)
        self._watches: dict[str, Watch] = {}
        self._by_resolution: dict[str, set[str]] = {}
        self.latency = 0.0  # how long a read takes to tell (it counts against the lag target)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._value or job_id in self._guarantee

    def __len__(self) -> int:
        return len(self._watches)

    @property
    def pending(self) -> int:
        """Tasks with a read queued (every queued read has a valuable time)."""
        return len(self._value)

    def watch(self, watch: Watch) -> Watch:
        """Track a task from now on (or again), keeping what earlier reads taught."""
        known = self._watches.get(watch.job_id)
        if known is not None and known.submitted_at is not None:
            watch.reads = known.reads
            watch.last_read = max(watch.last_read, known.last_read)
            self._by_resolution.get(known.resolution, set()).discard(watch.job_id)
        self._watches[watch.job_id] = watch
        if watch.submitted_at is not None:
            self._by_resolution.setdefault(watch.resolution, set()).add(watch.job_id)
        return watch

    def get(self, job_id: str) -> Watch | None:
        return self._watches.get(job_id)

    def resume(self, job_id: str, now: float) -> None:
        """A task found in flight at start-up: read it first, learn the rest from that read."""
        watch = self._watches.setdefault(job_id, Watch(job_id))
        self.read_at(watch, now)

    def read_at(self, watch: Watch, when: float) -> None:
        """Read at ``when`` (a hint, or a retry after an error), first claim on the budget."""
        self._guarantee.remove(watch.job_id)
        self._value.put(watch.job_id, when, watch)

    def plan(self, watch: Watch, now: float) -> None:
        """Place the task's next reads, after a read at ``watch.last_read`` found it running."""
        value, guarantee = self.next_reads(watch, now)
        self._value.put(watch.job_id, value, watch)
        if guarantee < value:
            self._guarantee.put(watch.job_id, guarantee, watch)
        else:
            self._guarantee.remove(watch.job_id)

    def replan(self, resolution: str, now: float) -> int:
        """Plan again every waiting task of ``resolution`` (the model moved); how many."""
        count = 0
        for job_id in self._by_resolution.get(resolution, ()):
            watch = self._watches[job_id]
            if job_id in self._value or job_id in self._guarantee:
                self.plan(watch, now)
                count += 1
        return count

    def forget(self, job_id: str) -> Watch | None:
        """Stop reading the task (finished, failed, cancelled or handed to another action)."""
        self._value.remove(job_id)
        self._guarantee.remove(job_id)
        watch = self._watches.pop(job_id, None)
        if watch is not None:
            self._by_resolution.get(watch.resolution, set()).discard(job_id)
        return watch

    def unqueue(self, job_id: str) -> None:
        """No read pending (one is under way), but keep what is known of the task."""
        self._value.remove(job_id)
        self._guarantee.remove(job_id)

    def estimate(self, watch: Watch) -> RunTime:
        return self.model.estimate(watch.resolution, watch.duration)

    # ----------------------------------------------------------------- the rules

    def next_reads(self, watch: Watch, now: float) -> tuple[float, float]:
        """(valuable, guaranteed) read times for a task last read at ``watch.last_read``."""
        assert watch.submitted_at is not None
        start = watch.submitted_at
        estimate = self.estimate(watch)
        read = max(watch.last_read - start, 0.0)  # its running time when last read
        # A read's own time counts as lag too (at most a tenth of the target is set aside).
        lag = self.lag - min(self.latency, self.lag / 10)
        spacing = max(lag, self.relative_lag * read)
        if self.webhooks:
            if read > 0.0:  # read before, and still no notification
                fallback = read + max(self.webhook_interval, self.relative_lag * read)
            else:
                prior = estimate.median * self.webhook_prior_factor
                first = estimate.quantile(0.99) if estimate.trusted else prior
                fallback = first + max(lag, self.relative_lag * first)
            due = self._clamp(start + fallback, now, watch)
            return due, due
        if not estimate.trusted or read >= estimate.quantile(1.0 - self.rare_chance):
            # Nothing learned yet, or running far longer than the model says: the model is no
            # guide, only the lag target (and its share of the running time) is.
            if read == 0.0:
                # The first read at a phase of the job's own: were every task read on the same
                # grid from its submission, all of a kind would finish in the same cell of it
                # and what is learned from them would carry the grid's bias.
                spacing *= 1.0 - random.Random(watch.job_id).random()
            due = self._clamp(start + read + spacing, now, watch)
            return due, due
        guarantee = start + max(read, estimate.quantile(self.rare_chance)) + lag
        value = start + self._worth_reading(estimate, read)
        return self._clamp(value, now, watch), self._clamp(guarantee, now, watch)

    def _worth_reading(self, estimate: RunTime, read: float) -> float:
        """The running time at which a read ends ``read_cost`` seconds of expected lag."""
        done_before = estimate.cdf(read)
        alive = 1.0 - done_before
        base = estimate.integral(read)
        cost = self.read_cost

        def lag_ended(t: float) -> float:
            if alive <= 1e-12:
                return t - read  # the model says it must be done: every second counts
            return (estimate.integral(t) - base - (t - read) * done_before) / alive

        low, high = read, read + max(cost, self.lag)
        while lag_ended(high) < cost:
            low, high = high, read + 2.0 * (high - read)
            if high - read > 1e7:
                return high
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2.0
            if lag_ended(middle) < cost:
                low = middle
            else:
                high = middle
        return high

    @staticmethod
    def _clamp(due: float, now: float, watch: Watch) -> float:
        return min(max(due, now), watch.deadline_at)
