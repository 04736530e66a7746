"""The global limiter and its pace, on a fake clock: no test waits for real time."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest

from core.ratelimit import WINDOW_SECONDS, Pace, RateLimiter
from tests.rates import most_in_one_second


class FakeClock:
    """Monotonic time that moves only when someone sleeps (or ``frozen``: never)."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.now = 1000.0
        self.frozen = frozen
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        if not self.frozen:
            self.now += seconds
        await asyncio.sleep(0)


def limiter(clock: FakeClock, rate: float = 10.0, burst: int = 3) -> RateLimiter:
    return RateLimiter(rate, burst, clock=clock, sleep=clock.sleep)


async def starts_of(
    bucket: RateLimiter, clock: FakeClock, count: int, kind: str = "*"
) -> list[float]:
    starts = []
    for _ in range(count):
        await bucket.acquire(kind)
        starts.append(clock.now)
    return starts


async def test_a_burst_passes_without_waiting() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=10, burst=3)
    for _ in range(3):
        await bucket.acquire()
    assert clock.sleeps == []


async def test_beyond_the_burst_each_caller_reserves_its_own_slot() -> None:
    # A frozen clock shows the reservations: each caller computes one sleep, spaced 1/rate apart.
    clock = FakeClock(frozen=True)
    bucket = limiter(clock, rate=10, burst=3)
    for _ in range(6):
        await bucket.acquire()
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.3])


async def test_concurrent_waiters_get_distinct_slots() -> None:
    clock = FakeClock(frozen=True)
    bucket = limiter(clock, rate=4, burst=1)
    await asyncio.gather(*(bucket.acquire() for _ in range(5)))
    # 1/rate apart, and the fifth not within a second (and its margin) of the first.
    assert sorted(clock.sleeps) == pytest.approx([0.25, 0.5, 0.75, WINDOW_SECONDS])


async def test_never_more_than_the_rate_in_any_one_second_even_with_a_big_burst() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=8, burst=40)
    starts = await starts_of(bucket, clock, 40)
    assert most_in_one_second(starts) == 8
    # 8 back to back, then 8 more once the window (a second and a margin) has passed.
    assert starts[-1] - starts[0] == pytest.approx(4 * WINDOW_SECONDS)


async def test_a_fractional_rate_rounds_the_window_down() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=2.5, burst=10)
    starts = await starts_of(bucket, clock, 12)
    assert most_in_one_second(starts) == 2
    slow_clock = FakeClock()
    slow = limiter(slow_clock, rate=0.5, burst=5)
    await slow.acquire()
    await slow.acquire()
    assert slow_clock.now - 1000.0 == pytest.approx(2 * WINDOW_SECONDS)  # one per 1/rate s


async def test_sustained_rate_after_the_burst() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=10, burst=5)
    starts = await starts_of(bucket, clock, 25)
    # 5 at once, then 1/rate apart, and never 11 within a second: the 25th starts at 2.2 s.
    assert starts[:6] == pytest.approx([1000.0] * 5 + [1000.1])
    assert most_in_one_second(starts) == 10
    assert starts[-1] - starts[0] == pytest.approx(2 * WINDOW_SECONDS)


async def test_idle_time_refills_the_burst_but_no_more() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=10, burst=3)
    for _ in range(3):
        await bucket.acquire()
    clock.now += 60.0  # a long quiet spell
    for _ in range(3):
        await bucket.acquire()
    assert clock.sleeps == []
    await bucket.acquire()
    assert clock.sleeps == pytest.approx([0.1])


async def test_a_pause_holds_only_its_kind() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=10, burst=5)
    bucket.pause_for(3600.0, "create")
    assert bucket.paused_until("create") == pytest.approx(clock.now + 3600.0)
    assert bucket.pause_remaining("create") == pytest.approx(3600.0)
    assert bucket.paused_until("read") == -math.inf and bucket.pause_remaining("read") == 0.0
    await bucket.acquire("read")
    await bucket.acquire("list")
    assert clock.sleeps == []  # reads and lists go on while creates are held
    start = clock.now
    await bucket.acquire("create")
    assert clock.now - start == pytest.approx(3600.0)


async def test_a_pause_for_everything_holds_every_kind() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=10, burst=5)
    bucket.pause_for(3.0)
    assert bucket.paused_until("read") == pytest.approx(clock.now + 3.0)
    start = clock.now
    await bucket.acquire("read")
    assert clock.now - start == pytest.approx(3.0)


async def test_a_pause_that_arrives_during_a_wait_is_honoured() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=1, burst=1)
    await bucket.acquire()  # takes the only slot of this second

    def pause_once(_: float) -> None:
        # A 429 elsewhere lands while this caller sleeps towards its slot.
        if len(clock.sleeps) == 1:
            bucket.pause_for(5.0)

    clock.on_sleep = pause_once
    start = clock.now
    await bucket.acquire()
    # Woke at its slot (a second and the margin later), re-queued behind the pause.
    assert clock.sleeps[:2] == pytest.approx([WINDOW_SECONDS, 5.0 - WINDOW_SECONDS])
    assert clock.now - start >= 5.0


async def test_a_caller_that_wakes_late_takes_a_new_slot_rather_than_bunch_up() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=2, burst=2)
    # The event loop is busy when the first sleeper's slot comes: it wakes half a second late.
    clock.on_sleep = lambda _seconds: (
        setattr(clock, "now", clock.now + 0.5) if len(clock.sleeps) == 1 else None
    )
    sent = await starts_of(bucket, clock, 5)
    # Sent at once when it woke, the late one would share a second with the two after it.
    assert most_in_one_second(sent) <= 2
    assert sent[2] == pytest.approx(1000.0 + WINDOW_SECONDS + 0.5)  # it went when it woke


async def test_pauses_only_extend() -> None:
    clock = FakeClock()
    bucket = limiter(clock)
    bucket.pause_for(10.0)
    bucket.pause_for(2.0)
    assert bucket.paused_until() == pytest.approx(clock.now + 10.0)
    bucket.pause_for(-1.0)
    bucket.pause_for(math.nan)
    assert bucket.paused_until() == pytest.approx(clock.now + 10.0)


async def test_a_cancelled_waiter_does_not_break_the_others() -> None:
    clock = FakeClock(frozen=True)
    bucket = limiter(clock, rate=10, burst=1)
    await bucket.acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await bucket.acquire()
    # The cancelled slot is lost (the limiter errs on the slow side), the next caller still runs.
    assert clock.sleeps == pytest.approx([0.1, 0.2])


def test_the_pace_answers_without_reserving() -> None:
    pace = Pace(2.0, 1)
    assert pace.next_start(10.0) == 10.0
    assert pace.next_start(10.0) == 10.0  # asking twice takes nothing
    assert pace.take(10.0) == 10.0
    assert pace.next_start(10.0) == pytest.approx(10.5)
    assert pace.take(10.0) == pytest.approx(10.5)  # a slot in the future, reserved
    assert pace.next_start(10.0) == pytest.approx(10.0 + WINDOW_SECONDS)  # 2 in the window


async def test_real_clock_default_does_not_wait_within_the_burst() -> None:
    bucket = RateLimiter(1000.0, 2)
    await asyncio.wait_for(asyncio.gather(bucket.acquire(), bucket.acquire()), timeout=5)
    assert bucket.paused_until() == -math.inf


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (math.inf, 1), (math.nan, 1), (1, 0)])
def test_bad_settings_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        RateLimiter(rate, burst)
