"""Job leases: claims take each job once, oldest first; an expired lease is taken over with a
new fence; a fenced-out write changes nothing (no refund); webhooks wait for their owner."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from core.jobs import JobState
from core.store import Lease, QuotaLimits, Store, owner_id, utc_day
from tests.store.helpers import GUILD, NOW, USER, make_job, processes

LIMITS = QuotaLimits(daily_seconds=10**6, max_concurrent=10**6)
TTL = 20.0
UNFINISHED = [state for state in JobState if not state.is_finished]


async def accept(store: Store, count: int, *, at: float = NOW) -> list[str]:
    return [
        (await store.create_job(make_job(user=USER + n), LIMITS, at + n)).id for n in range(count)
    ]


async def test_a_claim_takes_free_jobs_oldest_first_and_only_in_the_states_asked(
    store: Store,
) -> None:
    ids = await accept(store, 5)
    await store.transition(ids[4], JobState.SUBMITTING, NOW)
    claimed = await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, limit=3)
    assert claimed == [Lease(job_id, JobState.RESERVED, 1) for job_id in ids[:3]]
    rest = await store.claim_jobs("b", UNFINISHED, NOW, TTL, limit=10)
    assert [lease.job_id for lease in rest] == ids[3:]  # the held ones are not free
    assert await store.claim_jobs("b", UNFINISHED, NOW, TTL, limit=10) == [
        Lease(ids[3], JobState.RESERVED, 1),  # already b's: kept, the fence unchanged
        Lease(ids[4], JobState.SUBMITTING, 1),
    ]
    assert await store.claim_jobs("c", [], NOW, TTL, limit=10) == []


async def test_finished_jobs_are_claimed_only_while_their_requester_is_untold(
    store: Store,
) -> None:
    done, failed, told = await accept(store, 3)
    for step in (JobState.SUBMITTING, JobState.SUBMITTED, JobState.COMPLETED, JobState.DELIVERED):
        await store.transition(done, step, NOW)
    await store.transition(failed, JobState.FAILED, NOW)
    await store.transition(told, JobState.CANCELLED, NOW)
    await store.mark_user_notified(told, NOW)
    states = [JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED]
    claimed = await store.claim_jobs("a", states, NOW, TTL, limit=10)
    assert claimed == [Lease(failed, JobState.FAILED, 1)]


async def test_an_expired_lease_is_taken_over_and_the_old_owner_is_fenced_out(
    store: Store,
) -> None:
    (job_id,) = await accept(store, 1, at=NOW)
    (first,) = await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, limit=1)
    assert await store.claim_jobs("b", [JobState.RESERVED], NOW + TTL - 1, TTL, 1) == []
    (taken,) = await store.claim_jobs("b", [JobState.RESERVED], NOW + TTL + 1, TTL, 1)
    assert taken.fence == first.fence + 1
    assert await store.renew_leases("a", NOW + TTL + 2, TTL) == set()  # a lost it
    assert await store.renew_leases("b", NOW + TTL + 2, TTL) == {job_id}

    # Everything a still running "a" would write now changes nothing.
    old = first.fence
    assert await store.transition(job_id, JobState.FAILED, NOW, fence=old) is None
    assert await store.transition(job_id, JobState.SUBMITTING, NOW, fence=old) is None
    assert await store.count_poll(job_id, fence=old) is False
    assert await store.count_delivery_attempt(job_id, "x", fence=old) is None
    assert await store.set_discord_ids(job_id, fence=old, status_message_id=5) is False
    assert await store.set_reference_copies(job_id, {"ref:1": [1, 2, 0]}, fence=old) is False
    assert await store.release_lease(job_id, "a", old) is False
    job = await store.get_job(job_id)
    assert job.state is JobState.RESERVED and job.poll_count == 0
    assert (job.delivery_attempts, job.status_message_id, job.reference_copies) == (0, None, {})
    entries = await store.ledger_entries(GUILD, since_day=utc_day(NOW))
    assert [(e.kind, e.seconds) for e in entries] == [("reserve", 5)]  # no refund written

    # ... while "b", with its fence, moves the job on.
    new = taken.fence
    assert await store.count_poll(job_id, fence=new) is True
    assert await store.count_delivery_attempt(job_id, "503", fence=new) == 1
    assert await store.set_discord_ids(job_id, fence=new, thread_id=6) is True
    failed = await store.transition(job_id, JobState.FAILED, NOW + 30, fence=new, error="gone")
    assert failed is not None and failed.state is JobState.FAILED
    assert await store.mark_user_notified(job_id, NOW + 31, fence=old) is False
    assert await store.mark_user_notified(job_id, NOW + 31, fence=new) is True
    assert await store.release_lease(job_id, "b", new) is True
    assert await store.renew_leases("b", NOW + 40, TTL) == set()
    entries = await store.ledger_entries(GUILD, since_day=utc_day(NOW))
    assert [(e.kind, e.seconds) for e in entries] == [("reserve", 5), ("refund", -5)]


async def test_a_released_job_goes_to_the_next_claim_at_once_with_a_new_fence(
    store: Store,
) -> None:
    (job_id,) = await accept(store, 1)
    (lease,) = await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, 1)
    assert await store.release_lease(job_id, "a", lease.fence) is True
    (again,) = await store.claim_jobs("a", [JobState.RESERVED], NOW + 1, TTL, 1)
    assert again.fence == lease.fence + 1  # released: it changed hands, even back to "a"


async def test_renewal_keeps_an_expired_lease_nobody_took(store: Store) -> None:
    ids = await accept(store, 3)
    await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, limit=2)
    assert await store.renew_leases("a", NOW + TTL * 5, TTL) == set(ids[:2])
    # Renewed: not free for another claimant now.
    claimed = await store.claim_jobs("b", [JobState.RESERVED], NOW + TTL * 5 + 1, TTL, limit=3)
    assert [lease.job_id for lease in claimed] == [ids[2]]


async def test_webhooks_wait_for_the_jobs_owner(store: Store) -> None:
    first, second = await accept(store, 2)
    leases = {
        lease.job_id: lease for lease in await store.claim_jobs("a", UNFINISHED, NOW, TTL, 10)
    }
    await store.note_webhook(second, NOW + 2)
    await store.note_webhook(first, NOW + 3)
    assert await store.webhook_pending("a") == [second, first]  # oldest webhook first
    assert await store.webhook_pending("b") == []
    assert await store.take_webhook(second, leases[second].fence + 1) is False  # fenced
    assert await store.take_webhook(second, leases[second].fence) is True
    assert await store.take_webhook(second, leases[second].fence) is False  # taken already
    assert await store.webhook_pending("a") == [first]
    await store.note_webhook(second, NOW + 4)  # a second webhook after the take: pending again
    assert set(await store.webhook_pending("a")) == {first, second}


async def test_two_owners_racing_claim_every_job_exactly_once(
    store: Store, database: Path | str
) -> None:
    ids = set(await accept(store, 120))
    async with processes(store, database, 2) as (_, other):

        async def claimer(on: Store, owner: str) -> list[str]:
            taken: list[str] = []
            while True:
                batch = await on.claim_jobs(owner, UNFINISHED, NOW, TTL, limit=7)
                if not batch:
                    return taken
                taken += [lease.job_id for lease in batch]
                # Done with them: out of the states asked, so the next claim moves on.
                for lease in batch:
                    moved = await on.transition(
                        lease.job_id, JobState.CANCELLED, NOW, fence=lease.fence
                    )
                    assert moved is not None
                    assert await on.mark_user_notified(lease.job_id, NOW, fence=lease.fence)

        results = await asyncio.gather(
            *(claimer(on, f"owner-{n}") for n, on in enumerate((store, other, store, other)))
        )
    claimed = [job_id for taken in results for job_id in taken]
    assert sorted(claimed) == sorted(ids)  # each job once, by exactly one owner
    if store.is_postgres:
        assert all(results), "every claimant got some: SKIP LOCKED, not a queue"


def test_owner_ids() -> None:
    assert owner_id(False) == "local"  # SQLite: a restart finds its leases its own
    one, two = owner_id(True), owner_id(True)
    assert one != two and one.count(":") == 2


async def test_the_lease_columns_do_not_leak_into_jobs(store: Store) -> None:
    (job_id,) = await accept(store, 1)
    await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, 1)
    job = await store.get_job(job_id)
    assert job is not None
    assert "lease_owner" not in {field.name for field in dataclasses.fields(job)}


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_claim_of_nothing_takes_nothing(store: Store, limit: int) -> None:
    await accept(store, 1)
    assert await store.claim_jobs("a", UNFINISHED, NOW, TTL, limit) == []


async def test_a_claim_without_its_own_leases_reaches_the_free_jobs_past_them(
    store: Store,
) -> None:
    ids = await accept(store, 4)
    held = await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, limit=3)
    # With its own: the three it holds fill the limit again, and the fourth never comes.
    again = await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, limit=3)
    assert [lease.job_id for lease in again] == ids[:3]
    fresh = await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, 3, include_own=False)
    assert fresh == [Lease(ids[3], JobState.RESERVED, 1)]
    # Its own expired lease nobody took is taken again, the fence kept (it never left "a").
    late = await store.claim_jobs(
        "a", [JobState.RESERVED], NOW + TTL + 1, TTL, 9, include_own=False
    )
    assert late == [*held, *fresh]


async def test_held_leases_list_an_owners_jobs_with_work_left_and_their_fences(
    store: Store,
) -> None:
    ids = await accept(store, 3)
    await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, limit=3)
    await store.release_lease(ids[1], "a", 1)
    await store.claim_jobs("a", [JobState.RESERVED], NOW, TTL, limit=3)  # ids[1] again: fence 2
    await store.transition(ids[2], JobState.CANCELLED, NOW)
    await store.mark_user_notified(ids[2], NOW)  # ended and told: no work left
    assert await store.held_leases("a") == [
        Lease(ids[0], JobState.RESERVED, 1),
        Lease(ids[1], JobState.RESERVED, 2),
    ]
    assert await store.held_leases("b") == []
