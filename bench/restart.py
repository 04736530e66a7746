"""Benchmark: restarting with N unfinished jobs in the database.

    python -m bench.restart [--jobs 10000] [--run-seconds 8] [--submitting N] [--seed 1]

Set-up (not measured): a fresh SQLite database is filled through ``Store`` with ``--jobs`` jobs
split evenly over the unfinished states: ``reserved``, ``submitting``, ``submitted``, ``running``,
``completed`` (create_job, then the legal transitions, timestamped as if the bot had crashed ten
minutes into their life). Jobs past ``submitting`` own a real task on the fake WAN API (a
subprocess in manual mode: tasks move only when told), ``running`` ones are IN_PROGRESS there and
``completed`` ones COMPLETED with a result URL, so the API agrees with the database.

Measured, each time in a fresh process (``python -m bench.restart --worker``) that opens the store
and builds the tracker exactly as bot.py does (``tracker_config(settings)``, 8 req/s API budget):

1. scheduling only: ``await Tracker.start()`` (read every unfinished job, put each back in the
   scheduler), then ``Tracker.stop()`` with no await in between, so the scheduler loop never
   takes a step: no API traffic (the count of API requests is printed as a check). Printed: the
   time start() took, the longest event-loop stall during it (the gateway heartbeat and every
   interaction share that loop), RSS before, after and at peak (peak mark reset just before);
   then the time of one more ``Store.unfinished_states()``, the query start() is built on;
2. loop running (``--run-seconds`` > 0, the default): start() again in a fresh process, then the
   loop runs for that long against the fake API, which answers. The Discord side is a stub that
   returns at once (nothing is downloaded or posted). Printed: API requests by kind against the
   budget (WAN_MAX_RPS in each window of ``core.ratelimit.WINDOW_SECONDS``), deliveries made out
   of the completed jobs waiting,
   the process's CPU seconds and longest loop stall, and the jobs per state afterwards.

``--submitting N`` leaves N jobs in ``submitting`` and shares the rest evenly over the other four
states; the default (a fifth of the jobs) is far more than a crash leaves (at most one per
tracker slot, 32), which makes the per-reconcile cost visible.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

from bench._support import (
    API_KEY,
    ROOT,
    LoopLag,
    cpu_seconds,
    memory_kib,
    mib,
    reset_peak,
    sample_request,
    start_fake_wan,
    stop_process,
)
from core.jobs import Job, JobOrigin, JobState, new_job_id
from core.quota import job_cost
from core.ratelimit import WINDOW_SECONDS, RateLimiter
from core.store import NewJob, QuotaLimits, Store
from core.tracker import VideoSource
from core.wan import WanClient

STATES = (
    JobState.RESERVED,
    JobState.SUBMITTING,
    JobState.SUBMITTED,
    JobState.RUNNING,
    JobState.COMPLETED,
)
AGE_SECONDS = 600.0  # how long before the restart the jobs were created
USERS = 500


# ----------------------------------------------------------------------------- set-up


class FakeTasks:
    """Creates tasks on the fake API (through the bot's own client) and moves them."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url
        # A limiter wide open: the set-up is not what is measured.
        self.client = WanClient(
            session, base_url=base_url, api_key=API_KEY, limiter=RateLimiter(100_000, 10_000)
        )

    async def make(self, job: NewJob, state: JobState) -> tuple[str, str | None]:
        """A task in the API's matching state: (task id, result URL if completed)."""
        task = await self.client.create(job.request)
        action = {JobState.RUNNING: "progress", JobState.COMPLETED: "complete"}.get(state)
        if action is None:
            return task.task_id, None
        url = f"{self.base_url}/_fake/tasks/{task.task_id}/{action}"
        async with self.session.post(url) as response:
            data = (await response.json())["data"]
        generated = data.get("generated") or []
        return task.task_id, (generated[0] if generated else None)


async def populate_one(
    store: Store, tasks: FakeTasks, index: int, state: JobState, rng: random.Random, now: float
) -> None:
    created = now - AGE_SECONDS
    built = sample_request(duration=rng.randint(2, 10), resolution="1080P", seed=index)
    job = NewJob(
        id=new_job_id(),
        guild_id=1,
        channel_id=2,
        user_id=1000 + rng.randrange(USERS),
        origin=JobOrigin.COMMAND,
        request=built.request,
        references=built.references,
        cost_seconds=job_cost(built.request, 1.0),
        deadline_at=created + 1800,
    )
    task_id: str | None = None
    result_url: str | None = None
    if state in (JobState.SUBMITTED, JobState.RUNNING, JobState.COMPLETED):
        task_id, result_url = await tasks.make(job, state)
    await store.create_job(job, QuotaLimits(0, 0, exempt=True), created)
    moment = created
    for step in STATES[1 : STATES.index(state) + 1]:
        moment += 5.0
        fields: dict[str, Any] = {}
        if step is JobState.SUBMITTING:
            fields["submit_attempts"] = 1
        elif step is JobState.SUBMITTED:
            fields["task_id"] = task_id
        elif step is JobState.COMPLETED:
            fields["result_url"] = result_url
        moved = await store.transition(job.id, step, moment, **fields)
        assert moved is not None, f"{job.id}: {step} refused"


def state_plan(count: int, submitting: int | None) -> list[JobState]:
    """Even shares of the five states, or ``submitting`` of those and the rest shared evenly."""
    if submitting is None:
        return [STATES[index * len(STATES) // count] for index in range(count)]
    others = [state for state in STATES if state is not JobState.SUBMITTING]
    rest = count - submitting
    return [JobState.SUBMITTING] * submitting + [
        others[index * len(others) // rest] for index in range(rest)
    ]


async def populate(path: Path, base_url: str, plan: list[JobState], seed: int) -> float:
    rng = random.Random(seed)
    started = time.perf_counter()
    now = time.time()
    count = len(plan)
    rng.shuffle(plan)  # resumed in created_at order: mix the states as a real crash would
    async with aiohttp.ClientSession() as session, Store.open(path) as store:
        tasks = FakeTasks(session, base_url)
        for start in range(0, count, 200):  # bounded batches: at most 200 coroutines at once
            batch = range(start, min(start + 200, count))
            await asyncio.gather(
                *(populate_one(store, tasks, i, plan[i], rng, now + i * 1e-4) for i in batch)
            )
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- worker


class StubEvents:
    """The Discord side, returning at once: only the tracker's own work is measured."""

    def __init__(self) -> None:
        self.changes = 0
        self.deliveries = 0

    async def job_changed(self, job: Job) -> None:
        self.changes += 1

    async def deliver(self, job: Job, video: VideoSource) -> int:
        self.deliveries += 1
        return 1


def request_counter(counts: Counter[str]) -> aiohttp.TraceConfig:
    """Counts the worker's API requests by kind (create, read one task, list)."""

    async def on_start(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        path = params.url.path.rstrip("/")
        if params.method == "POST":
            counts["create"] += 1
        elif path.endswith("wan-2-7"):
            counts["list"] += 1
        else:
            counts["get"] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return trace


async def worker(args: argparse.Namespace) -> None:
    from core.app import build_services
    from core.config import Settings

    settings = Settings.from_env(
        {
            "DISCORD_TOKEN": "unused",
            "FREEPIK_API_KEY": API_KEY,
            "WAN_API_BASE": args.wan,
            "DATABASE_PATH": args.db,
        }
    )
    requests: Counter[str] = Counter()
    trace = request_counter(requests)
    figures: dict[str, Any] = {}
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        Store.open(settings.database_path) as store,
    ):
        tracker = build_services(settings, store, session).tracker
        events = StubEvents()
        tracker.set_events(events)
        gc.collect()
        await asyncio.sleep(0.2)
        idle = memory_kib()["VmRSS"]
        figures["peak_reset"] = reset_peak()
        lag = LoopLag().start()
        cpu = cpu_seconds()
        started = time.perf_counter()
        figures["scheduled"] = await tracker.start()
        figures["start_seconds"] = time.perf_counter() - started
        figures["start_cpu"] = cpu_seconds() - cpu
        memory = memory_kib()
        figures |= {"idle_kib": idle, "after_kib": memory["VmRSS"], "peak_kib": memory["VmHWM"]}
        if args.run_seconds == 0:
            # No await in between: the loop task start() created is cancelled before its first
            # step, so not one action runs and the API sees nothing.
            await tracker.stop(grace=1.0)
        figures["start_lag"] = await lag.stop()
        if args.run_seconds > 0:
            lag.start()
            cpu = cpu_seconds()
            await asyncio.sleep(args.run_seconds)
            figures["run_lag"] = await lag.stop()
            figures["run_cpu"] = cpu_seconds() - cpu
            await tracker.stop(grace=1.0)
        figures["requests"] = dict(requests)
        figures["changes"] = events.changes
        figures["deliveries"] = events.deliveries
        if args.run_seconds == 0:
            again = time.perf_counter()
            rows = await store.unfinished_states()
            figures["query_seconds"] = time.perf_counter() - again
            figures["query_rows"] = len(rows)
    print(json.dumps(figures), flush=True)


def run_worker(db: Path, base_url: str, run_seconds: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.restart", "--worker", "--db", str(db)]
    command += ["--wan", base_url, "--run-seconds", str(run_seconds)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120 + run_seconds, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"the worker failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def states_in(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
        return {str(state): int(count) for state, count in rows}


# ----------------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    process, base_url = start_fake_wan("--manual", "--media-bytes", "1024")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "restart.sqlite3"
            plan = state_plan(args.jobs, args.submitting)
            seconds = await populate(db, base_url, plan, args.seed)
            split = ", ".join(f"{state} {count}" for state, count in states_in(db).items())
            print(f"set-up: {args.jobs} unfinished jobs ({split}) in {seconds:.1f} s")

            first = await asyncio.to_thread(run_worker, db, base_url, 0.0)
            print(
                f"restart, scheduling only (tracker stopped before its loop ran, no API traffic):"
                f" {first['scheduled']} jobs scheduled in {first['start_seconds']:.2f} s"
                f" ({first['start_seconds'] / max(first['scheduled'], 1) * 1e6:.0f} µs/job,"
                f" {first['start_cpu']:.2f} CPU s); longest event-loop stall"
                f" {first['start_lag'] * 1000:.0f} ms; API requests"
                f" {sum(first['requests'].values())}"
            )
            print(
                f"  memory: RSS {mib(first['idle_kib'])} before start(), {mib(first['after_kib'])}"
                f" after (+{mib(first['after_kib'] - first['idle_kib'])}), peak"
                f" {mib(first['peak_kib'])} (+{mib(first['peak_kib'] - first['idle_kib'])})"
                + ("" if first["peak_reset"] else " [peak since process start]")
            )
            print(
                f"  one more Store.unfinished_states() ({first['query_rows']} rows, warm cache):"
                f" {first['query_seconds'] * 1000:.0f} ms"
            )
            if args.run_seconds > 0:
                second = await asyncio.to_thread(run_worker, db, base_url, args.run_seconds)
                requests = second["requests"]
                # WAN_MAX_RPS in each window (a second and its margin) the run began.
                budget = 8 * math.ceil(args.run_seconds / WINDOW_SECONDS)
                waiting = plan.count(JobState.COMPLETED)
                print(
                    f"restart, loop running {args.run_seconds:g} s against the fake API"
                    f" (after a start() of {second['start_seconds']:.2f} s):"
                    f" API requests {sum(requests.values())} of a budget of {budget:g}"
                    f" ({requests.get('create', 0)} create, {requests.get('get', 0)} get,"
                    f" {requests.get('list', 0)} list = reconciles);"
                    f" delivery called for {second['deliveries']} of the {waiting} completed jobs;"
                    f" {second['changes']} state changes told"
                )
                print(
                    f"  bot-side CPU {second['run_cpu']:.1f} s in {args.run_seconds:g} s;"
                    f" longest event-loop stall {second['run_lag'] * 1000:.0f} ms"
                )
                after = ", ".join(f"{state} {count}" for state, count in states_in(db).items())
                print(f"  jobs afterwards: {after}")
    finally:
        stop_process(process)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="unfinished jobs (≤ 50000)")
    parser.add_argument(
        "--run-seconds", type=float, default=8.0, help="loop phase length (0: skip it)"
    )
    parser.add_argument(
        "--submitting",
        type=int,
        default=None,
        help="jobs left 'submitting' (default: a fifth, like every other state)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--wan", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 5 <= args.jobs <= 50_000 or not 0 <= args.run_seconds <= 60:
        parser.error("--jobs must be 5..50000 and --run-seconds 0..60")
    if args.submitting is not None and not 0 <= args.submitting <= args.jobs - 4:
        parser.error("--submitting must be 0..jobs-4")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    asyncio.run(worker(arguments) if arguments.worker else main(arguments))
