"""The composition root: the engine's services, built in one place from the settings.

bot.py, the cog test harness and the benchmarks all call :func:`build_services`, so the wiring
(which client, which limiter, which tracker timing) cannot drift between them. Resources are
opened by the caller (the database, the HTTP session) and closed by it; nothing here starts
background work: the bot starts the tracker once its Discord side is registered (the tracker
starts and stops what coordinates it with other processes: signals and the API budget).

On PostgreSQL several processes share the jobs: each gets an owner id of its own, signals over
LISTEN/NOTIFY and the budget as an advisory lock (``core.budget``), which the API client's limiter
asks before every call. On SQLite: the owner ``"local"``, in-process signals, a budget always held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from core.budget import Budget, LocalBudget, PostgresBudget
from core.config import Settings
from core.jobs import Job
from core.metrics import Metrics
from core.moderation import Moderation
from core.ratelimit import RateLimiter
from core.service import VideoService
from core.store import LocalSignals, PostgresSignals, Signals, Store, owner_id
from core.tracker import Tracker
from core.tracker_config import tracker_config
from core.wan import WanClient
from core.webhooks import webhook_url_source


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the faces (cogs, the Discord side, the HTTP server) use from the engine."""

    settings: Settings
    store: Store
    session: aiohttp.ClientSession
    client: WanClient  # the WAN API, behind the bot's own rate limiter
    tracker: Tracker
    service: VideoService
    moderation: Moderation
    metrics: Metrics  # what /metrics exports; counted by the service, the tracker, the bot
    webhook_url: Callable[[Job], str | None] | None  # each job's webhook URL; None: polling only


def build_services(
    settings: Settings,
    store: Store,
    session: aiohttp.ClientSession,
    *,
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> Services:
    metrics = metrics if metrics is not None else Metrics()
    signals, budget = coordination(store)
    budget.subscribe(metrics.budget_held)
    metrics.budget_held(budget.held)
    client = api_client(settings, session, metrics, budget)
    webhook_url = webhook_url_source(settings)
    tracker = Tracker(
        store,
        client,
        session,
        webhooks=settings.webhooks_enabled,
        config=tracker_config(settings),
        clock=clock,
        webhook_url=webhook_url,  # each job's URL, derived at submit time (never stored)
        on_run_time=metrics.task_finished,  # submit -> completed, for the run-time histogram
        owner=owner_id(store.is_postgres),
        signals=signals,
        budget=budget,
        on_leases=metrics.set_jobs_leased,
    )
    service = VideoService(settings, store, tracker, clock=clock, metrics=metrics)
    return Services(
        settings=settings,
        store=store,
        session=session,
        client=client,
        tracker=tracker,
        service=service,
        moderation=Moderation(settings, store, service, clock=clock),
        webhook_url=webhook_url,
        metrics=metrics,
    )


def coordination(store: Store) -> tuple[Signals, Budget]:
    """How this process works beside the others on the store's database (see the docstring)."""
    if not store.is_postgres:
        return LocalSignals(), LocalBudget()
    engine = store.database.engine
    return PostgresSignals(engine), PostgresBudget(engine)


def api_client(
    settings: Settings,
    session: aiohttp.ClientSession,
    metrics: Metrics | None = None,
    budget: Budget | None = None,
) -> WanClient:
    """The WAN API client with the operator's key, base URL and request budget; ``metrics``
    counts its HTTP attempts and the time they waited for the budget; with several processes,
    only the ``budget`` holder's calls go out."""
    on_wait = metrics.rate_limit_waited if metrics is not None else None
    admit = budget.admit if budget is not None else None
    return WanClient(
        session,
        base_url=settings.wan_api_base,
        api_key=settings.wan_api_key,
        key_header=settings.wan_api_key_header,
        limiter=RateLimiter(settings.api_max_rps, settings.api_burst, on_wait=on_wait, admit=admit),
        observer=metrics,
    )
