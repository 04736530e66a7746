"""Jobs: a job round-trips whole, only legal transitions happen, the lookups find it."""

from __future__ import annotations

import pytest

from core.jobs import TRANSITIONS, JobState
from core.store import NewJob, QuotaLimits, Store, utc_day
from tests.store.helpers import GUILD, NOW, USER, make_job


async def test_job_round_trips_with_its_request_and_references(store: Store) -> None:
    new = make_job()
    job = await store.create_job(new, QuotaLimits(60, 2), NOW)
    assert job.state is JobState.RESERVED
    assert job.request == new.request
    assert job.references == new.references
    assert job.quota_day == utc_day(NOW)
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 5


async def test_every_illegal_transition_is_refused(store: Store) -> None:
    for source in JobState:
        for target in JobState:
            job = await store.create_job(make_job(cost=0), QuotaLimits(60, 10**6), NOW)
            # Walk the job to `source` through legal steps.
            path = {
                JobState.RESERVED: [],
                JobState.SUBMITTING: [JobState.SUBMITTING],
                JobState.SUBMITTED: [JobState.SUBMITTING, JobState.SUBMITTED],
                JobState.RUNNING: [JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING],
                JobState.COMPLETED: [JobState.SUBMITTING, JobState.SUBMITTED, JobState.COMPLETED],
                JobState.DELIVERED: [
                    JobState.SUBMITTING,
                    JobState.SUBMITTED,
                    JobState.COMPLETED,
                    JobState.DELIVERED,
                ],
                JobState.FAILED: [JobState.FAILED],
                JobState.CANCELLED: [JobState.CANCELLED],
            }[source]
            for step in path:
                assert await store.transition(job.id, step, NOW) is not None
            moved = await store.transition(job.id, target, NOW + 1)
            assert (moved is not None) == (target in TRANSITIONS[source]), (source, target)


async def test_lookup_helpers(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=100, max_concurrent=10)
    new = make_job()
    job = await store.create_job(
        NewJob(**{**{f: getattr(new, f) for f in NewJob.__slots__}, "thread_id": 77}), limits, NOW
    )
    await store.transition(job.id, JobState.SUBMITTING, NOW)
    await store.transition(job.id, JobState.SUBMITTED, NOW, task_id="task-1")
    assert await store.known_task_ids(["task-1", "task-2", "task-1"]) == {"task-1"}
    assert await store.ids_in_state(JobState.SUBMITTED) == [job.id]
    assert await store.unfinished_states() == [(job.id, JobState.SUBMITTED)]
    assert (await store.latest_job_in_thread(77)).id == job.id
    with pytest.raises(ValueError):
        await store.transition(job.id, JobState.RUNNING, NOW, state="delivered")
