"""Benchmark: quota reservations under N concurrent requests, and whether any member over-spends.

    python -m bench.quota [--requests 1000] [--members 10] [--seed 1] [--postgres ADMIN_URL]

What is measured: ``Store.create_job`` (the check + insert + ledger reservation that
``VideoService.accept`` relies on) called by ``--requests`` coroutines at once, through
``asyncio.gather``, against a fresh SQLite file (WAL, as the bot opens it). Requests are spread at
random over ``--members`` members of one server; each request costs 2-10 s (a random duration at
720P). Member limits cycle through 60, 120, 300, 1 000 and 1 000 000 seconds a day, so with about
600 s asked per member the first three run out and the last two never do. Before the burst each
member has one delivered job and one failed (refunded) job today, so balances come from a ledger
with reserve, commit and refund rows, as in production.

Printed: decisions/s and accepted reservations/s over the burst's wall time, per-request latency
from the burst's start (min/p50/p99/max: the store serialises every call, reads included, on one
FIFO lock, so latency is mostly queueing; an accepted call queues twice, for its transaction and
for the ``get_job`` that re-reads the new row), the CPU time of the process, then per member:
limit, usage before the burst, seconds accepted in it, ledger usage after (marked ``!`` if it is
not before + accepted), refusals, seconds left. Then the two checks:

- over-spend: members whose ledger usage for today exceeds their daily limit (must be 0);
- wrongful refusals: refused requests that would have fit in what the member still had left at
  the end (remaining only shrinks during the burst, so such a refusal was wrong when made).

Single process, no network: the store is the only thing measured. With ``--postgres`` (an
admin URL, e.g. ``postgresql://postgres@/postgres?host=/socket``) the store is a fresh database
created on that server for the run and dropped after it, instead of the SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench._support import percentile, sample_request
from core.jobs import JobOrigin, JobState, new_job_id
from core.quota import job_cost
from core.store import NewJob, QuotaExceeded, QuotaLimits, Store, TooManyJobs, utc_day

GUILD_ID = 1
CHANNEL_ID = 2
LIMIT_CYCLE = (60, 120, 300, 1_000, 1_000_000)
MAX_CONCURRENT = 1_000_000  # only the daily seconds limit is under test


@dataclass
class Outcome:
    user_id: int
    cost: int
    accepted: bool
    seconds: float  # from the burst's start to this request's answer
    error: str | None = None


def new_job(user_id: int, duration: int, now: float) -> NewJob:
    built = sample_request(duration=duration, seed=user_id)
    return NewJob(
        id=new_job_id(),
        guild_id=GUILD_ID,
        channel_id=CHANNEL_ID,
        user_id=user_id,
        origin=JobOrigin.COMMAND,
        request=built.request,
        references=built.references,
        cost_seconds=job_cost(built.request, 1.0),
        deadline_at=now + 1800,
    )


async def history(store: Store, members: dict[int, QuotaLimits], now: float) -> None:
    """One delivered (committed) and one failed (refunded) job per member, earlier today."""
    for user_id, limits in members.items():
        for final in (JobState.DELIVERED, JobState.FAILED):
            job = await store.create_job(new_job(user_id, 2, now), limits, now)
            await store.transition(job.id, JobState.SUBMITTING, now)
            if final is JobState.DELIVERED:
                await store.transition(job.id, JobState.SUBMITTED, now, task_id=f"t-{job.id}")
                await store.transition(job.id, JobState.COMPLETED, now, result_url="https://x/v")
            await store.transition(job.id, final, now)


async def one(
    store: Store, user_id: int, duration: int, limits: QuotaLimits, started: float
) -> Outcome:
    now = time.time()
    job = new_job(user_id, duration, now)
    try:
        await store.create_job(job, limits, now)
    except (QuotaExceeded, TooManyJobs) as exc:
        return Outcome(user_id, job.cost_seconds, False, time.perf_counter() - started, str(exc))
    return Outcome(user_id, job.cost_seconds, True, time.perf_counter() - started)


@asynccontextmanager
async def fresh_store(postgres: str | None) -> AsyncIterator[Store]:
    """A new store: a SQLite file in a temporary directory, or a new PostgreSQL database."""
    if postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            async with Store.open(Path(tmp) / "quota.sqlite3") as store:
                yield store
        return
    name = f"wanbot_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(postgres)
        url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
        async with Store.open(url) as store:
            yield store
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    members = {
        1000 + index: QuotaLimits(LIMIT_CYCLE[index % len(LIMIT_CYCLE)], MAX_CONCURRENT)
        for index in range(args.members)
    }
    plan = [(rng.choice(list(members)), rng.randint(2, 10)) for _ in range(args.requests)]
    async with fresh_store(args.postgres) as store:
        now = time.time()
        day = utc_day(now)
        await history(store, members, now)
        before = {user: await store.usage(GUILD_ID, user, day) for user in members}

        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(one(store, user, duration, members[user], started) for user, duration in plan)
        )
        wall = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)

        after = {user: await store.usage(GUILD_ID, user, day) for user in members}
        unfinished = {user: await store.unfinished_count(GUILD_ID, user) for user in members}

    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    accepted = [o for o in outcomes if o.accepted]
    latencies = [o.seconds * 1000 for o in outcomes]
    print(
        f"{len(outcomes)} concurrent create_job calls, {args.members} members:"
        f" {len(accepted)} accepted, {len(outcomes) - len(accepted)} refused in {wall:.2f} s"
    )
    print(
        f"throughput: {len(outcomes) / wall:.0f} decisions/s,"
        f" {len(accepted) / wall:.0f} accepted reservations/s;"
        f" CPU {cpu:.2f} s ({cpu / len(outcomes) * 1000:.2f} ms/request)"
    )
    print(
        f"latency (burst start -> answer): min {min(latencies):.0f} ms,"
        f" p50 {percentile(latencies, 0.5):.0f} ms,"
        f" p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms"
    )

    by_user: dict[int, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_user[outcome.user_id].append(outcome)
    over_spent = 0
    wrongful = 0
    other_errors = 0
    print("member  limit/day  before  +accepted  ledger-usage  refused  left  over?")
    for user, limits in members.items():
        mine = by_user[user]
        granted = sum(o.cost for o in mine if o.accepted)
        refused = [o for o in mine if not o.accepted]
        left = limits.daily_seconds - after[user]
        over = after[user] > limits.daily_seconds
        over_spent += over
        # Every refusal must have been for more than the member had left, even at the end.
        wrongful += sum(1 for o in refused if o.cost <= left and "quota" in (o.error or ""))
        other_errors += sum(1 for o in refused if "quota" not in (o.error or ""))
        consistent = before[user] + granted == after[user]
        print(
            f"{user:>6}  {limits.daily_seconds:>9}  {before[user]:>6}  {granted:>9}"
            f"  {after[user]:>12}{'' if consistent else '!'}  {len(refused):>7}"
            f"  {left:>4}  {'OVER' if over else 'no'}"
            f"   ({unfinished[user]} unfinished)"
        )
    print(
        f"over-spend: {over_spent} member(s) above their daily limit;"
        f" wrongful refusals: {wrongful}; refusals for another reason: {other_errors}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="concurrent requests (≤ 20000)")
    parser.add_argument("--members", type=int, default=10, help="members sharing the requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--postgres", metavar="ADMIN_URL", help="run on a new database of this PostgreSQL server"
    )
    args = parser.parse_args()
    if not 1 <= args.requests <= 20_000 or not 1 <= args.members <= 1000:
        parser.error("--requests must be 1..20000 and --members 1..1000")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
