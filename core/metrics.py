"""What the bot does, for Prometheus: one registry per :class:`Metrics`, served at ``/metrics``.

Each ``Metrics`` owns its own :class:`prometheus_client.CollectorRegistry` (never the library's
global one), so a test builds a fresh one and reads exactly what its scenario counted. The bot
makes one in its composition root and hands it to whatever records.

Label values are bounded by construction: every helper maps what it is given onto a fixed set
(unknown values become ``other``), and no user, guild, job or task id is ever a label.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from core.jobs import UNFINISHED_STATES, JobOrigin

log = logging.getLogger(__name__)

PREFIX = "wanbot"
OTHER = "other"

# Why a request was refused before anything was spent (a UserError's kind, or a cap).
REFUSAL_REASONS = (
    "invalid_input",  # bad prompt, references, options
    "quota",  # the member's daily seconds
    "concurrency",  # the member's unfinished jobs
    "banned",
    "paused",
    "channel",  # channel rules, NSFW-only
    "permissions",  # the bot lacks a permission where it was asked
    "budget",  # the bot-wide daily budget
    "server_cap",  # the server's daily cap
    "not_allowed",  # a server not on the allow-list
    "operator",  # the API refused the bot (key, credits)
    OTHER,
)
API_OPERATIONS = ("create", "get", "list", "download", OTHER)
# HTTP answers worth telling apart; any other code is counted in its class (2xx, 4xx, 5xx).
_KNOWN_STATUSES = frozenset({200, 201, 202, 400, 401, 402, 403, 404, 408, 409, 413, 422, 429})
NETWORK_STATUSES = ("timeout", "connection_error")
DELIVERY_OUTCOMES = ("file", "link", "failed")
LEDGER_KINDS = ("reserve", "commit", "refund", "grant", "reset")
# Coarse Discord REST routes (the path's first segments, ids and tokens never kept).
DISCORD_ROUTES = (
    "interactions",  # interaction callbacks
    "webhooks",  # follow-ups and @original edits (interaction webhooks)
    "messages",
    "threads",
    "channels",
    "commands",
    "guilds",
    "users",
    "gateway",
    "attachments",
    OTHER,
)


def status_label(status: int | str) -> str:
    """A bounded label for an HTTP status (or ``timeout``/``connection_error``)."""
    if isinstance(status, str):
        return status if status in NETWORK_STATUSES else OTHER
    if status in _KNOWN_STATUSES:
        return str(status)
    if 100 <= status <= 599:
        return f"{status // 100}xx"
    return OTHER


def discord_route(path: str) -> str:
    """The coarse route of a Discord REST path such as ``/api/v10/channels/1/messages/2``."""
    parts = [part for part in path.split("/") if part]
    # Drop the ``api/v10`` prefix, whatever base URL the bot talks to.
    while parts and (parts[0] == "api" or (parts[0][:1] == "v" and parts[0][1:].isdigit())):
        parts.pop(0)
    if not parts:
        return OTHER
    head = parts[0]
    if head == "applications":
        return "commands" if "commands" in parts else OTHER
    if head == "channels":
        if "threads" in parts:
            return "threads"
        if "messages" in parts:
            return "messages"
        return "channels"
    return head if head in DISCORD_ROUTES else OTHER


def _bounded(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


def _seconds(value: float) -> float:
    # A negative duration is a clock step; Prometheus histograms cannot take it.
    return max(0.0, float(value))


ScrapeHook = Callable[[], Awaitable[None]]


class Metrics:
    """Every metric the bot exports, and the helpers that record them."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self._scrape_hooks: list[ScrapeHook] = []

        self.jobs = Gauge(
            f"{PREFIX}_jobs",
            "Unfinished jobs by state, read from the database at scrape time.",
            ["state"],
            registry=reg,
        )
        self.api_budget_held = Gauge(
            f"{PREFIX}_api_budget_held",
            "1 while this process holds the API budget and makes the WAN API calls (exactly one"
            " process of a network holds it; a single process always does).",
            registry=reg,
        )
        self.jobs_leased = Gauge(
            f"{PREFIX}_jobs_leased",
            "Jobs whose next step this process holds the lease of.",
            registry=reg,
        )
        self.requests_accepted = Counter(
            f"{PREFIX}_requests_accepted",
            "Video requests accepted (their cost reserved), by origin.",
            ["origin"],
            registry=reg,
        )
        self.requests_refused = Counter(
            f"{PREFIX}_requests_refused",
            "Video requests refused before anything was spent, by reason.",
            ["reason"],
            registry=reg,
        )
        self.api_requests = Counter(
            f"{PREFIX}_api_requests",
            "HTTP requests to the WAN API (each attempt), by operation and status.",
            ["operation", "status"],
            registry=reg,
        )
        self.rate_limit_wait = Histogram(
            f"{PREFIX}_api_rate_limit_wait_seconds",
            "Time an API request waited for the bot's own rate limiter.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=reg,
        )
        self.completion_to_post = Histogram(
            f"{PREFIX}_completion_to_post_seconds",
            "From the API reporting a task completed to its video posted in Discord.",
            buckets=(0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=reg,
        )
        self.run_time = Histogram(
            f"{PREFIX}_task_run_seconds",
            "From submitting a task to the API to the API reporting it finished.",
            buckets=(15, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800),
            registry=reg,
        )
        self.deliveries = Counter(
            f"{PREFIX}_deliveries",
            "Finished deliveries, by outcome: file (uploaded), link (too large), failed.",
            ["outcome"],
            registry=reg,
        )
        self.ledger_seconds = Counter(
            f"{PREFIX}_ledger_seconds",
            "Seconds of video written to the quota ledger, by kind (reserve, commit, refund…).",
            ["kind"],
            registry=reg,
        )
        self.discord_errors = Counter(
            f"{PREFIX}_discord_rest_errors",
            "Discord REST answers >= 400 and failed requests, by coarse route and status.",
            ["route", "status"],
            registry=reg,
        )
        self.loop_lag = Histogram(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late the event loop ran a timer (sampled about once a second).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=reg,
        )
        if process:
            ProcessCollector(registry=reg)  # CPU, memory, open files of this process

        # Series that exist from the start, at 0, so that rate() and absent() behave.
        for state in sorted(UNFINISHED_STATES):
            self.jobs.labels(state.value)
        for origin in JobOrigin:
            self.requests_accepted.labels(origin.value)
        for reason in REFUSAL_REASONS:
            self.requests_refused.labels(reason)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)
        for kind in LEDGER_KINDS:
            self.ledger_seconds.labels(kind)

    # ----------------------------------------------------------------- recording

    def request_accepted(self, origin: str) -> None:
        self.requests_accepted.labels(_bounded(origin, {o.value for o in JobOrigin})).inc()

    def request_refused(self, reason: str) -> None:
        self.requests_refused.labels(_bounded(reason, REFUSAL_REASONS)).inc()

    def api_request(self, operation: str, status: int | str) -> None:
        """One attempt at the WAN API: ``status`` is the HTTP code, or ``timeout`` /
        ``connection_error`` when no answer came."""
        self.api_requests.labels(_bounded(operation, API_OPERATIONS), status_label(status)).inc()

    def rate_limit_waited(self, seconds: float) -> None:
        self.rate_limit_wait.observe(_seconds(seconds))

    def task_finished(self, run_seconds: float) -> None:
        self.run_time.observe(_seconds(run_seconds))

    def delivered(self, outcome: str, completion_to_post: float | None = None) -> None:
        """A delivery ended: ``file``, ``link`` or ``failed``; the lag when it was posted."""
        self.deliveries.labels(_bounded(outcome, DELIVERY_OUTCOMES)).inc()
        if completion_to_post is not None and outcome != "failed":
            self.completion_to_post.observe(_seconds(completion_to_post))

    def ledger(self, kind: str, seconds: int | float) -> None:
        """A ledger row of ``kind`` moving ``seconds`` (the magnitude is counted)."""
        self.ledger_seconds.labels(_bounded(kind, LEDGER_KINDS)).inc(abs(seconds))

    def discord_error(self, path: str, status: int | str) -> None:
        self.discord_errors.labels(discord_route(path), status_label(status)).inc()

    def loop_lagged(self, seconds: float) -> None:
        self.loop_lag.observe(_seconds(seconds))

    def budget_held(self, held: bool) -> None:
        self.api_budget_held.set(1 if held else 0)

    def set_jobs_leased(self, count: int) -> None:
        self.jobs_leased.set(count)

    def set_job_counts(self, counts: Mapping[str, int]) -> None:
        """Unfinished jobs per state (states absent from ``counts`` are 0)."""
        for state in UNFINISHED_STATES:
            self.jobs.labels(state.value).set(counts.get(state.value, 0))

    # ----------------------------------------------------------------- exposition

    @property
    def content_type(self) -> str:
        return CONTENT_TYPE_LATEST

    def before_scrape(self, hook: ScrapeHook) -> None:
        """Run ``hook`` before each exposition (gauges read from the database)."""
        self._scrape_hooks.append(hook)

    async def render(self) -> bytes:
        """The text exposition; a failing hook is logged and its gauges keep their last value."""
        for hook in self._scrape_hooks:
            try:
                await hook()
            except Exception:
                log.exception("metrics: a scrape hook failed")
        return generate_latest(self.registry)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """One sample's value (0 when absent): for tests and ``--report``-style tools."""
        found = self.registry.get_sample_value(name, dict(labels or {}))
        return 0.0 if found is None else found
