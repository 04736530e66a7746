"""Benchmark: one tracker following N jobs at once against the fake WAN API (in a subprocess).

    python -m bench.tracker [--jobs 2000] [--task-seconds 6] [--spread 0.15] [--rps 400]

Prints, for the measured batch: API reads (GETs) per job, detection lag (from the moment the fake
task finished to the moment the tracker recorded completion) p50/p99, the tracker process's CPU
seconds and peak RSS. A warm-up batch first lets the tracker learn run times, as it would in
production; its figures are printed separately.

The API's real budget is 10 requests/s per IP; ``--rps`` lifts the bot's limiter so that thousands
of jobs fit in a minute here. Reads per job is the figure that carries over to the real budget.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench._support import API_KEY, percentile, start_fake_wan, stop_process
from core.config import Settings
from core.jobs import Job, JobState
from core.ratelimit import RateLimiter
from core.references import Attachment, GenerationOptions, ReferenceInput, build_request
from core.service import Requester, VideoService
from core.store import Store
from core.tracker import Tracker, TrackerConfig, VideoSource
from core.wan import RetrySettings, WanClient


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


def start_fake(task_seconds: float, spread: float) -> tuple[subprocess.Popen[str], str]:
    return start_fake_wan(
        "--task-seconds",
        str(task_seconds),
        "--task-spread",
        str(spread),
        "--scale-by-duration",
        "--media-bytes",
        "1024",
    )


async def run_batch(
    service: VideoService, events: CountingEvents, count: int, rng: random.Random
) -> list[Job]:
    image = Attachment("https://cdn.example/a.png", "a.png", "image/png", 10_000, 512, 512)
    jobs = []
    for index in range(count):
        options = GenerationOptions(
            duration=rng.randint(2, 10), resolution=rng.choice(("720P", "1080P")), seed=index
        )
        built = build_request("Image 1 waves", [ReferenceInput(1, image)], options)
        who = Requester(guild_id=1, channel_id=2, user_id=index)
        jobs.append(await service.accept(who, built))
    await asyncio.gather(*(events.event(job.id).wait() for job in jobs))
    finals = [await service.store.get_job(job.id) for job in jobs]
    return [job for job in finals if job is not None]


async def report(
    label: str, jobs: list[Job], session: aiohttp.ClientSession, base_url: str
) -> dict[str, Any]:
    async with session.get(f"{base_url}/_fake/tasks") as response:
        finished_at = {
            task["task_id"]: task["finished_at"] for task in (await response.json())["tasks"]
        }
    lags = [
        job.completed_at - finished_at[job.task_id]
        for job in jobs
        if job.completed_at is not None and job.task_id and finished_at.get(job.task_id)
    ]
    delivered = sum(job.state is JobState.DELIVERED for job in jobs)
    reads = [job.poll_count for job in jobs]
    figures = {
        "jobs": len(jobs),
        "delivered": delivered,
        "reads_per_job": statistics.mean(reads),
        "reads_max": max(reads),
        "lag_p50": percentile(lags, 0.5),
        "lag_p99": percentile(lags, 0.99),
    }
    print(
        f"{label}: {delivered}/{len(jobs)} delivered;"
        f" API reads/job mean {figures['reads_per_job']:.2f}"
        f" (max {figures['reads_max']}); detection lag p50 {figures['lag_p50']:.2f} s,"
        f" p99 {figures['lag_p99']:.2f} s"
    )
    return figures


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    process, base_url = start_fake(args.task_seconds, args.spread)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database = Path(tmp) / "bench.sqlite3"
            settings = Settings.from_env(
                {
                    "DISCORD_TOKEN": "bench",
                    "FREEPIK_API_KEY": API_KEY,
                    "WAN_API_BASE": base_url,
                    "QUOTA_DAILY_SECONDS": "1000000",
                    "QUOTA_MAX_CONCURRENT": "1000000",
                }
            )
            async with aiohttp.ClientSession() as session, Store.open(database) as store:
                client = WanClient(
                    session,
                    base_url=base_url,
                    api_key=API_KEY,
                    limiter=RateLimiter(args.rps, max(int(args.rps / 4), 1)),
                    retry=RetrySettings(max_attempts=6, base_delay=0.2),
                )
                config = TrackerConfig(
                    max_rps=args.rps, burst=max(int(args.rps / 4), 1), lag_target=args.lag_target
                )
                tracker = Tracker(store, client, session, config=config)
                events = CountingEvents()
                tracker.set_events(events)
                service = VideoService(settings, store, tracker)
                await tracker.start()
                try:
                    warm = await run_batch(service, events, args.warmup, rng)
                    await report("warm-up", warm, session, base_url)
                    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
                    wall = time.perf_counter()
                    jobs = await run_batch(service, events, args.jobs, rng)
                    wall = time.perf_counter() - wall
                    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
                    await report(f"measured ({args.jobs} jobs)", jobs, session, base_url)
                    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
                        cpu_after.ru_stime - cpu_before.ru_stime
                    )
                    print(
                        f"tracker process: {cpu:.1f} CPU s over {wall:.1f} s wall"
                        f" ({cpu / len(jobs) * 1000:.2f} CPU ms/job);"
                        f" peak RSS {cpu_after.ru_maxrss / 1024:.0f} MiB"
                    )
                finally:
                    await tracker.stop()
    finally:
        stop_process(process)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="measured jobs (up to 10000)")
    parser.add_argument("--warmup", type=int, default=180, help="jobs run first to learn timings")
    parser.add_argument("--task-seconds", type=float, default=6.0, help="run time of a 5 s video")
    parser.add_argument("--spread", type=float, default=0.15, help="run time varies ± this share")
    parser.add_argument("--rps", type=float, default=400.0, help="the bot's API request budget")
    parser.add_argument("--lag-target", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
