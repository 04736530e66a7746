"""Helpers shared by the benchmarks: the fake WAN API as a subprocess, /proc readings, requests.

Linux only (``/proc``). Memory figures come from ``/proc/PID/status``: ``VmRSS`` (now) and
``VmHWM`` (the peak), whose peak can be reset by writing ``5`` to ``/proc/PID/clear_refs``, so a
phase's own peak can be read without a sampling thread missing short spikes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from core.references import Attachment, BuiltRequest, GenerationOptions, ReferenceInput
from core.references import build_request as _build

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key"
MIB = 1024 * 1024
_TICKS = os.sysconf("SC_CLK_TCK")


def start_fake_wan(*extra: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m tests.fakes.wan_server`` on a free loopback port; returns it and its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.wan_server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    if not base_url.startswith("http://127.0.0.1:"):
        process.kill()
        raise SystemExit("the fake WAN server did not start")
    return process, base_url


def stop_process(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s: only the process we started, by its handle."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    index = min(round(share * (len(ordered) - 1)), len(ordered) - 1)
    return ordered[index]


def most_in_window(times: Sequence[float], window: float) -> int:
    """The most of ``times`` that fall in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def memory_kib(pid: int | str = "self") -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a process, in KiB."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(rest.split()[0])
    return found


def reset_peak(pid: int | str = "self") -> bool:
    """Reset the process's ``VmHWM`` to its current RSS; False where the kernel refuses."""
    with suppress(OSError):
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    return False


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After the ")" ending the command name: state is field 0, utime 11, stime 12.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


class LoopLag:
    """Measures how late a 5 ms timer fires: the longest the event loop was kept busy."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, loop.time() - before - self.interval)

    def start(self) -> LoopLag:
        self.worst = 0.0
        self._task = asyncio.create_task(self._tick(), name="loop-lag")
        return self

    async def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.worst


def sample_request(duration: int = 5, resolution: str = "720P", seed: int = 1) -> BuiltRequest:
    """A valid one-image request, as cogs/video.py would build it."""
    image = Attachment("https://cdn.example/fox.png", "fox.png", "image/png", 40_000, 512, 512)
    options = GenerationOptions(duration=duration, resolution=resolution, seed=seed)
    return _build("Image 1 waves at the camera", [ReferenceInput(1, image)], options)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
