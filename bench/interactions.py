"""Benchmark: acknowledging N concurrent ``/video`` commands (the 3-second interaction window).

    python -m bench.interactions [--commands 200] [--users 20] [--warmup 5]

Three processes, all on 127.0.0.1:

- the real bot, ``python bot.py`` (a subprocess configured only through its environment:
  DISCORD_API_BASE, WAN_API_BASE, DEV_GUILD_ID, DATABASE_PATH, quotas set high so that nothing is
  refused), the only process measured;
- the fake WAN API (``tests.fakes.wan_server --manual``, a subprocess): tasks are created but never
  finish, so no job completes or delivers during the measurement;
- this process: the local Discord (``FakeDiscord``), which dispatches the commands over the
  gateway and timestamps, with ``time.perf_counter``, the moment each interaction's callback (the
  ``defer``) and its first follow-up (the "Accepted as job …" answer) reach it.

After ``--warmup`` commands answered one at a time, ``--commands`` ``/video`` commands from
``--users`` members are dispatched at once. Per interaction, the clock starts when its
INTERACTION_CREATE frame has been written to the bot's gateway socket, and stops when the bot's
``POST /interactions/{id}/{token}/callback`` arrives (acknowledgement) or its first follow-up
arrives (answer). Printed: p50/p99/max of both, how many acknowledgements missed Discord's 3 s
window (the fake then answers 10062 Unknown interaction, as Discord does), and the bot's CPU
time and RSS over the burst.

Caveats when reading the figures: the fake Discord shares this process with the clock, so an
acknowledgement is timestamped only when this loop gets to it (it writes all N frames first, and
then parses the bot's requests one by one: the printed arrival window shows this); with two
cores, the bot has one to itself only while this process is idle. The fake's rate-limit headers
never let a bucket run dry (49 of 50 left on every answer), whereas real Discord limits posts in
one channel much more tightly, so the "answer" figure, which waits for the job's status message
and thread, is a lower bound; the acknowledgement is one interaction callback, not affected.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._support import (
    API_KEY,
    ROOT,
    cpu_seconds,
    memory_kib,
    mib,
    percentile,
    start_fake_wan,
    stop_process,
)
from core.config import SETTING_NAMES
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeUser, ResponseKind

# Every setting the bot reads is set (empty = default), so no shell variable or .env leaks in.
BOT_SETTINGS = SETTING_NAMES
ACK_WINDOW = 3.0  # Discord's (and the fake's) time to acknowledge an interaction


class TimedDiscord(FakeDiscord):
    """The fake Discord, noting when each interaction's callback and first follow-up arrive."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.acked_at: dict[int, float] = {}
        self.answered_at: dict[int, float] = {}
        self.on_interaction_response.append(self._arrived)

    def _arrived(self, interaction: FakeInteraction, kind: ResponseKind) -> None:
        arrived = time.perf_counter()
        if kind == "callback":
            self.acked_at.setdefault(interaction.id, arrived)
        elif kind == "followup":
            self.answered_at.setdefault(interaction.id, arrived)


def bot_environment(fake: FakeDiscord, wan_url: str, directory: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in BOT_SETTINGS}
    env |= dict.fromkeys(BOT_SETTINGS, "")
    env |= {
        "PYTHONUNBUFFERED": "1",
        "DISCORD_TOKEN": fake.token,
        "FREEPIK_API_KEY": API_KEY,
        "WAN_API_BASE": wan_url,
        "DISCORD_API_BASE": fake.api_base,
        "DATABASE_PATH": str(directory / "bot.sqlite3"),
        "DEV_GUILD_ID": str(fake.guild_id),
        "WEBHOOK_PORT": "0",  # no HTTP server: nothing listens beyond loopback clients
        "QUOTA_DAILY_SECONDS": "1000000",
        "QUOTA_MAX_CONCURRENT": "1000000",
        "LOG_LEVEL": "INFO",  # the production default
    }
    return env


def spawn_bot(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python bot.py`` in the repository, its output (stdout and stderr) in ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "bot.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_until(
    predicate: Callable[[], bool], seconds: float, what: str, bot: subprocess.Popen[bytes]
) -> None:
    """Poll ``predicate`` every 50 ms; stop the run if the bot dies or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if bot.poll() is not None:
            raise SystemExit(f"the bot exited ({bot.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def video(fake: TimedDiscord, user: FakeUser, attachment: dict[str, Any], n: int) -> int:
    options = {"prompt": f"Image 1 waves, take {n}", "ref1": attachment, "resolution": "720P"}
    return await fake.dispatch_slash_command("video", options, user=user)


def summary(label: str, values_ms: list[float]) -> str:
    if not values_ms:
        return f"{label}: none"
    return (
        f"{label}: p50 {percentile(values_ms, 0.5):.0f} ms, p99 {percentile(values_ms, 0.99):.0f}"
        f" ms, max {max(values_ms):.0f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    wan, wan_url = start_fake_wan("--manual", "--media-bytes", "1024")
    fake = TimedDiscord()
    bot: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            await fake.start()
            directory = Path(tmp)
            log_path = Path(args.log) if args.log else directory / "bot.log"
            bot = spawn_bot(bot_environment(fake, wan_url, directory), log_path)
            await wait_until(
                lambda: fake.connected and fake.find_command("video") is not None,
                60,
                "the bot to sync its commands and connect",
                bot,
            )
            users = [fake.add_user(f"member{index}") for index in range(args.users)]
            attachment = fake.register_file(
                b"\x89PNG\r\n\x1a\n" + bytes(4096), "fox.png", "image/png", width=512, height=512
            )

            # Warm-up, one at a time: first-use costs (caches, SQLite pages) are not measured.
            for n in range(args.warmup):
                warm = await video(fake, users[n % len(users)], attachment, n)
                await wait_until(
                    functools.partial(fake.answered_at.__contains__, warm), 30, "a warm-up", bot
                )

            sent: dict[int, float] = {}

            async def one(n: int) -> None:
                iid = await video(fake, users[n % len(users)], attachment, n)
                sent[iid] = time.perf_counter()  # the frame is on the bot's socket now

            cpu_before = cpu_seconds(bot.pid)
            own_cpu_before = cpu_seconds()
            burst_started = time.perf_counter()
            await asyncio.gather(*(one(n) for n in range(args.commands)))
            dispatch_seconds = time.perf_counter() - burst_started
            await wait_until(
                lambda: (
                    all(i in fake.answered_at for i in sent)
                    or time.perf_counter() - burst_started > args.timeout
                ),
                args.timeout + 5,
                "the answers",
                bot,
            )
            wall = time.perf_counter() - burst_started
            cpu = cpu_seconds(bot.pid) - cpu_before
            own_cpu = cpu_seconds() - own_cpu_before
            memory = memory_kib(bot.pid)

            acks = [(fake.acked_at[i] - t) * 1000 for i, t in sent.items() if i in fake.acked_at]
            answers = [
                (fake.answered_at[i] - t) * 1000 for i, t in sent.items() if i in fake.answered_at
            ]
            ack_times = [fake.acked_at[i] - burst_started for i in sent if i in fake.acked_at]
            refused = sum(1 for i in sent if fake.interactions[i].response_type is None)
            late = sum(1 for ms in acks if ms > ACK_WINDOW * 1000)
            print(
                f"{args.commands} concurrent /video from {args.users} members"
                f" (dispatched in {dispatch_seconds * 1000:.0f} ms;"
                f" bot = python bot.py subprocess, fake WAN API manual)"
            )
            print(summary("acknowledgement (gateway dispatch -> defer callback)", acks))
            print(summary("answer (gateway dispatch -> 'Accepted' follow-up)", answers))
            if ack_times:
                print(
                    f"acknowledgements reached the fake from {min(ack_times) * 1000:.0f} to"
                    f" {max(ack_times) * 1000:.0f} ms after the first dispatch"
                )
            print(
                f"acknowledged {len(acks)}/{args.commands}; later than {ACK_WINDOW:g} s: {late};"
                f" without an accepted acknowledgement: {refused}; answered {len(answers)}/"
                f"{args.commands}"
            )
            print(
                f"bot process: {cpu:.2f} CPU s over {wall:.2f} s"
                f" ({cpu / args.commands * 1000:.1f} CPU ms/command); RSS {mib(memory['VmRSS'])},"
                f" peak since start {mib(memory['VmHWM'])};"
                f" this process (fake Discord) {own_cpu:.2f} CPU s"
            )
            if fake.server_errors:
                print(f"fake Discord errors: {fake.server_errors[:3]}")
        finally:
            if bot is not None:
                # In a thread: the fake Discord in this loop keeps answering while the bot stops.
                await asyncio.to_thread(stop_process, bot)
            await fake.close()
            stop_process(wan)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=200, help="concurrent /video (≤ 2000)")
    parser.add_argument("--users", type=int, default=20, help="members sending them")
    parser.add_argument("--warmup", type=int, default=5, help="commands answered one by one first")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on answers after")
    parser.add_argument("--log", help="keep the bot's log in this file")
    args = parser.parse_args()
    if not 1 <= args.commands <= 2000 or not 1 <= args.users <= 500 or args.warmup < 0:
        parser.error("--commands must be 1..2000, --users 1..500, --warmup ≥ 0")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
