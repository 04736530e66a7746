"""The quota ledger: exactly-once refunds and commits, atomic reservations, grants, resets,
usage per UTC day and the usage report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.jobs import JobState
from core.store import CapExceeded, QuotaExceeded, QuotaLimits, Store, TooManyJobs, utc_day
from tests.store.helpers import GUILD, NOW, USER, make_job, processes


async def test_failure_refunds_exactly_once_even_when_raced(store: Store) -> None:
    job = await store.create_job(make_job(duration=8), QuotaLimits(60, 2), NOW)
    results = await asyncio.gather(
        store.transition(job.id, JobState.FAILED, NOW + 1, error="a"),
        store.transition(job.id, JobState.CANCELLED, NOW + 1, error="b"),
        store.transition(job.id, JobState.FAILED, NOW + 2, error="c"),
    )
    assert sum(result is not None for result in results) == 1
    entries = await store.ledger_entries(GUILD, since_day=utc_day(NOW))
    assert [(e.kind, e.seconds) for e in entries] == [("reserve", 8), ("refund", -8)]
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 0


async def test_delivery_commits_and_keeps_the_charge(store: Store) -> None:
    job = await store.create_job(make_job(duration=6), QuotaLimits(60, 2), NOW)
    for step in (JobState.SUBMITTING, JobState.SUBMITTED, JobState.COMPLETED):
        await store.transition(job.id, step, NOW)
    delivered = await store.transition(job.id, JobState.DELIVERED, NOW + 5, delivered_message_id=9)
    assert delivered is not None and delivered.delivered_message_id == 9
    assert delivered.delivered_at == NOW + 5
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 6
    kinds = [e.kind for e in await store.ledger_entries(GUILD, since_day=utc_day(NOW))]
    assert kinds == ["reserve", "commit"]
    assert await store.transition(job.id, JobState.FAILED, NOW + 6) is None  # refund impossible


async def test_quota_refuses_what_would_overspend(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=12, max_concurrent=5)
    await store.create_job(make_job(duration=10), limits, NOW)
    with pytest.raises(QuotaExceeded) as raised:
        await store.create_job(make_job(duration=3), limits, NOW)
    assert raised.value.remaining == 2
    assert "2 s left" in raised.value.message
    await store.create_job(make_job(duration=2), limits, NOW)  # exactly what is left


async def test_concurrency_limit_counts_unfinished_jobs(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=100, max_concurrent=2)
    first = await store.create_job(make_job(), limits, NOW)
    await store.create_job(make_job(), limits, NOW)
    with pytest.raises(TooManyJobs):
        await store.create_job(make_job(), limits, NOW)
    await store.transition(first.id, JobState.CANCELLED, NOW)
    await store.create_job(make_job(), limits, NOW)


async def test_exempt_members_are_not_limited(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=1, max_concurrent=1, exempt=True)
    for _ in range(3):
        await store.create_job(make_job(duration=10), limits, NOW)
    assert await store.unfinished_count(GUILD, USER) == 3


async def test_a_thousand_concurrent_reservations_never_overspend(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=60, max_concurrent=1000)

    async def attempt(index: int) -> bool:
        try:
            await store.create_job(make_job(user=USER + index % 3, duration=5), limits, NOW)
        except QuotaExceeded:
            return False
        return True

    accepted = await asyncio.gather(*(attempt(i) for i in range(1000)))
    assert sum(accepted) == 3 * (60 // 5)
    for user in (USER, USER + 1, USER + 2):
        assert await store.usage(GUILD, user, utc_day(NOW)) == 60


async def test_a_thousand_reservations_from_three_processes_never_overspend(
    store: Store, database: Path | str
) -> None:
    # PostgreSQL: three stores (three pools, as three bot processes) reserving at once against
    # the members' quotas and the bot's budget; the advisory lock makes each check-and-insert one.
    limits = QuotaLimits(daily_seconds=60, max_concurrent=1000, budget_daily_seconds=150)
    async with processes(store, database, 3) as stores:

        async def attempt(index: int) -> int:
            try:
                await stores[index % 3].create_job(
                    make_job(user=USER + index % 4, duration=5), limits, NOW
                )
            except (QuotaExceeded, CapExceeded):
                return 0
            return 5

        spent = await asyncio.gather(*(attempt(i) for i in range(1000)))
    assert sum(spent) == 150 == await store.day_spend(utc_day(NOW))
    for user in range(USER, USER + 4):
        assert await store.usage(GUILD, user, utc_day(NOW)) <= 60


async def test_grants_and_resets_are_ledger_rows(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=10, max_concurrent=10)
    await store.create_job(make_job(duration=10), limits, NOW)
    await store.grant(GUILD, USER, 20, actor_id=1, now=NOW, note="event")
    await store.create_job(make_job(duration=10), limits, NOW)  # the grant made room
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 0  # 10 + 10 - 20
    with pytest.raises(ValueError, match="positive"):
        await store.grant(GUILD, USER, 0, actor_id=1, now=NOW)
    await store.create_job(make_job(duration=10), limits, NOW)
    used = await store.reset_usage(GUILD, USER, actor_id=1, now=NOW)
    assert used == 10
    assert await store.usage(GUILD, USER, utc_day(NOW)) == 0
    kinds = [e.kind for e in await store.ledger_entries(GUILD, since_day=utc_day(NOW))]
    assert kinds == ["reserve", "grant", "reserve", "reserve", "reset"]


async def test_usage_is_per_utc_day(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=5, max_concurrent=10)
    await store.create_job(make_job(duration=5), limits, NOW)
    with pytest.raises(QuotaExceeded):
        await store.create_job(make_job(duration=5), limits, NOW)
    await store.create_job(make_job(duration=5), limits, NOW + 86_400)


async def test_usage_report_matches_the_ledger(store: Store) -> None:
    limits = QuotaLimits(daily_seconds=100, max_concurrent=10)
    made = []
    for user, duration in ((1, 5), (1, 7), (2, 3), (2, 4)):
        made.append(await store.create_job(make_job(user=user, duration=duration), limits, NOW))
    for job in made[:3]:
        for step in (JobState.SUBMITTING, JobState.SUBMITTED, JobState.COMPLETED):
            await store.transition(job.id, step, NOW)
        await store.transition(job.id, JobState.DELIVERED, NOW)
    await store.transition(made[3].id, JobState.FAILED, NOW)
    report = {row.user_id: row for row in await store.usage_report(GUILD, utc_day(NOW))}
    assert report[1].seconds == 12 and report[1].jobs == 2 and report[1].failed == 0
    assert report[2].seconds == 3 and report[2].jobs == 2 and report[2].failed == 1
    ledger = await store.ledger_entries(GUILD, since_day=utc_day(NOW))
    for user in (1, 2):
        assert report[user].seconds == sum(e.seconds for e in ledger if e.user_id == user)
