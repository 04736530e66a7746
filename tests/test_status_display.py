"""What a status message shows of a job's timing, and how the Discord side keeps it fresh."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from core.jobs import Job, JobState
from core.notices import Progress
from discord_side import presenter
from discord_side.delivery._refresh import REFRESH_MIN_SECONDS, ProgressRefresh
from tests.discord_mocks import (
    accept_job,
    make_guild,
    make_member,
    make_text_channel,
    move_job,
    open_harness,
)

NOW = 1_700_000_100.0


@pytest.fixture
async def running(tmp_path: Path) -> Job:
    async with open_harness(tmp_path / "db.sqlite3") as harness:
        guild = make_guild()
        job = await accept_job(harness, make_member(guild), make_text_channel(guild))
        return await move_job(harness, job, JobState.RUNNING)


def state_of(job: Job, progress: Progress | None) -> str:
    embed = presenter.status_embed(job, progress=progress, now=NOW)
    return next(str(field.value) for field in embed.fields if field.name == "State")


def test_before_the_model_knows_only_the_elapsed_time_is_shown(running: Job) -> None:
    shown = state_of(running, Progress(since=NOW - 12))
    assert shown == f"🎨 Generating\n⏱️ started <t:{int(NOW - 12)}:R>"
    assert "left" not in shown and "▰" not in shown


def test_with_a_trusted_model_a_bar_and_an_eta(running: Job) -> None:
    shown = state_of(running, Progress(since=NOW - 20, expected_seconds=60))
    assert "about 40 s left" in shown
    assert "▰▰▰▱▱▱▱▱▱▱ 33%" in shown
    assert f"ready <t:{int(NOW + 40)}:R>" in shown
    long = state_of(running, Progress(since=NOW - 20, expected_seconds=260))
    assert "about 4 min left" in long


def test_a_job_running_past_its_eta_is_not_promised_anything(running: Job) -> None:
    shown = state_of(running, Progress(since=NOW - 90, expected_seconds=60))
    assert "taking longer than usual" in shown
    assert "left" not in shown


def test_a_job_the_api_holds_back_says_when_it_goes(running: Job) -> None:
    queued = replace(running, state=JobState.RESERVED)
    soon = state_of(queued, Progress(NOW - 5, None, NOW + 120))
    assert f"your job will be sent <t:{int(NOW + 120)}:R>" in soon
    late = state_of(queued, Progress(NOW - 5, None, NOW + 1700, may_expire=True))
    assert "cancelled and your quota refunded" in late


def test_a_finished_job_shows_no_timing(running: Job) -> None:
    done = replace(running, state=JobState.DELIVERED, delivered_at=NOW)
    assert state_of(done, Progress(NOW - 30, 60)) == "✅ Done"


async def test_the_bar_is_refreshed_a_few_times_and_never_often(running: Job) -> None:
    refreshed: list[Job] = []
    refresh = ProgressRefresh(refreshed.append, edit_interval=5)
    now = asyncio.get_running_loop().time()
    wall = time.time()
    refresh.plan(running, Progress(since=wall - 10, expected_seconds=300))
    handle = refresh._timers[running.id]
    # The next tenth of the bar is 20 s away; never sooner than REFRESH_MIN_SECONDS.
    assert handle.when() - now == pytest.approx(20, abs=1)
    refresh.plan(running, Progress(since=wall - 10, expected_seconds=60))
    assert refresh._timers[running.id].when() - now == pytest.approx(REFRESH_MIN_SECONDS, abs=1)
    assert handle.cancelled()  # one timer per job, replaced
    refresh.plan(running, Progress(since=wall - 10))  # no ETA: nothing to move
    assert running.id not in refresh._timers
    refresh.plan(running, Progress(since=wall - 10, expected_seconds=60))
    refresh.close()
    assert refresh._timers == {} and refreshed == []
