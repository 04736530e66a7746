"""The tracker's knobs: the few an operator sets (from :class:`~core.config.Settings`), the rest
fixed here with the reason for each value."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Settings


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    # The API budget (WAN_MAX_RPS / WAN_BURST), shared with the client's limiter. While creates
    # or lists wait, reads get at most ``read_share`` of it (the rest is their headroom);
    # otherwise reads may use all of it.
    max_rps: float = 8.0
    burst: int = 40
    read_share: float = 0.75
    # Polling (core.polling): how soon after a task finishes we want to notice it, the same as a
    # share of its running time for tasks that run long, what one read is worth in seconds of
    # expected lag, and the chance below which a trusted model may skip reads.
    lag_target: float = 3.0
    relative_lag: float = 0.08
    read_cost: float = 0.75
    rare_chance: float = 0.01
    trust_after: int = 5  # completions of a resolution before the model is trusted (and ETAs)
    model_window: int = 50  # completions per kind (resolution and duration) the model keeps
    webhook_poll_interval: float = 60.0
    error_backoff_base: float = 5.0
    error_backoff_cap: float = 120.0
    # A create of unknown outcome: let the API's list catch up before deciding it made nothing;
    # with webhooks, wait this long for a notification to say which task is the job's.
    reconcile_grace: float = 30.0
    evidence_wait: float = 600.0
    key_dedicated: bool = False  # WAN_KEY_DEDICATED: an unowned listed task may be ours
    long_wait: float = 30.0  # a job held back by the API this long is told so
    delivery_attempts: int = 8
    delivery_backoff_base: float = 5.0
    delivery_backoff_cap: float = 600.0
    download_timeout: float = 300.0
    concurrency: int = 32  # API calls under way at once (the budget paces them)
    delivery_concurrency: int = 8  # deliveries at once (downloads and Discord uploads)
    notify_window: float = 7 * 86_400.0  # re-send endings not told for up to a week
    # LEASE_SECONDS: a process that dies leaves its jobs to the others this long after its last
    # renewal (every third of it); long enough that a busy database does not lose leases.
    lease_seconds: float = 20.0

    @property
    def read_rps(self) -> float:
        return self.max_rps * self.read_share


def tracker_config(settings: Settings) -> TrackerConfig:
    """The tracker's configuration, with the operator's settings from the environment."""
    return TrackerConfig(
        max_rps=settings.api_max_rps,
        burst=settings.api_burst,
        lag_target=settings.poll_lag_seconds,
        reconcile_grace=settings.reconcile_grace_seconds,
        key_dedicated=settings.wan_key_dedicated,
        lease_seconds=settings.lease_seconds,
    )
