"""The run-time model: a + b × duration per resolution, from medians, trusted after 5."""

from __future__ import annotations

import math
import random

import pytest

from core.runtimes import RunTime, RunTimeModel


def test_before_anything_is_learned_the_wide_prior_stands_in() -> None:
    model = RunTimeModel()
    estimate = model.estimate("1080P", 5)
    assert estimate == RunTime(60.0 + 12.0 * 5, 1.0, 0, False)
    assert estimate.quantile(0.01) < 15.0 < 1000.0 < estimate.quantile(0.99)  # wide


def test_the_fit_follows_duration_and_ignores_outliers() -> None:
    model = RunTimeModel()
    rng = random.Random(3)
    for _ in range(120):
        duration = rng.randint(2, 10)
        model.observe("720P", duration, (8.0 + 3.0 * duration) * rng.uniform(0.9, 1.1))
    model.observe("720P", 5, 5000.0)  # a stuck task
    model.observe("720P", 5, 0.6)  # a cached one
    for duration in (2, 6, 10):
        estimate = model.estimate("720P", duration)
        assert estimate.trusted
        assert estimate.median == pytest.approx(8.0 + 3.0 * duration, rel=0.06)
        assert 0.03 < estimate.sigma < 0.1  # ±10 % uniform noise
    assert model.estimate("1080P", 6).samples == 0  # resolutions are learned apart
    assert model.estimate("720P", 6).samples >= 5


def test_one_duration_seen_keeps_the_prior_shape() -> None:
    model = RunTimeModel()
    for _ in range(5):
        model.observe("720P", 5, 30.0)
    assert model.estimate("720P", 5).median == pytest.approx(30.0)
    assert model.estimate("720P", 10).median == pytest.approx(30.0 * (60 + 120) / (60 + 60))


def test_trusted_only_after_five_of_the_kind_and_wide_until_then() -> None:
    model = RunTimeModel(trust_after=5)
    replans = []
    for count in range(1, 6):
        replans.append(model.observe("720P", 4, 20.0 + count * 0.1))
        estimate = model.estimate("720P", 4)
        assert estimate.trusted is (count >= 5)
        if count < 5:
            assert estimate.sigma >= 0.5
    assert replans == [True, False, False, False, True]  # the first one, and trust
    assert model.estimate("720P", 4).sigma < 0.1
    # Five of 4 s videos say nothing certain about 10 s ones, though the line reaches them.
    assert not model.estimate("720P", 10).trusted
    assert model.estimate("720P", 10).samples == 0


def test_later_completions_re_plan_only_when_the_fit_moves() -> None:
    model = RunTimeModel()
    for _ in range(20):
        model.observe("720P", 5, 20.0)
    assert not model.observe("720P", 5, 20.5)  # no news
    moved = [model.observe("720P", 5, 40.0) for _ in range(25)]
    assert any(moved)  # the tasks became twice as slow: plans are made again


def test_history_from_the_database_is_learned_at_start() -> None:
    model = RunTimeModel()
    model.load([("1080P", 4, 25.0)] * 6 + [("1080P", 8, 45.0)] * 6 + [("720P", 4, -1.0)])
    assert model.estimate("1080P", 4).trusted and model.estimate("1080P", 8).trusted
    assert model.estimate("1080P", 6).median == pytest.approx(35.0, rel=0.05)
    assert not model.estimate("1080P", 6).trusted  # between two known kinds, still not seen
    assert model.completions("720P") == 0  # nonsense is ignored


@pytest.mark.parametrize("sigma", [0.1, 0.5, 1.0])
def test_the_closed_form_integral_matches_the_cdf(sigma: float) -> None:
    estimate = RunTime(30.0, sigma, 10, True)
    steps = 20_000
    for t in (10.0, 30.0, 80.0):
        width = t / steps
        numeric = sum(estimate.cdf((i + 0.5) * width) for i in range(steps)) * width
        assert estimate.integral(t) == pytest.approx(numeric, rel=1e-4, abs=1e-9)
    assert estimate.quantile(0.5) == pytest.approx(30.0)
    assert estimate.cdf(estimate.quantile(0.9)) == pytest.approx(0.9)
    assert math.isfinite(estimate.quantile(0.0)) and math.isfinite(estimate.quantile(1.0))


def test_intervals_from_reads_are_learned_without_the_grid_s_bias() -> None:
    # Tasks of 7 s ± 10 %, read every 3 s from a random phase: each read says only "ended
    # between these two reads". The model must find 7 s, not a point of the read grid.
    model = RunTimeModel()
    rng = random.Random(11)
    for _ in range(50):
        run_time = 7.0 * rng.uniform(0.9, 1.1)
        seen = 3.0 * rng.random()
        while seen < run_time:
            seen += 3.0
        model.observe("720P", 5, seen, since=seen - 3.0, draw=rng.random())
    estimate = model.estimate("720P", 5)
    assert estimate.median == pytest.approx(7.0, rel=0.06)
    assert estimate.sigma < 0.2  # ±10 %, not the ±20 % a 3 s grid would suggest
