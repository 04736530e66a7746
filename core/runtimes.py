"""How long the API takes: one run-time model across durations and resolutions.

What a read tells is an interval: the task ended after the last read that saw it running and
by the read that saw it done (a webhook, or a run time stored in the jobs table, is exact). Each
kind (resolution and duration) keeps its latest ``window`` intervals, and every refit places each
interval's task within it by the current fit's odds at a draw of its own (a step of stochastic
EM: the estimate settles where the intervals agree, neither on a grid of read times nor on the
fit's own belief, and the spread stays honest). Then:

Run time ≈ a + b × duration, per resolution, fitted robustly from those completions:
the median run time of each duration, a Theil–Sen slope through those medians (the median of
the pairwise slopes), and the intercept as the median of what the slope leaves. Around that fit
run times are taken as log-normal, with a spread from the median absolute deviation of the log
residuals. Medians all the way, so a few odd tasks (a stuck one, a cached one) move nothing.

Before anything is learned a wide prior stands in (60 s + 12 s × duration, spread ×/÷ e), and
until ``trust_after`` completions of a kind (resolution and duration) are seen, the model is not
trusted for that kind: reads keep to the lag target, and nobody is promised an ETA.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()
_SQRT2 = math.sqrt(2.0)
_MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution is 0.6745 σ
REFERENCE_DURATION = 5  # the duration whose fitted run time stands for "has the fit moved"


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / _SQRT2)


@dataclass(frozen=True, slots=True)
class RunTime:
    """A log-normal run-time distribution (seconds since the task was submitted)."""

    median: float
    sigma: float
    samples: int  # completions of this kind behind it (0: the prior)
    trusted: bool  # enough of them to show an ETA and to skip reads it rules out

    def cdf(self, t: float) -> float:
        """The chance the task has finished by ``t``."""
        if t <= 0.0:
            return 0.0
        return _phi(math.log(t / self.median) / self.sigma)

    def quantile(self, p: float) -> float:
        p = min(max(p, 1e-12), 1.0 - 1e-12)
        return self.median * math.exp(self.sigma * _NORMAL.inv_cdf(p))

    def between(self, low: float, high: float, share: float) -> float:
        """The run time at ``share`` (0–1) of this distribution's odds within ``(low, high]``,
        for a task known to have finished in there (the plain share where the odds are nil)."""
        below, above = self.cdf(low), self.cdf(high)
        if above - below < 1e-9:
            return low + share * (high - low)
        return min(max(self.quantile(below + share * (above - below)), low), high)

    def integral(self, t: float) -> float:
        """∫₀ᵗ cdf(s) ds: the expected time a task finished by ``t`` has been waiting (closed
        form for a log-normal, via its partial expectation)."""
        if t <= 0.0:
            return 0.0
        z = math.log(t / self.median) / self.sigma
        mean = self.median * math.exp(self.sigma * self.sigma / 2.0)
        return t * _phi(z) - mean * _phi(z - self.sigma)


@dataclass(frozen=True, slots=True)
class Completion:
    """One task's run time as known: it ended in ``(low, high]`` (``low == high``: exactly)."""

    low: float
    high: float
    draw: float = 0.5  # where within the interval's odds it is placed

    def place(self, estimate: RunTime) -> float:
        if self.high - self.low <= 1e-9:
            return self.high
        return estimate.between(self.low, self.high, self.draw)


@dataclass(frozen=True, slots=True)
class _Fit:
    intercept: float
    slope: float
    sigma: float
    per_duration: dict[int, int]  # completions behind the fit, by duration


class RunTimeModel:
    """Learns run times per resolution from completions; answers with a :class:`RunTime`."""

    def __init__(
        self,
        *,
        prior_intercept: float = 60.0,
        prior_slope: float = 12.0,
        prior_sigma: float = 1.0,
        window: int = 50,
        trust_after: int = 5,
        untrusted_sigma: float = 0.5,
        min_sigma: float = 0.05,
        min_seconds: float = 0.5,
    ) -> None:
        self.prior_intercept = prior_intercept
        self.prior_slope = prior_slope
        self.prior_sigma = prior_sigma
        self.trust_after = trust_after
        self._untrusted_sigma = untrusted_sigma
        self._min_sigma = min_sigma
        self._min_seconds = min_seconds
        self._window = window  # completions kept per kind: a batch of long videos finishing
        # last must not push the short ones out of what the line is fitted to
        self._samples: dict[str, dict[int, deque[Completion]]] = {}
        self._placed: dict[str, dict[int, list[float]]] = {}  # each kind's, by the last fit
        self._fits: dict[str, _Fit] = {}
        self._planned: dict[str, tuple[float, float]] = {}  # what the last re-plan used

    def prior(self, duration: int) -> float:
        return self.prior_intercept + self.prior_slope * duration

    def completions(self, resolution: str) -> int:
        return sum(len(kind) for kind in self._samples.get(resolution, {}).values())

    def load(self, history: Iterable[tuple[str, int, float]]) -> None:
        """Completions read back at start-up (resolution, duration, seconds), oldest first."""
        touched = set()
        for resolution, duration, seconds in history:
            if seconds > 0:
                self._kind(resolution, duration).append(Completion(seconds, seconds))
                touched.add(resolution)
        for resolution in touched:
            for duration in self._samples[resolution]:
                self._place(resolution, duration)
            self._refit(resolution)
            self._planned[resolution] = self._signature(resolution)

    def observe(
        self,
        resolution: str,
        duration: int,
        seconds: float,
        *,
        since: float | None = None,
        draw: float = 0.5,
    ) -> bool:
        """Learn one completion: seen done ``seconds`` after submission (and, if ``since`` is
        given, seen running then). True when plans made with the old fit should be made again:
        the first completion of a resolution, a kind becoming trusted, or a shift of more than
        10 % in the run time or a third in the spread (reads of untrusted kinds keep to the lag
        target whatever the fit says, so nothing else changes a plan)."""
        if not seconds > 0:
            return False
        low = seconds if since is None else min(max(since, 0.0), seconds)
        self._kind(resolution, duration).append(Completion(low, seconds, draw))
        self._place(resolution, duration)
        self._refit(resolution)
        now = self._signature(resolution)
        before = self._planned.get(resolution)
        fit = self._fits[resolution]
        moved = (
            before is None
            or fit.per_duration.get(duration, 0) == self.trust_after  # a kind now trusted
            or abs(math.log(now[0] / before[0])) > 0.1
            or abs(now[1] - before[1]) > before[1] / 3
        )
        if moved:
            self._planned[resolution] = now
        return moved

    def estimate(self, resolution: str, duration: int) -> RunTime:
        """The fitted line's run time for this kind; trusted once ``trust_after`` completions
        of this very kind (resolution and duration) are among those it was fitted to, so that a
        line drawn through short videos never promises anything about long ones."""
        fit = self._fits.get(resolution)
        if fit is None:
            return RunTime(self.prior(duration), self.prior_sigma, 0, False)
        median = max(fit.intercept + fit.slope * duration, self._min_seconds)
        seen = fit.per_duration.get(duration, 0)
        trusted = seen >= self.trust_after
        sigma = fit.sigma if trusted else max(fit.sigma, self._untrusted_sigma)
        return RunTime(median, sigma, seen, trusted)

    def _kind(self, resolution: str, duration: int) -> deque[Completion]:
        kinds = self._samples.setdefault(resolution, {})
        return kinds.setdefault(duration, deque(maxlen=self._window))

    def _signature(self, resolution: str) -> tuple[float, float]:
        estimate = self.estimate(resolution, REFERENCE_DURATION)
        return estimate.median, estimate.sigma

    def _place(self, resolution: str, duration: int) -> None:
        """Place the kind's completions by the current fit (the prior before there is one)."""
        estimate = self.estimate(resolution, duration)
        placed = [done.place(estimate) for done in self._samples[resolution][duration]]
        self._placed.setdefault(resolution, {})[duration] = placed

    def _refit(self, resolution: str) -> None:
        by_duration = {d: values for d, values in self._placed[resolution].items() if values}
        samples = [(d, seconds) for d, values in by_duration.items() for seconds in values]
        medians = {d: statistics.median(values) for d, values in by_duration.items()}
        if len(medians) >= 2:
            slopes = [
                (medians[high] - medians[low]) / (high - low)
                for low, high in itertools.combinations(sorted(medians), 2)
            ]
            slope = max(statistics.median(slopes), 0.0)
            intercept = statistics.median(seconds - slope * d for d, seconds in samples)
        else:
            # One duration seen: keep the prior's shape, scaled to what was seen.
            ((duration, median),) = medians.items()
            scale = median / self.prior(duration)
            slope, intercept = self.prior_slope * scale, self.prior_intercept * scale

        def fitted(d: int) -> float:
            return max(intercept + slope * d, self._min_seconds)

        residuals = [math.log(seconds / fitted(d)) for d, seconds in samples]
        centre = statistics.median(residuals)
        spread = statistics.median(abs(r - centre) for r in residuals) * _MAD_TO_SIGMA
        shift = math.exp(centre)  # the fit's median passes through the residuals' median
        counts = {duration: len(values) for duration, values in by_duration.items()}
        self._fits[resolution] = _Fit(
            intercept * shift, slope * shift, max(spread, self._min_sigma), counts
        )
