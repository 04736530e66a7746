"""Benchmark: quota reservations under N concurrent requests, on SQLite and on PostgreSQL side
by side, and whether any member over-spends.

    python -m bench.quota [--requests 1000] [--members 10] [--rounds 3] [--seed 1]
                          [--postgres ADMIN_URL]

What is measured: ``Store.create_job`` (the check + insert + ledger reservation that
``VideoService.accept`` relies on) called by ``--requests`` coroutines at once, through
``asyncio.gather``, against a fresh store: a new SQLite file (WAL, as the bot opens it), and a new
database on the PostgreSQL server named by ``--postgres`` or ``TEST_DATABASE_URL`` (an admin URL,
e.g. ``postgresql://postgres@/postgres?host=/socket``; created for the run, dropped after it).
Without either, one line says so and SQLite alone is measured. Requests are spread at random over
``--members`` members of one server; each request costs 2-10 s (a random duration at 720P).
Member limits cycle through 60, 120, 300, 1 000 and 1 000 000 seconds a day, so with about 600 s
asked per member the first three run out and the last two never do. Before the burst each member
has one delivered job and one failed (refunded) job today, so balances come from a ledger with
reserve, commit and refund rows, as in production.

The same scenario function runs once per engine per round, each time in a fresh interpreter
(``bench._engines``), the engines taking turns for ``--rounds`` rounds; the same seed gives both
the same requests in the same order.

Printed: per member (first round): limit, usage before the burst, seconds accepted in it, ledger
usage after (marked ``!`` if it is not before + accepted), refusals, seconds left. Then one table,
a column per engine, each figure the median of the rounds (lowest–highest): decisions/s and
accepted reservations/s over the burst's wall time; per-request latency from the burst's start
(p50/p99/max: every reservation is serialised, one at a time across every process, so latency is
mostly queueing); CPU per request of this process and, on PostgreSQL, of the server's backends
serving the database (from ``/proc``, when the server runs on this machine), and the two
together. Then the checks, summed over every round:

- over-spend: members whose ledger usage for today exceeds their daily limit (must be 0);
- wrongful refusals: refused requests that would have fit in what the member still had left at
  the end (remaining only shrinks during the burst, so such a refusal was wrong when made);
- refusals for any other reason, and members whose ledger is not before + accepted (both 0).

No network besides the database's socket: the store is the only thing measured.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench._engines import (
    engines,
    fresh_target,
    machine_load,
    per_engine,
    postgres_admin,
    side_by_side,
)
from bench._support import cpu_seconds, percentile, sample_request
from core.jobs import JobOrigin, JobState, new_job_id
from core.quota import job_cost
from core.store import NewJob, QuotaExceeded, QuotaLimits, Store, TooManyJobs, utc_day

GUILD_ID = 1
CHANNEL_ID = 2
LIMIT_CYCLE = (60, 120, 300, 1_000, 1_000_000)
MAX_CONCURRENT = 1_000_000  # only the daily seconds limit is under test
Figures = dict[str, Any]  # one engine's figures (pickled back from its process)


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


def run(engine: str, admin: str | None, requests: int, members: int, seed: int) -> Figures:
    """The scenario on one engine (in a process of its own: see bench._engines)."""
    return asyncio.run(measure(engine, admin, requests, members, seed))


async def measure(engine: str, admin: str | None, requests: int, count: int, seed: int) -> Figures:
    rng = random.Random(seed)
    members = {
        1000 + index: QuotaLimits(LIMIT_CYCLE[index % len(LIMIT_CYCLE)], MAX_CONCURRENT)
        for index in range(count)
    }
    plan = [(rng.choice(list(members)), rng.randint(2, 10)) for _ in range(requests)]
    async with fresh_target(engine, admin) as target, Store.open(target.location) as store:
        now = time.time()
        day = utc_day(now)
        await history(store, members, now)
        before = {user: await store.usage(GUILD_ID, user, day) for user in members}

        if target.server is not None:
            target.server.start()
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(one(store, user, duration, members[user], started) for user, duration in plan)
        )
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        server = await target.server.stop() if target.server is not None else None

        after = {user: await store.usage(GUILD_ID, user, day) for user in members}
        unfinished = {user: await store.unfinished_count(GUILD_ID, user) for user in members}

    accepted = [o for o in outcomes if o.accepted]
    latencies = [o.seconds * 1000 for o in outcomes]
    figures: Figures = {
        "requests": len(outcomes),
        "members_count": count,
        "accepted": len(accepted),
        "wall": wall,
        "decisions": len(outcomes) / wall,
        "reservations": len(accepted) / wall,
        "min": min(latencies),
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "cpu": cpu,
        "server_cpu": server,
        "backends": target.server.backends if target.server is not None else None,
    }
    by_user: dict[int, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_user[outcome.user_id].append(outcome)
    over_spent = wrongful = other_errors = inconsistent = 0
    table = ["member  limit/day  before  +accepted  ledger-usage  refused  left  over?"]
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
        inconsistent += not consistent
        table.append(
            f"{user:>6}  {limits.daily_seconds:>9}  {before[user]:>6}  {granted:>9}"
            f"  {after[user]:>12}{'' if consistent else '!'}  {len(refused):>7}"
            f"  {left:>4}  {'OVER' if over else 'no'}"
            f"   ({unfinished[user]} unfinished)"
        )
    figures |= {
        "members": table,
        "over_spent": over_spent,
        "wrongful": wrongful,
        "other_errors": other_errors,
        "inconsistent": inconsistent,
    }
    return figures


def report(results: dict[str, list[Figures]]) -> None:
    """Every engine's figures side by side: the median of the rounds, (the range), and the
    checks' counts summed over all rounds."""
    rounds = len(next(iter(results.values())))

    def row(
        label: str, value: Callable[[Figures], float | None], unit: str = "", digits: int = 0
    ) -> tuple[str, dict[str, str]]:
        cells = {}
        for name, runs in results.items():
            values = [value(figures) for figures in runs]
            if any(v is None for v in values):
                cells[name] = "in process" if runs[0]["backends"] is None else "not local"
                continue
            known = [v for v in values if v is not None]
            cell = f"{statistics.median(known):.{digits}f}{unit}"
            if rounds > 1:
                cell += f" ({min(known):.{digits}f}–{max(known):.{digits}f})"
            cells[name] = cell
        return label, cells

    def count(label: str, key: str) -> tuple[str, dict[str, str]]:
        return label, {name: str(sum(f[key] for f in runs)) for name, runs in results.items()}

    def per_request(seconds: float | None, figures: Figures) -> float | None:
        return None if seconds is None else seconds / figures["requests"] * 1000

    first = next(iter(results.values()))[0]
    side_by_side(
        f"{first['requests']} concurrent requests, {first['members_count']} members:"
        + (f" median of {rounds} rounds (lowest–highest)" if rounds > 1 else " one round"),
        [
            row("accepted", lambda f: f["accepted"]),
            row("burst wall time", lambda f: f["wall"], " s", 2),
            row("decisions/s", lambda f: f["decisions"]),
            row("accepted reservations/s", lambda f: f["reservations"]),
            row("latency p50", lambda f: f["p50"], " ms"),
            row("latency p99", lambda f: f["p99"], " ms"),
            row("latency max", lambda f: f["max"], " ms"),
            row("CPU ms/request: this process", lambda f: per_request(f["cpu"], f), "", 2),
            row("CPU ms/request: database", lambda f: per_request(f["server_cpu"], f), "", 2),
            row(
                "CPU ms/request: total",
                lambda f: per_request(f["cpu"] + (f["server_cpu"] or 0.0), f),
                "",
                2,
            ),
            count("over-spend, all rounds (must be 0)", "over_spent"),
            count("wrongful refusals, all rounds", "wrongful"),
            count("refusals for another reason", "other_errors"),
            count("ledger != before + accepted", "inconsistent"),
        ],
    )


def main(args: argparse.Namespace) -> None:
    print(machine_load(), flush=True)
    admin = postgres_admin(args.postgres)
    results = per_engine(
        run,
        engines(admin),
        admin,
        args.requests,
        args.members,
        args.seed,
        rounds=args.rounds,
    )
    for name, runs in results.items():
        print(f"{name}, round 1: per member")
        print("\n".join(runs[0]["members"]))
    print()
    report(results)
    print(machine_load(), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="concurrent requests (≤ 20000)")
    parser.add_argument("--members", type=int, default=10, help="members sharing the requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs per engine, taking turns (≤ 20; default 3)"
    )
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="PostgreSQL server to measure too, on a new database (default: $TEST_DATABASE_URL)",
    )
    args = parser.parse_args()
    if not 1 <= args.requests <= 20_000 or not 1 <= args.members <= 1000:
        parser.error("--requests must be 1..20000 and --members 1..1000")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1..20")
    return args


if __name__ == "__main__":
    main(parse_args())
