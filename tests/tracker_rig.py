"""The tracker's test rig: the real tracker, store and service against the fake WAN server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from core.app import coordination
from core.config import Settings
from core.jobs import Job, JobState
from core.ratelimit import RateLimiter
from core.references import Attachment, GenerationOptions, ReferenceInput, build_request
from core.service import Requester, VideoService
from core.store import Store, owner_id
from core.tracker import Tracker, TrackerConfig, VideoSource
from core.wan import RetrySettings, WanClient
from core.webhook_tokens import webhook_url_source
from tests.fakes.wan_server import FakeWanServer

API_KEY = "test-key"
# Where a rig keeps its store, by the test's directory: a SQLite file there, unless the test
# runs on both engines (the ``both_engines`` fixture) and this is its PostgreSQL turn. A rig
# opened again on the same directory (a restart) finds the same database.
DATABASES: dict[Path, Path | str] = {}


def store_target(tmp_path: Path) -> Path | str:
    return DATABASES.get(tmp_path, tmp_path / "db.sqlite3")


FAST = TrackerConfig(
    max_rps=200.0,  # the client's limiter below
    burst=50,
    lag_target=0.05,
    reconcile_grace=0.2,
    error_backoff_base=0.05,
    error_backoff_cap=0.2,
    delivery_backoff_base=0.02,
    delivery_backoff_cap=0.05,
    delivery_attempts=3,
    webhook_poll_interval=0.2,
)
DEDICATED = replace(FAST, key_dedicated=True)
WHO = Requester(guild_id=1, channel_id=2, user_id=3)


@dataclass
class RecordingEvents:
    """A stand-in for the Discord side: records what the tracker tells it."""

    changes: list[tuple[str, JobState]] = field(default_factory=list)
    delivered: dict[str, int] = field(default_factory=dict)  # job id → bytes received
    deliveries: int = 0
    fail_deliveries: int = 0
    done: dict[str, asyncio.Event] = field(default_factory=dict)

    def finished(self, job_id: str) -> asyncio.Event:
        return self.done.setdefault(job_id, asyncio.Event())

    async def job_changed(self, job: Job) -> None:
        self.changes.append((job.id, job.state))
        if job.state.is_finished:
            self.finished(job.id).set()

    async def deliver(self, job: Job, video: VideoSource) -> int:
        self.deliveries += 1
        if self.fail_deliveries:
            self.fail_deliveries -= 1
            raise RuntimeError("Discord is down")
        async with video.open(10 * 1024 * 1024) as downloaded:
            self.delivered[job.id] = downloaded.path.stat().st_size
        return 1000 + self.deliveries

    def states(self, job_id: str) -> list[JobState]:
        return [state for jid, state in self.changes if jid == job_id]


def settings(tmp_path: Path, **env: str) -> Settings:
    base = {"DISCORD_TOKEN": "t", "FREEPIK_API_KEY": API_KEY, "DATABASE_PATH": str(tmp_path)}
    return Settings.from_env({**base, **env})


@dataclass
class Rig:
    wan: FakeWanServer | None  # None: the fake runs in a process of its own (``wan_url``)
    store: Store
    tracker: Tracker
    service: VideoService
    events: RecordingEvents
    session: aiohttp.ClientSession
    # The API as an earlier (crashed) process used it: not behind this tracker's budget.
    api: WanClient

    async def accept(self, duration: int = 5) -> Job:
        image = Attachment("https://cdn.example/a.png", "a.png", "image/png", 10_000, 512, 512)
        built = build_request(
            "Image 1 waves", [ReferenceInput(1, image)], GenerationOptions(duration=duration)
        )
        return await self.service.accept(WHO, built)

    async def wait_finished(self, job: Job, timeout: float = 10.0) -> Job:
        await asyncio.wait_for(self.events.finished(job.id).wait(), timeout)
        final = await self.store.get_job(job.id)
        assert final is not None
        return final


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    wan: FakeWanServer | None = None,
    store: Store | None = None,
    config: TrackerConfig = FAST,
    webhooks: bool = False,
    env: dict[str, str] | None = None,
    start: bool = True,
    client_options: dict[str, Any] | None = None,
    coordinated: bool | None = None,
    holds_budget: bool = True,
    wan_url: str | None = None,
    **tracker_options: Any,
) -> AsyncIterator[Rig]:
    """The tracker as bot.py builds it; on PostgreSQL (or ``coordinated``) as one of several
    processes: an owner id of its own, LISTEN/NOTIFY signals, the budget as an advisory lock
    (``core.app.coordination``), so that several rigs on one database are several processes.
    Started, the rig is yielded once its budget is held (its first calls then go out at once, as
    a test with a one-second deadline needs), unless ``holds_budget`` is False (a second rig)."""
    async with aiohttp.ClientSession() as session:
        own_wan = wan is None and wan_url is None
        if own_wan:
            wan = FakeWanServer(api_key=API_KEY, task_seconds=0.2)
            await wan.start()
        base_url = wan_url or wan.base_url
        own_store = store is None
        store_cm = Store.open(store_target(tmp_path)) if own_store else None
        if store_cm is not None:
            store = await store_cm.__aenter__()
        assert store is not None
        if coordinated is None:
            coordinated = store.is_postgres
        signals, budget = coordination(store) if coordinated else (None, None)
        if coordinated:
            tracker_options.setdefault("owner", owner_id(True))
        client = WanClient(
            session,
            base_url=base_url,
            api_key=API_KEY,
            limiter=RateLimiter(
                config.max_rps, config.burst, admit=None if budget is None else budget.admit
            ),
            retry=RetrySettings(max_attempts=3, base_delay=0.01, max_delay=0.05),
            **(client_options or {}),
        )
        services: list[VideoService] = []

        def webhook_url(job: Job) -> str | None:
            # Read late, from the service's settings: a test may swap them after the rig is built.
            source = webhook_url_source(services[0].settings)
            return None if source is None else source(job)

        tracker_options.setdefault("webhook_url", webhook_url)
        tracker = Tracker(
            store,
            client,
            session,
            webhooks=webhooks,
            config=config,
            signals=signals,
            budget=budget,
            **tracker_options,
        )
        events = RecordingEvents()
        tracker.set_events(events)
        service = VideoService(settings(tmp_path / "db.sqlite3", **(env or {})), store, tracker)
        services.append(service)
        try:
            if start:
                await tracker.start()
                if holds_budget:
                    await until(lambda: tracker.budget.held)
            earlier = WanClient(
                session, base_url=base_url, api_key=API_KEY, limiter=RateLimiter(200, 50)
            )
            yield Rig(wan, store, tracker, service, events, session, earlier)
        finally:
            await tracker.stop()
            if store_cm is not None:
                await store_cm.__aexit__(None, None, None)
            if own_wan and wan is not None:
                await wan.close()


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def until_state(r: Rig, job: Job, state: JobState, timeout: float = 5.0) -> Job:
    async with asyncio.timeout(timeout):
        while True:
            current = await r.store.get_job(job.id)
            if current is not None and current.state is state:
                return current
            await asyncio.sleep(0.02)
