"""Benchmark: one tracker following many jobs against the fake WAN API (in a subprocess), on
SQLite and on PostgreSQL side by side.

    python -m bench.tracker                 warm: 180 jobs to learn from, then 2,000 measured
    python -m bench.tracker --cold          the three cold modes below, one after the other
    python -m bench.tracker --mode NAME     one mode: warm, cold-short, cold-long, saturated
    ... [--jobs N] [--seed 1] [--postgres ADMIN_URL]

Each mode runs once per engine: the store on a new SQLite file, then on a new database of the
PostgreSQL server named by ``--postgres`` or ``TEST_DATABASE_URL`` (an admin URL; the database is
created for the run and dropped after it); without either, one line says so and SQLite alone
runs. Each run is the same scenario function in a fresh interpreter (``bench._engines``) with its
own fake API, the same seed and the same settings but ``DATABASE_PATH`` / ``DATABASE_URL``: the
engine is the only difference.

Every mode builds the tracker as bot.py does (``tracker_config(settings)``: default tracker
settings) over an empty database, against a fake API whose tasks take known times:

- ``warm``: tasks of 6 s × duration/5 ± 15 %, limiter lifted to 400 req/s so that thousands fit
  in a minute; a warm-up batch first (its figures printed apart) lets the model learn.
- ``cold-short``: 20 jobs, tasks of 15–30 s, the default budget (8 req/s): the prior expects
  60 s + 12 s × duration, far too long.
- ``cold-long``: 20 jobs of 2 s videos, tasks 3× the prior (252 s ± 10 %): lag is also shown as a
  share of the run time.
- ``saturated``: 2,000 jobs at once, tasks as in ``warm``, the default budget (8 req/s): reads
  compete with creates; figures also for the jobs submitted after the model trusted their kind.

Printed per mode and engine, on one line naming both, then per mode as a table with a column per
engine: jobs delivered, API reads (GETs of one task) per job, detection lag (the fake task's finish
→ the tracker recording completion) p50/p99/max, the most API requests the fake received in any
1 s window (every create, read and list; the limit in brackets), CPU ms per job of the tracker's
process and, on PostgreSQL, of the server's backends serving the database (from ``/proc``, when
the server runs on this machine), and the tracker process's peak RSS. Timings are one run on a
shared machine: read ratios and orders of magnitude.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench._engines import (
    engines,
    fresh_target,
    machine_load,
    per_engine,
    postgres_admin,
    side_by_side,
)
from bench._support import (
    API_KEY,
    cpu_seconds,
    memory_kib,
    most_in_window,
    percentile,
    start_fake_wan,
    stop_process,
)
from core.app import build_services
from core.config import Settings
from core.jobs import Job, JobState
from core.references import Attachment, GenerationOptions, ReferenceInput, build_request
from core.service import Requester, VideoService
from core.store import Store
from core.tracker import VideoSource


@dataclass(frozen=True)
class Mode:
    name: str
    what: str
    jobs: int
    fake: tuple[str, ...]  # the fake API's run-time options
    rps: float = 8.0
    burst: int = 40
    warmup: int = 0
    durations: tuple[int, ...] = tuple(range(2, 11))


SCALED = ("--task-seconds", "6", "--task-spread", "0.15", "--scale-by-duration")
MODES = {
    mode.name: mode
    for mode in (
        Mode(
            "warm",
            "tasks 2.0–13.8 s, 400 req/s, after 180 to learn from",
            2000,
            SCALED,
            rps=400.0,
            burst=100,
            warmup=180,
        ),
        Mode(
            "cold-short",
            "empty database, tasks 15–30 s, 8 req/s",
            20,
            ("--task-seconds", "22.5", "--task-spread", "0.3334"),
        ),
        Mode(
            "cold-long",
            "empty database, tasks 3× the prior (252 s ± 10 %), 8 req/s",
            20,
            ("--task-seconds", "252", "--task-spread", "0.1"),
            durations=(2,),
        ),
        Mode("saturated", "empty database, tasks 2.0–13.8 s, 8 req/s", 2000, SCALED),
    )
}
COLD = ("cold-short", "cold-long", "saturated")
Figures = dict[str, Any]  # one mode's figures on one engine (pickled back from its process)


class CountingEvents:
    """The Discord side reduced to counting: delivery returns at once (tracking is measured)."""

    def __init__(self) -> None:
        self.finished: dict[str, asyncio.Event] = {}

    def event(self, job_id: str) -> asyncio.Event:
        return self.finished.setdefault(job_id, asyncio.Event())

    async def job_changed(self, job: Job) -> None:
        if job.state.is_finished:
            self.event(job.id).set()

    async def deliver(self, job: Job, video: VideoSource) -> int:
        return 1


async def run_batch(
    service: VideoService, events: CountingEvents, count: int, mode: Mode, rng: random.Random
) -> list[Job]:
    image = Attachment("https://cdn.example/a.png", "a.png", "image/png", 10_000, 512, 512)
    jobs = []
    for index in range(count):
        options = GenerationOptions(
            duration=rng.choice(mode.durations),
            resolution=rng.choice(("720P", "1080P")),
            seed=index,
        )
        built = build_request("Image 1 waves", [ReferenceInput(1, image)], options)
        who = Requester(guild_id=1, channel_id=2, user_id=index)
        jobs.append(await service.accept(who, built))
    await asyncio.gather(*(events.event(job.id).wait() for job in jobs))
    finals = [await service.store.get_job(job.id) for job in jobs]
    return [job for job in finals if job is not None]


async def fake_state(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    async with session.get(f"{base_url}/_fake/tasks") as response:
        tasks = (await response.json())["tasks"]
    async with session.get(f"{base_url}/_fake/requests?brief=1") as response:
        requests = (await response.json())["requests"]
    return {
        "finished": {task["task_id"]: task["finished_at"] for task in tasks},
        "created": {task["task_id"]: task["created_at"] for task in tasks},
        "arrivals": [request["at"] for request in requests],
    }


def lag_figures(jobs: Sequence[Job], fake: dict[str, Any]) -> dict[str, float]:
    lags, shares = [], []
    for job in jobs:
        finished = fake["finished"].get(job.task_id or "")
        if job.completed_at is None or finished is None:
            continue
        lags.append(job.completed_at - finished)
        shares.append(lags[-1] / (finished - fake["created"][job.task_id]))
    reads = [job.poll_count for job in jobs]
    return {
        "jobs": len(jobs),
        "delivered": sum(job.state is JobState.DELIVERED for job in jobs),
        "reads": statistics.mean(reads) if reads else 0.0,
        "p50": percentile(lags, 0.5) if lags else 0.0,
        "p99": percentile(lags, 0.99) if lags else 0.0,
        "max": max(lags, default=0.0),
        "share_p99": percentile(shares, 0.99) if shares else 0.0,
    }


def trusted_since(jobs: Sequence[Job], after: int = 5) -> dict[tuple[str, int], float]:
    """When the model had seen ``after`` completions of each kind (resolution, duration)."""
    done: dict[tuple[str, int], list[float]] = {}
    for job in jobs:
        if job.completed_at is not None:
            kind = (job.request.resolution, job.request.duration)
            done.setdefault(kind, []).append(job.completed_at)
    return {kind: sorted(times)[after - 1] for kind, times in done.items() if len(times) >= after}


def describe(label: str, figures: dict[str, float], long: bool = False) -> str:
    text = (
        f"{label}: {figures['delivered']:.0f}/{figures['jobs']:.0f} delivered;"
        f" reads/job {figures['reads']:.2f}; lag p50 {figures['p50']:.2f} s,"
        f" p99 {figures['p99']:.2f} s, max {figures['max']:.2f} s"
    )
    if long:
        text += f" (p99 {figures['share_p99']:.1%} of the run time)"
    return text


def run(engine: str, admin: str | None, mode: Mode, seed: int) -> Figures:
    """One mode on one engine (in a process of its own: see bench._engines)."""
    return asyncio.run(run_mode(engine, admin, mode, seed))


async def run_mode(engine: str, admin: str | None, mode: Mode, seed: int) -> Figures:
    rng = random.Random(seed)
    process, base_url = start_fake_wan(*mode.fake, "--media-bytes", "1024")
    try:
        return await measure(engine, admin, mode, rng, base_url)
    finally:
        stop_process(process)


async def measure(
    engine: str, admin: str | None, mode: Mode, rng: random.Random, base_url: str
) -> Figures:
    found: Figures = {}
    async with fresh_target(engine, admin) as target:
        environ = {
            "DISCORD_TOKEN": "bench",
            "FREEPIK_API_KEY": API_KEY,
            "WAN_API_BASE": base_url,
            "QUOTA_DAILY_SECONDS": "10000000",
            "QUOTA_MAX_CONCURRENT": "1000000",
            "WAN_MAX_RPS": f"{mode.rps:g}",
            "WAN_BURST": str(mode.burst),
        }
        # The one difference between the engines' runs: where the store lives.
        if isinstance(target.location, Path):
            environ["DATABASE_PATH"] = str(target.location)
        else:
            environ["DATABASE_URL"] = target.location
        settings = Settings.from_env(environ)
        async with (
            aiohttp.ClientSession() as session,
            Store.open(settings.database_target) as store,
        ):
            services = build_services(settings, store, session)  # as the bot wires them
            tracker, service = services.tracker, services.service
            events = CountingEvents()
            tracker.set_events(events)
            await tracker.start()
            try:
                if mode.warmup:
                    warm = await run_batch(service, events, mode.warmup, mode, rng)
                    found["warmup"] = lag_figures(warm, await fake_state(session, base_url))
                    print(describe(f"  {engine} {mode.name} warm-up", found["warmup"]), flush=True)
                if target.server is not None:
                    target.server.start()
                cpu = cpu_seconds()
                jobs = await run_batch(service, events, mode.jobs, mode, rng)
                cpu = cpu_seconds() - cpu
                server = await target.server.stop() if target.server is not None else None
                peak_rss = memory_kib()["VmHWM"] / 1024  # before the fake's records are read
            finally:
                await tracker.stop()
            fake = await fake_state(session, base_url)
    figures = lag_figures(jobs, fake)
    found |= {
        "figures": figures,
        "most_in_second": most_in_window(fake["arrivals"], 1.0),
        "cpu_ms": cpu / len(jobs) * 1000,
        "server_ms": None if server is None else server / len(jobs) * 1000,
        "backends": target.server.backends if target.server is not None else None,
        "peak_rss": peak_rss,
    }
    line = describe(
        f"{engine} {mode.name} ({mode.jobs} jobs, {mode.what})", figures, mode.name == "cold-long"
    )
    line += (
        f"; most API requests in 1 s: {found['most_in_second']}"
        f" (limit {mode.rps:g}); {found['cpu_ms']:.1f} CPU ms/job"
        + ("" if server is None else f" (+ {found['server_ms']:.1f} in the database server)")
        + f"; peak RSS {peak_rss:.0f} MiB"
    )
    print(line, flush=True)
    if mode.name == "saturated":
        since = trusted_since(jobs)
        later = [
            job
            for job in jobs
            if job.submitted_at is not None
            and job.submitted_at
            >= since.get((job.request.resolution, job.request.duration), float("inf"))
        ]
        found["later"] = lag_figures(later, fake)
        label = f"  {engine} {mode.name}, the {len(later)} jobs submitted once the model trusted"
        print(describe(f"{label} their kind", found["later"]), flush=True)
    return found


def report(mode: Mode, results: dict[str, Figures]) -> None:
    """One mode's figures on every engine, side by side."""

    def row(label: str, cell: Callable[[Figures], str]) -> tuple[str, dict[str, str]]:
        return label, {name: cell(found) for name, found in results.items()}

    def lags(prefix: str, key: str) -> list[tuple[str, dict[str, str]]]:
        return [
            row(f"{prefix}reads/job", lambda f: f"{f[key]['reads']:.2f}"),
            row(f"{prefix}lag p50", lambda f: f"{f[key]['p50']:.2f} s"),
            row(f"{prefix}lag p99", lambda f: f"{f[key]['p99']:.2f} s"),
        ]

    def server(found: Figures) -> str:
        if found["server_ms"] is None:
            return "in process" if found["backends"] is None else "not local"
        return f"{found['server_ms']:.1f} ({found['backends']} backends)"

    rows = [
        row("delivered", lambda f: f"{f['figures']['delivered']}/{f['figures']['jobs']}"),
        *lags("", "figures"),
        row("lag max", lambda f: f"{f['figures']['max']:.2f} s"),
    ]
    if mode.name == "cold-long":
        rows.append(row("lag p99 / run time", lambda f: f"{f['figures']['share_p99']:.1%}"))
    rows += [
        row(f"most API requests in 1 s (limit {mode.rps:g})", lambda f: str(f["most_in_second"])),
        row("CPU ms/job: tracker process", lambda f: f"{f['cpu_ms']:.1f}"),
        row("CPU ms/job: database server", server),
        row("CPU ms/job: total", lambda f: f"{f['cpu_ms'] + (f['server_ms'] or 0.0):.1f}"),
        row("peak RSS (tracker process)", lambda f: f"{f['peak_rss']:.0f} MiB"),
    ]
    if mode.warmup:
        rows += lags("warm-up: ", "warmup")
    if mode.name == "saturated":
        rows += lags("once trusted: ", "later")
    side_by_side(f"{mode.name}: {mode.jobs} jobs, {mode.what}", rows)


def main(args: argparse.Namespace) -> None:
    print(machine_load(), flush=True)
    admin = postgres_admin(args.postgres)
    names = engines(admin)
    chosen = [args.mode] if args.mode else list(COLD if args.cold else ("warm",))
    for name in chosen:
        mode = MODES[name]
        if args.jobs is not None:
            mode = Mode(**{**mode.__dict__, "jobs": args.jobs})
        results = per_engine(run, names, admin, mode, args.seed)
        print()
        report(mode, {name: runs[0] for name, runs in results.items()})
        print(machine_load(), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cold", action="store_true", help="run the cold modes")
    parser.add_argument("--mode", choices=sorted(MODES), help="run one mode")
    parser.add_argument("--jobs", type=int, help="measured jobs (default: the mode's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="PostgreSQL server to measure too, on a new database (default: $TEST_DATABASE_URL)",
    )
    args = parser.parse_args()
    if args.jobs is not None and not 1 <= args.jobs <= 10_000:
        parser.error("--jobs must be 1..10000")
    return args


if __name__ == "__main__":
    main(parse_args())
