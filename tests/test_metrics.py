"""core.metrics (bounded labels, one registry each), /metrics, the loop-lag probe, REST errors."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.http_server import make_http_app
from core.jobs import JobState
from core.loop_lag import LoopLagProbe
from core.metrics import Metrics, discord_route, status_label
from core.ratelimit import RateLimiter
from core.request import GenerationRequest, Reference
from core.store import QuotaLimits, Store
from core.wan import RetrySettings, WanClient, WanTransientError
from discord_side.observability import rest_error_trace
from tests.fakes.wan_server import API_PATH, FakeWanServer
from tests.store.helpers import NOW, make_job
from tests.tracker_rig import rig


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(process=False), Metrics(process=False)
    first.api_request("create", 200)
    assert first.value("wanbot_api_requests_total", {"operation": "create", "status": "200"}) == 1
    assert second.value("wanbot_api_requests_total", {"operation": "create", "status": "200"}) == 0


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (200, "200"),
        (429, "429"),
        (401, "401"),
        (418, "4xx"),
        (503, "5xx"),
        (599, "5xx"),
        (204, "2xx"),
        (999, "other"),
        ("timeout", "timeout"),
        ("connection_error", "connection_error"),
        ("who knows", "other"),
    ],
)
def test_status_labels_are_bounded(status: int | str, label: str) -> None:
    assert status_label(status) == label


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/v10/interactions/123/aW50ZXJhY3Rpb24/callback", "interactions"),
        ("/api/v10/webhooks/1/tok/messages/@original", "webhooks"),
        ("/api/v10/channels/5/messages", "messages"),
        ("/api/v10/channels/5/messages/6/threads", "threads"),
        ("/api/v10/channels/5", "channels"),
        ("/api/v10/applications/1/guilds/2/commands", "commands"),
        ("/api/v10/applications/1", "other"),
        ("/api/v10/guilds/2/members/3", "guilds"),
        ("/v9/users/@me", "users"),
        ("/something/else", "other"),
        ("/", "other"),
    ],
)
def test_discord_routes_keep_no_ids_or_tokens(path: str, route: str) -> None:
    assert discord_route(path) == route


def test_helpers_map_unknown_values_to_other_and_record_what_they_are_told() -> None:
    metrics = Metrics(process=False)
    metrics.request_accepted("command")
    metrics.request_accepted("made-up origin")
    metrics.request_refused("quota")
    metrics.request_refused("user 1234 asked")  # never becomes a label of its own
    metrics.api_request("poll-everything", 503)
    metrics.rate_limit_waited(0.3)
    metrics.task_finished(95.0)
    metrics.delivered("file", completion_to_post=1.5)
    metrics.delivered("link", completion_to_post=-2.0)  # a clock step counts as 0, not a crash
    metrics.delivered("failed", completion_to_post=3.0)  # a failure has no posting lag
    metrics.ledger("reserve", 6)
    metrics.ledger("refund", -6)
    metrics.discord_error("/api/v10/channels/1/messages", 403)
    metrics.loop_lagged(0.02)

    value = metrics.value
    assert value("wanbot_requests_accepted_total", {"origin": "command"}) == 1
    assert value("wanbot_requests_accepted_total", {"origin": "other"}) == 1
    assert value("wanbot_requests_refused_total", {"reason": "quota"}) == 1
    assert value("wanbot_requests_refused_total", {"reason": "other"}) == 1
    assert value("wanbot_api_requests_total", {"operation": "other", "status": "5xx"}) == 1
    assert value("wanbot_api_rate_limit_wait_seconds_count") == 1
    assert value("wanbot_task_run_seconds_sum") == 95.0
    assert value("wanbot_deliveries_total", {"outcome": "file"}) == 1
    assert value("wanbot_deliveries_total", {"outcome": "link"}) == 1
    assert value("wanbot_deliveries_total", {"outcome": "failed"}) == 1
    assert value("wanbot_completion_to_post_seconds_count") == 2
    assert value("wanbot_completion_to_post_seconds_sum") == 1.5
    assert value("wanbot_ledger_seconds_total", {"kind": "reserve"}) == 6
    assert value("wanbot_ledger_seconds_total", {"kind": "refund"}) == 6
    assert value("wanbot_discord_rest_errors_total", {"route": "messages", "status": "403"}) == 1
    assert value("wanbot_event_loop_lag_seconds_count") == 1


async def test_render_runs_the_scrape_hooks_and_survives_a_failing_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()

    async def count() -> None:
        metrics.set_job_counts({"running": 3})

    async def broken() -> None:
        raise RuntimeError("database gone")

    metrics.before_scrape(broken)
    metrics.before_scrape(count)
    with caplog.at_level(logging.ERROR, "core.metrics"):
        text = (await metrics.render()).decode()
    assert 'wanbot_jobs{state="running"} 3.0' in text
    assert 'wanbot_jobs{state="reserved"} 0.0' in text  # every unfinished state, from the start
    assert 'wanbot_deliveries_total{outcome="link"} 0.0' in text
    assert "process_resident_memory_bytes" in text
    assert "a scrape hook failed" in caplog.text


async def test_unfinished_jobs_are_counted_by_state(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "db.sqlite3") as store:
        assert await store.count_unfinished_by_state() == {}
        limits = QuotaLimits(600, 10)
        jobs = [await store.create_job(make_job(), limits, NOW) for _ in range(4)]
        await store.transition(jobs[0].id, JobState.SUBMITTING, NOW)
        await store.transition(jobs[1].id, JobState.FAILED, NOW)  # finished: not counted
        await store.transition(jobs[2].id, JobState.SUBMITTING, NOW)
        assert await store.count_unfinished_by_state() == {
            JobState.RESERVED: 1,
            JobState.SUBMITTING: 2,
        }


async def test_metrics_route_serves_the_exposition() -> None:
    metrics = Metrics(process=False)
    metrics.api_request("get", 429)
    app = make_http_app(None, lambda: {"ok": True}, metrics=metrics)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert 'wanbot_api_requests_total{operation="get",status="429"} 1.0' in text


async def test_without_metrics_there_is_no_metrics_route() -> None:
    app = make_http_app(None, lambda: {"ok": True})
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 404


async def test_the_loop_lag_probe_sees_a_blocked_loop() -> None:
    seen = asyncio.Event()
    lags: list[float] = []

    def record(lag: float) -> None:
        lags.append(lag)
        if lag >= 0.2:
            seen.set()

    probe = LoopLagProbe(record, interval=0.01)
    probe.start()
    try:
        await asyncio.sleep(0)  # let the probe start its timer
        time.sleep(0.3)  # noqa: ASYNC251 - the blocking call the probe must notice
        await asyncio.wait_for(seen.wait(), 10)
    finally:
        await probe.stop()
    assert max(lags) >= 0.2
    assert probe.last_lag is not None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_discord_rest_errors_are_counted_through_the_session_trace() -> None:
    async def limited(request: web.Request) -> web.Response:
        return web.json_response({"message": "slow down"}, status=429)

    async def fine(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/v10/channels/{cid}/messages", limited)
    app.router.add_get("/api/v10/users/@me", fine)
    metrics = Metrics(process=False)
    async with (
        TestServer(app) as server,
        aiohttp.ClientSession(trace_configs=[rest_error_trace(metrics)]) as session,
    ):
        async with session.post(server.make_url("/api/v10/channels/1/messages")) as resp:
            assert resp.status == 429
        async with session.get(server.make_url("/api/v10/users/@me")) as resp:
            assert resp.status == 200
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{_closed_port()}/api/v10/channels/1")
    errors = "wanbot_discord_rest_errors_total"
    assert metrics.value(errors, {"route": "messages", "status": "429"}) == 1
    assert metrics.value(errors, {"route": "channels", "status": "connection_error"}) == 1
    assert metrics.value(errors, {"route": "users", "status": "200"}) == 0


class StepClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


API_KEY = "sk-metrics-test"
REQUEST = GenerationRequest(
    prompt="Image 1 waves", image_refs=(Reference("https://cdn.example/a.png"),), duration=5
)


async def test_every_api_attempt_is_counted_by_operation_and_status(
    session: aiohttp.ClientSession,
) -> None:
    metrics, clock = Metrics(process=False), StepClock()
    async with FakeWanServer(api_key=API_KEY, task_seconds=None) as wan:
        client = WanClient(
            session,
            base_url=wan.base_url,
            api_key=API_KEY,
            limiter=RateLimiter(100.0, 50, clock=clock, sleep=clock.sleep),
            retry=RetrySettings(base_delay=0.1, request_timeout=0.3),
            sleep=clock.sleep,
            clock=clock,
            observer=metrics,
        )
        task_id = (await client.create(REQUEST)).task_id
        wan.rate_limit_next(retry_after="1", method="GET")  # a 429, then the retry's 200
        await client.get(task_id)
        wan.fail_next(503, method="GET")
        await client.get(task_id)  # 503, then 200
        wan.delay_next(30.0, method="GET")
        await client.get(task_id)  # a timeout, then 200
        await client.list_tasks()  # page 1 with the task, page 2 empty
        gets = len(wan.requests_to("GET", f"{API_PATH}/{task_id}"))
    nowhere = WanClient(
        session,
        base_url=f"http://127.0.0.1:{_closed_port()}",
        api_key=API_KEY,
        limiter=RateLimiter(100.0, 50),
        retry=RetrySettings(max_attempts=1),
        observer=metrics,
    )
    with pytest.raises(WanTransientError):
        await nowhere.get(task_id)

    def count(operation: str, status: str) -> float:
        return metrics.value(
            "wanbot_api_requests_total", {"operation": operation, "status": status}
        )

    assert count("create", "200") == 1
    assert count("get", "429") == 1
    assert count("get", "5xx") == 1  # 503 is not one of the codes told apart
    assert count("get", "connection_error") == 1
    assert count("get", "timeout") == 1
    assert count("get", "200") == 3
    assert count("list", "200") == 2
    # One count per attempt the server saw, answered in time or not (and one it never saw).
    statuses = ("200", "429", "5xx", "timeout")
    assert sum(count("get", status) for status in statuses) == gets


async def test_the_limiter_reports_every_wait() -> None:
    metrics, clock = Metrics(process=False), StepClock()
    limiter = RateLimiter(1.0, 1, clock=clock, sleep=clock.sleep, on_wait=metrics.rate_limit_waited)
    await limiter.acquire("read")  # the first goes at once
    await limiter.acquire("read")  # the next a window later
    limiter.pause_for(5.0, "read")
    await limiter.acquire("read")
    assert metrics.value("wanbot_api_rate_limit_wait_seconds_count") == 3
    assert metrics.value("wanbot_api_rate_limit_wait_seconds_bucket", {"le": "0.01"}) == 1
    assert metrics.value("wanbot_api_rate_limit_wait_seconds_sum") == pytest.approx(1.1 + 5.0)


async def test_a_completion_counts_its_run_time_and_the_api_calls_it_took(
    tmp_path: Path,
) -> None:
    metrics = Metrics(process=False)
    async with rig(
        tmp_path, on_run_time=metrics.task_finished, client_options={"observer": metrics}
    ) as r:
        final = await r.wait_finished(await r.accept())
        gets = len(r.wan.requests_to("GET", f"{API_PATH}/{final.task_id}"))
    assert final.completed_at is not None and final.submitted_at is not None
    assert metrics.value("wanbot_task_run_seconds_count") == 1
    assert metrics.value("wanbot_task_run_seconds_sum") == pytest.approx(
        final.completed_at - final.submitted_at
    )
    api = "wanbot_api_requests_total"
    assert metrics.value(api, {"operation": "create", "status": "200"}) == 1
    assert metrics.value(api, {"operation": "get", "status": "200"}) == gets >= 1
