"""Benchmark: one tracker following many jobs against the fake WAN API (in a subprocess).

    python -m bench.tracker                 warm: 180 jobs to learn from, then 2,000 measured
    python -m bench.tracker --cold          the three cold modes below, one after the other
    python -m bench.tracker --mode NAME     one mode: warm, cold-short, cold-long, saturated

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

Printed per mode, on one line naming it: jobs delivered, API reads (GETs of one task) per job,
detection lag (the fake task's finish → the tracker recording completion) p50/p99/max, the most API
requests the fake received in any 1 s window (every create, read and list; the limit in
brackets), the tracker process's CPU ms per job and peak RSS. Timings are one run on a shared
machine: read ratios and orders of magnitude.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

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


async def run_mode(mode: Mode, seed: int) -> None:
    rng = random.Random(seed)
    process, base_url = start_fake_wan(*mode.fake, "--media-bytes", "1024")
    try:
        await measure(mode, rng, base_url)
    finally:
        stop_process(process)


async def measure(mode: Mode, rng: random.Random, base_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(
            {
                "DISCORD_TOKEN": "bench",
                "FREEPIK_API_KEY": API_KEY,
                "WAN_API_BASE": base_url,
                "DATABASE_PATH": str(Path(tmp) / "bench.sqlite3"),
                "QUOTA_DAILY_SECONDS": "10000000",
                "QUOTA_MAX_CONCURRENT": "1000000",
                "WAN_MAX_RPS": f"{mode.rps:g}",
                "WAN_BURST": str(mode.burst),
            }
        )
        async with (
            aiohttp.ClientSession() as session,
            Store.open(settings.database_path) as store,
        ):
            services = build_services(settings, store, session)  # as the bot wires them
            tracker, service = services.tracker, services.service
            events = CountingEvents()
            tracker.set_events(events)
            await tracker.start()
            try:
                if mode.warmup:
                    warm = await run_batch(service, events, mode.warmup, mode, rng)
                    learned = lag_figures(warm, await fake_state(session, base_url))
                    print(describe(f"  {mode.name} warm-up", learned), flush=True)
                cpu = cpu_seconds()
                jobs = await run_batch(service, events, mode.jobs, mode, rng)
                cpu = cpu_seconds() - cpu
                peak_rss = memory_kib()["VmHWM"] / 1024  # before the fake's records are read
            finally:
                await tracker.stop()
            fake = await fake_state(session, base_url)
    figures = lag_figures(jobs, fake)
    line = describe(
        f"{mode.name} ({mode.jobs} jobs, {mode.what})", figures, mode.name == "cold-long"
    )
    line += (
        f"; most API requests in 1 s: {most_in_window(fake['arrivals'], 1.0)}"
        f" (limit {mode.rps:g}); {cpu / len(jobs) * 1000:.1f} CPU ms/job;"
        f" peak RSS {peak_rss:.0f} MiB"
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
        label = f"  {mode.name}, the {len(later)} jobs submitted once the model trusted their kind"
        print(describe(label, lag_figures(later, fake)), flush=True)


async def main(args: argparse.Namespace) -> None:
    names = [args.mode] if args.mode else list(COLD if args.cold else ("warm",))
    for name in names:
        mode = MODES[name]
        if args.jobs is not None:
            mode = Mode(**{**mode.__dict__, "jobs": args.jobs})
        await run_mode(mode, args.seed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cold", action="store_true", help="run the cold modes")
    parser.add_argument("--mode", choices=sorted(MODES), help="run one mode")
    parser.add_argument("--jobs", type=int, help="measured jobs (default: the mode's)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.jobs is not None and not 1 <= args.jobs <= 10_000:
        parser.error("--jobs must be 1..10000")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
