"""Benchmark: relaying a large result video, WAN API → temp file → Discord upload.

    python -m bench.relay [--media-bytes 100000000]

Three processes, all on 127.0.0.1:

- the fake WAN API (``tests.fakes.wan_server --media-bytes N``, a subprocess) holding one
  COMPLETED task whose result is an N-byte MP4 (streamed in 64 KiB chunks, never held whole);
- this process: the local Discord (``FakeDiscord``) for a server at boost tier 3 (100 MiB upload
  limit). The fake reads each upload into memory, so it must not share the measured process;
- the delivering process, measured (``python -m bench.relay --worker``): the real ``WanBot`` (as
  bot.py builds it, cogs loaded, tracker started, HTTP server off) logged in to the fake Discord
  over REST and the gateway, with one job in the store that is ``completed`` with the task's
  result URL.

The worker measures two phases, each after resetting the kernel's peak-RSS mark
(``/proc/self/clear_refs``), so each phase's peak is its own:

1. download: ``core.media.download_video`` streams the result to a temporary file (then deleted);
2. delivery: ``discord_side.delivery.DiscordDelivery.deliver`` for the job, which is what the
   tracker calls: status message and thread, then the same download again and the upload of the
   file as an attachment (multipart ``POST /channels/{thread}/messages``).

Printed per phase: RSS at idle (before the phase), peak RSS and the difference, the time, the
throughput in MB/s (10^6 bytes; for the delivery, the file's size over the whole phase, which
moves it twice), and the longest event-loop stall (a 5 ms timer's worst delay). Finally, what the
fake Discord received (attachment size) as a check that the file went through whole.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from typing import Any

import aiohttp

from bench._support import (
    API_KEY,
    ROOT,
    LoopLag,
    memory_kib,
    mib,
    reset_peak,
    sample_request,
    start_fake_wan,
    stop_process,
)
from core.jobs import JobOrigin, JobState, new_job_id
from core.media import UPLOAD_OVERHEAD_BYTES, download_video
from core.quota import job_cost
from core.store import NewJob, QuotaLimits
from tests.fakes.discord import FakeDiscord
from tests.fakes.wan_server import API_PATH

PREMIUM_TIER = 3  # 100 MiB per file


# ----------------------------------------------------------------------------- the worker


async def measure(label: str, work: Any) -> dict[str, Any]:
    """Run ``work()`` and return its idle/peak RSS, seconds and longest loop stall."""
    gc.collect()
    await asyncio.sleep(0.3)  # let anything pending settle before reading the idle figure
    idle = memory_kib()["VmRSS"]
    exact = reset_peak()
    lag = LoopLag().start()
    started = time.perf_counter()
    result = await work()
    seconds = time.perf_counter() - started
    worst = await lag.stop()
    peak = memory_kib()["VmHWM"]
    return {
        "label": label,
        "idle_kib": idle,
        "peak_kib": peak,
        "exact_peak": exact,
        "seconds": seconds,
        "loop_lag": worst,
        "result": result,
    }


async def worker(args: argparse.Namespace) -> None:
    from bot import WanBot
    from core.app import build_services
    from core.config import Settings
    from core.store import Store
    from discord_side.endpoint import point_discord_at

    config = json.loads(args.worker)
    settings = Settings.from_env(
        {
            "DISCORD_TOKEN": config["token"],
            "FREEPIK_API_KEY": API_KEY,
            "WAN_API_BASE": config["wan"],
            "DISCORD_API_BASE": config["discord"],
            "DATABASE_PATH": config["db"],
            "WEBHOOK_PORT": "0",
        }
    )
    phases: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, Store.open(settings.database_path) as store:
        await point_discord_at(settings.discord_api_base, settings.discord_token, session=session)
        bot = WanBot(build_services(settings, store, session))
        async with bot:
            await bot.login(settings.discord_token)
            connection = asyncio.create_task(bot.connect())
            await asyncio.wait_for(bot.wait_until_ready(), 30)
            channel = bot.get_channel(config["channel_id"])
            limit = channel.guild.filesize_limit

            job = await completed_job(store, config)

            async def download() -> int:
                video = await download_video(
                    session,
                    config["url"],
                    allowed_url=config["url"],
                    max_bytes=limit - UPLOAD_OVERHEAD_BYTES,
                    timeout=300,
                    name="bench",
                )
                async with video:
                    return video.size

            async def deliver() -> int:
                return await bot.delivery.deliver(job, bot.tracker.video_source(job))

            phases.append(await measure("download", download))
            phases.append(await measure("delivery", deliver))
            await bot.close()
            await connection
    print(json.dumps({"phases": phases, "limit": limit}), flush=True)


async def completed_job(store: Any, config: dict[str, Any]) -> Any:
    """A job in ``completed`` with the task's result URL, as the tracker leaves it."""
    built = sample_request(duration=10, resolution="1080P")
    now = time.time()
    job = NewJob(
        id=new_job_id(),
        guild_id=config["guild_id"],
        channel_id=config["channel_id"],
        user_id=config["user_id"],
        origin=JobOrigin.COMMAND,
        request=built.request,
        references=built.references,
        cost_seconds=job_cost(built.request, 1.0),
        deadline_at=now + 1800,
    )
    await store.create_job(job, QuotaLimits(0, 0, exempt=True), now)
    await store.transition(job.id, JobState.SUBMITTING, now)
    await store.transition(job.id, JobState.SUBMITTED, now, task_id=config["task_id"])
    return await store.transition(job.id, JobState.COMPLETED, now, result_url=config["url"])


# ----------------------------------------------------------------------------- the parent


async def completed_task(session: aiohttp.ClientSession, base_url: str) -> tuple[str, str]:
    """Create a task on the fake API and complete it; returns its id and result URL."""
    body = sample_request(duration=10, resolution="1080P").request.to_json()
    headers = {"x-freepik-api-key": API_KEY}
    async with session.post(base_url + API_PATH, json=body, headers=headers) as response:
        task_id = (await response.json())["data"]["task_id"]
    async with session.post(f"{base_url}/_fake/tasks/{task_id}/complete") as response:
        data = (await response.json())["data"]
    return task_id, data["generated"][0]


def report(phase: dict[str, Any], size: int) -> None:
    delta = phase["peak_kib"] - phase["idle_kib"]
    moved = "downloaded" if phase["label"] == "download" else "downloaded + uploaded"
    print(
        f"{phase['label']}: {size / 1e6:.0f} MB {moved} in {phase['seconds']:.2f} s"
        f" = {size / 1e6 / phase['seconds']:.0f} MB/s; RSS idle {mib(phase['idle_kib'])},"
        f" peak {mib(phase['peak_kib'])}, delta {mib(delta)}"
        + ("" if phase["exact_peak"] else " [peak since process start]")
        + f"; longest event-loop stall {phase['loop_lag'] * 1000:.0f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    wan, wan_url = start_fake_wan("--manual", "--media-bytes", str(args.media_bytes))
    fake = FakeDiscord(premium_tier=PREMIUM_TIER)
    try:
        await fake.start()
        async with aiohttp.ClientSession() as session:
            task_id, url = await completed_task(session, wan_url)
        with tempfile.TemporaryDirectory() as tmp:
            config = {
                "token": fake.token,
                "discord": fake.api_base,
                "wan": wan_url,
                "db": f"{tmp}/relay.sqlite3",
                "guild_id": fake.guild_id,
                "channel_id": fake.channel_id,
                "user_id": fake.member.id,
                "task_id": task_id,
                "url": url,
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.relay",
                "--worker",
                json.dumps(config),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(process.communicate(), args.timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise SystemExit("the delivering process did not finish in time") from None
            if process.returncode != 0:
                sys.stderr.write(err.decode(errors="replace")[-4000:])
                raise SystemExit(f"the delivering process failed ({process.returncode})")
        result = json.loads(out.decode().strip().splitlines()[-1])
        print(
            f"result: {args.media_bytes / 1e6:.0f} MB MP4; guild upload limit"
            f" {result['limit'] / 2**20:.0f} MiB (tier {PREMIUM_TIER});"
            f" delivering process = WanBot in a subprocess"
        )
        for phase in result["phases"]:
            report(phase, args.media_bytes)
        uploads = [
            (call.path, file.size)
            for call in fake.calls
            if call.method == "POST" and call.files
            for file in call.files
        ]
        print(
            "fake Discord received: "
            + (", ".join(f"{size} bytes to {path}" for path, size in uploads) or "no upload")
            + f" (HTTP {[call.status for call in fake.calls if call.files]})"
        )
    finally:
        await fake.close()
        stop_process(wan)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--media-bytes", type=int, default=100_000_000, help="result size (≤ 104 000 000)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after (seconds)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1024 <= args.media_bytes <= 104_000_000:
        parser.error("--media-bytes must be 1024..104000000 (it must fit the 100 MiB limit)")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    asyncio.run(worker(arguments) if arguments.worker else main(arguments))
