"""The poll planner's rules, on plain numbers: when each task in flight is read next."""

from __future__ import annotations

import random

import pytest

from core.polling import PollPlanner, Watch
from core.runtimes import RunTimeModel

LAG = 3.0


def watch(job_id: str = "j", *, read_at: float = 0.0, duration: int = 5, **fields: float) -> Watch:
    return Watch(
        job_id,
        submitted_at=0.0,
        resolution="720P",
        duration=duration,
        deadline_at=fields.get("deadline", 1800.0),
        last_read=read_at,
    )


def trusted(median: float = 6.0, spread: float = 0.1, count: int = 60) -> RunTimeModel:
    model = RunTimeModel()
    rng = random.Random(5)
    for _ in range(count):
        model.observe("720P", 5, median * rng.uniform(1 - spread, 1 + spread))
    return model


def reads_until_done(planner: PollPlanner, run_time: float) -> tuple[int, float]:
    """Follow the plan (no budget pressure): reads made and lag when the task is seen done."""
    w = watch()
    reads = 0
    while True:
        value, guarantee = planner.next_reads(w, w.last_read)
        at = min(value, guarantee)
        reads += 1
        if at >= run_time:
            return reads, at - run_time
        w.last_read = at


def test_a_fresh_install_reads_every_task_every_lag_seconds() -> None:
    planner = PollPlanner(RunTimeModel(), lag=LAG)
    for read_at in (3.0, 17.0):
        value, guarantee = planner.next_reads(watch(read_at=read_at), read_at)
        assert value == guarantee == pytest.approx(read_at + LAG)  # the prior promises nothing
    # The first read comes within the lag target, at a phase of each job's own (the same for a
    # job every time), so that tasks of a kind are not all seen on one grid.
    firsts = [planner.next_reads(watch(f"job{index}"), 0.0)[0] for index in range(200)]
    assert all(0.0 <= first <= LAG for first in firsts)
    assert min(firsts) < 0.3 * LAG and max(firsts) > 0.7 * LAG
    assert planner.next_reads(watch("job7"), 0.0) == planner.next_reads(watch("job7"), 0.0)
    for run_time in (1.5, 15.0, 29.9):
        _reads, lag = reads_until_done(planner, run_time)
        assert lag <= LAG


def test_a_task_running_long_is_read_less_often_in_proportion() -> None:
    planner = PollPlanner(RunTimeModel(), lag=LAG, relative_lag=0.08)
    spacings = []
    for elapsed in (30.0, 100.0, 300.0, 1000.0):
        value, _ = planner.next_reads(watch(read_at=elapsed), elapsed)
        spacings.append(value - elapsed)
    assert spacings == pytest.approx([3.0, 8.0, 24.0, 80.0])
    _reads, lag = reads_until_done(planner, 3 * 84.0)  # 3× the prior for 2 s videos
    assert lag <= 0.08 * 3 * 84.0


def test_a_trusted_model_skips_reads_that_cannot_find_the_task_done() -> None:
    planner = PollPlanner(trusted(), lag=LAG, read_cost=0.5)
    value, guarantee = planner.next_reads(watch(), 0.0)
    assert 5.4 < value < 6.6  # near the middle of 5.4–6.6 s, not at 3 s
    assert guarantee > LAG
    for run_time in (5.5, 6.0, 6.5):
        reads, lag = reads_until_done(planner, run_time)
        assert reads <= 2 and lag <= LAG
    reads, lag = reads_until_done(planner, 20.0)  # far off the model: still never lost
    assert lag <= LAG


def test_the_first_completions_re_plan_the_tasks_in_flight() -> None:
    model = RunTimeModel()
    planner = PollPlanner(model, lag=LAG)
    for index in range(20):
        w = planner.watch(watch(f"j{index}", read_at=30.0))
        planner.plan(w, 30.0)
    before = planner.valuable.first_due()
    assert before == pytest.approx(33.0)
    # Completions show these tasks take 40–50 s (far from the prior): reads move to match.
    moved = [model.observe("720P", 5, seconds) for seconds in (40.0, 42.0, 44.0, 46.0, 48.0)]
    assert moved[-1]  # the kind is trusted now: its tasks in flight are planned again
    assert planner.replan("720P", 30.0) == 20
    value, guarantee = planner.next_reads(planner.get("j0") or watch(), 30.0)
    assert guarantee == pytest.approx(max(30.0, model.estimate("720P", 5).quantile(0.01)) + LAG)
    assert value > 33.0


def test_reads_never_go_past_the_deadline() -> None:
    planner = PollPlanner(RunTimeModel(), lag=LAG)
    value, guarantee = planner.next_reads(watch(read_at=99.0, deadline=100.0), 99.0)
    assert value == guarantee == 100.0


def test_a_task_far_past_a_trusted_model_is_not_hammered() -> None:
    planner = PollPlanner(trusted(), lag=LAG, relative_lag=0.08)
    for elapsed in (30.0, 100.0, 600.0):  # the model says 5.4–6.6 s
        value, guarantee = planner.next_reads(watch(read_at=elapsed), elapsed)
        assert value == guarantee == pytest.approx(elapsed + max(LAG, 0.08 * elapsed))


def test_taking_a_read_from_one_lane_removes_it_from_the_other() -> None:
    planner = PollPlanner(trusted(spread=0.6), lag=LAG)
    w = planner.watch(watch())
    planner.plan(w, 0.0)
    assert planner.guaranteed.first_due() is not None
    due = planner.valuable.first_due()
    assert due is not None
    assert planner.valuable.pop_due(due) == ("j", w)
    assert planner.guaranteed.first_due() is None and "j" not in planner
    assert planner.get("j") is w  # still known: the read is under way


def test_with_webhooks_reads_are_a_late_fallback() -> None:
    planner = PollPlanner(RunTimeModel(), lag=LAG, webhooks=True, webhook_interval=60.0)
    value, guarantee = planner.next_reads(watch(), 0.0)
    assert value == guarantee == pytest.approx(240.0 * 1.08)  # twice the prior, 5 s video
    later, _ = planner.next_reads(watch(read_at=243.0), 243.0)
    assert later == pytest.approx(243.0 + 60.0)
    model = trusted()
    warm = PollPlanner(model, lag=LAG, webhooks=True)
    value, _ = warm.next_reads(watch(), 0.0)
    assert value == pytest.approx(model.estimate("720P", 5).quantile(0.99) + LAG)
