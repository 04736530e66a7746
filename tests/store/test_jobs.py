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


async def test_discord_ids_and_reference_copies_are_kept(store: Store) -> None:
    job = await store.create_job(make_job(), QuotaLimits(60, 2), NOW)
    await store.set_discord_ids(job.id, status_message_id=5, thread_id=6)
    await store.set_reference_copies(job.id, {"ref:1": [6, 7, 0]})
    kept = await store.get_job(job.id)
    assert (kept.status_message_id, kept.thread_id) == (5, 6)
    assert kept.reference_copies == {"ref:1": [6, 7, 0]}
    assert await store.video_thread_ids() == {6}
    with pytest.raises(ValueError, match="cannot set"):
        await store.set_discord_ids(job.id, state=1)
    with pytest.raises(ValueError, match="nothing"):
        await store.set_discord_ids(job.id)


async def test_counters_and_the_notice_of_an_ending(store: Store) -> None:
    job = await store.create_job(make_job(), QuotaLimits(60, 2), NOW)
    await store.count_poll(job.id)
    await store.count_poll(job.id)
    assert await store.count_delivery_attempt(job.id, "503") == 1
    assert await store.count_delivery_attempt(job.id, None) == 2
    counted = await store.get_job(job.id)
    assert (counted.poll_count, counted.delivery_attempts, counted.error) == (2, 2, None)
    await store.transition(job.id, JobState.FAILED, NOW + 1, error="refused")
    assert [j.id for j in await store.unnotified_endings(since=NOW)] == [job.id]
    await store.mark_user_notified(job.id, NOW + 2)
    await store.mark_user_notified(job.id, NOW + 3)  # the first notice's time stays
    assert (await store.get_job(job.id)).user_notified_at == NOW + 2
    assert await store.unnotified_endings(since=NOW) == []


async def test_history_and_moderator_queries(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=100, max_concurrent=10)
    first = await store.create_job(make_job(), limits, NOW)
    second = await store.create_job(make_job(), limits, NOW + 1)
    other = await store.create_job(make_job(user=USER + 1), limits, NOW + 2)
    await store.transition(first.id, JobState.CANCELLED, NOW + 3)
    assert [j.id for j in await store.jobs_for_user(GUILD, USER, limit=1)] == [second.id]
    assert [j.id for j in await store.jobs_for_user(GUILD, USER, limit=5, offset=1)] == [first.id]
    assert await store.count_jobs_for_user(GUILD, USER) == 2
    assert [j.id for j in await store.jobs_in_guild(GUILD)] == [other.id, second.id, first.id]
    assert [j.id for j in await store.jobs_in_guild(GUILD, user_id=USER)] == [second.id, first.id]
    cancelled = await store.jobs_in_guild(GUILD, states=[JobState.CANCELLED])
    assert [j.id for j in cancelled] == [first.id]
    assert await store.count_unfinished_by_state() == {JobState.RESERVED: 2}


async def test_webhook_digests_and_run_times(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=100, max_concurrent=10)
    new = make_job()
    job = await store.create_job(
        NewJob(**{**{f: getattr(new, f) for f in NewJob.__slots__}, "webhook_token_hash": "d1"}),
        limits,
        NOW,
    )
    assert (await store.job_by_webhook_token_hash("d1")).id == job.id
    assert await store.job_by_webhook_token_hash("d2") is None
    await store.transition(job.id, JobState.SUBMITTING, NOW)
    await store.transition(job.id, JobState.SUBMITTED, NOW + 1, task_id="task-1")
    await store.transition(job.id, JobState.COMPLETED, NOW + 31)
    assert await store.recent_completions(10) == [("1080P", 5, 30.0)]
