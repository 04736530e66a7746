"""The real WAN client against the fake WAN server (and a few checks of the fake itself).

Retry waits go through an injected fake clock, so no test sleeps for the backoff it asserts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import random
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.ratelimit import RateLimiter
from core.request import GenerationRequest, Reference
from core.wan import (
    EXCERPT_CHARS,
    RetrySettings,
    TaskStatus,
    WanClient,
    WanDeadlinePassed,
    WanError,
    WanNotFound,
    WanOperatorError,
    WanProtocolError,
    WanSubmitUnknown,
    WanTransientError,
    WanUserError,
    parse_retry_after,
)
from tests.fakes.wan_server import API_PATH, FakeWanServer, validate_create

API_KEY = "sk-test-do-not-log-0123456789"
REPO = Path(__file__).resolve().parents[1]
REQUEST = GenerationRequest(
    prompt="Image 1 dances in the rain while Video 1 plays guitar",
    image_refs=(Reference("https://cdn.example/a.png", "https://cdn.example/a.wav"),),
    video_refs=(Reference("https://cdn.example/b.mp4"),),
    negative_prompt="blurry",
    aspect_ratio="9:16",
    resolution="720P",
    duration=4,
    seed=7,
    prompt_extend=False,
)


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class CountingLimiter(RateLimiter):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(100.0, 50, clock=clock, sleep=clock.sleep)
        self.acquired = 0
        self.kinds: list[str] = []

    async def acquire(self, kind: str = "*") -> None:
        self.acquired += 1
        self.kinds.append(kind)
        await super().acquire(kind)


class TopOfRange(random.Random):
    """Makes full jitter deterministic: always the top of the range."""

    def uniform(self, a: float, b: float) -> float:
        return b


FAST = RetrySettings(
    max_attempts=4, max_total_seconds=60.0, base_delay=0.5, max_delay=5.0, request_timeout=2.0
)


@pytest.fixture
async def wan() -> AsyncIterator[FakeWanServer]:
    async with FakeWanServer(api_key=API_KEY, task_seconds=None) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> CountingLimiter:
    return CountingLimiter(clock)


MakeClient = Callable[..., WanClient]


@pytest.fixture
def make_client(
    session: aiohttp.ClientSession, wan: FakeWanServer, clock: FakeClock, limiter: CountingLimiter
) -> MakeClient:
    def make(**overrides: Any) -> WanClient:
        options: dict[str, Any] = {
            "base_url": wan.base_url,
            "api_key": API_KEY,
            "limiter": limiter,
            "retry": FAST,
            "sleep": clock.sleep,
            "clock": clock,
            "rng": random.Random(7),
        }
        options.update(overrides)
        return WanClient(session, **options)

    return make


@pytest.fixture
def client(make_client: MakeClient) -> WanClient:
    return make_client()


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait for something the fake does in the background (a guard, not a timing assertion)."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- happy path -----------------------------------------------------------------------------------


async def test_create_sends_the_exact_body_and_headers(
    client: WanClient, wan: FakeWanServer
) -> None:
    task = await client.create(REQUEST)

    assert task.status is TaskStatus.CREATED
    assert task.generated == ()
    assert list(wan.tasks) == [task.task_id]
    [sent] = wan.creates
    assert sent.json == REQUEST.to_json()
    assert sent.key_ok
    assert sent.headers["x-freepik-api-key"] == "<redacted>"
    assert sent.headers["Content-Type"] == "application/json"


async def test_the_webhook_url_keyword_goes_into_the_body_and_wins(
    client: WanClient, wan: FakeWanServer
) -> None:
    await client.create(REQUEST, webhook_url="https://bot.example/webhooks/wan/tok1")
    stored = REQUEST.replace(webhook_url="https://old.example/webhooks/wan/stale")
    await client.create(stored, webhook_url="https://bot.example/webhooks/wan/tok2")
    await client.create(stored)  # no keyword: the request's own stays
    urls = [sent.json["webhook_url"] for sent in wan.creates]
    assert urls == [
        "https://bot.example/webhooks/wan/tok1",
        "https://bot.example/webhooks/wan/tok2",
        "https://old.example/webhooks/wan/stale",
    ]
    assert {key: value for key, value in wan.creates[0].json.items() if key != "webhook_url"} == (
        REQUEST.to_json()
    )


async def test_a_create_past_its_deadline_is_not_sent(
    make_client: MakeClient, wan: FakeWanServer
) -> None:
    client = make_client(wall_clock=lambda: 5000.0)
    with pytest.raises(WanDeadlinePassed):
        await client.create(REQUEST, not_after=5000.0)
    assert wan.requests == []
    await client.create(REQUEST, not_after=5000.5)  # still in time: sent
    assert len(wan.creates) == 1


async def test_a_long_hold_on_creates_fails_a_create_at_once_and_leaves_reads_alone(
    client: WanClient, wan: FakeWanServer, clock: FakeClock, limiter: CountingLimiter
) -> None:
    task = await client.create(REQUEST)
    limiter.pause_for(3600.0, "create")  # a 429 said Retry-After: 3600
    assert client.held_for("create") == pytest.approx(3600.0)
    with pytest.raises(WanTransientError) as caught:
        await client.create(REQUEST)
    assert caught.value.retry_after == pytest.approx(3600.0)
    assert clock.sleeps == []  # nobody waits an hour inside the client
    assert len(wan.creates) == 1
    assert (await client.get(task.task_id)).task_id == task.task_id  # reads go on
    assert client.held_for("read") == 0.0


async def test_every_page_of_the_list_is_read(client: WanClient, wan: FakeWanServer) -> None:
    wan.list_page_size = 2  # the server pages below the size we ask for
    made = {(await client.create(REQUEST)).task_id for _ in range(5)}
    assert {task.task_id for task in await client.list_tasks()} == made
    pages = [r.query for r in wan.requests if r.method == "GET"]
    assert [page["page"] for page in pages] == ["1", "2", "3", "4"]  # 2 + 2 + 1, then none
    assert {page["page_size"] for page in pages} == {"100"}


async def test_a_list_cut_at_its_page_limit_says_so(client: WanClient, wan: FakeWanServer) -> None:
    wan.list_page_size = 1
    for _ in range(3):
        await client.create(REQUEST)
    tasks, complete = await client.list_all_tasks(max_pages=2)
    assert len(tasks) == 2 and not complete
    tasks, complete = await client.list_all_tasks(max_pages=5)
    assert len(tasks) == 3 and complete


async def test_a_list_that_ignores_paging_is_read_once(
    client: WanClient, wan: FakeWanServer
) -> None:
    first = await client.create(REQUEST)
    same = {"data": [{"task_id": first.task_id, "status": "CREATED"}]}
    wan.fail_next(200, 2, method="GET", body=same)  # every page answers with the same list
    assert [task.task_id for task in await client.list_tasks()] == [first.task_id]
    assert len([r for r in wan.requests if r.method == "GET"]) == 2


async def test_the_magnific_header_name_works_too(
    make_client: MakeClient, wan: FakeWanServer
) -> None:
    client = make_client(key_header="x-magnific-api-key")
    await client.create(REQUEST)
    assert wan.creates[0].headers["x-magnific-api-key"] == "<redacted>"


async def test_get_follows_the_task_to_its_result(client: WanClient, wan: FakeWanServer) -> None:
    task_id = (await client.create(REQUEST)).task_id
    wan.progress(task_id)
    assert (await client.get(task_id)).status is TaskStatus.IN_PROGRESS

    wan.complete(task_id)
    done = await client.get(task_id)

    assert done.status is TaskStatus.COMPLETED
    assert done.status.is_final
    [url] = done.generated
    assert url.startswith(f"{wan.base_url}/_fake/media/{task_id}.mp4?token=exp=")
    assert "~hmac=" in url


async def test_extra_fields_in_responses_are_ignored(
    client: WanClient, wan: FakeWanServer, session: aiohttp.ClientSession
) -> None:
    task_id = (await client.create(REQUEST)).task_id
    # Prove the fake really sends a field the contract does not list...
    async with session.get(
        f"{wan.api_url}/{task_id}", headers={"x-freepik-api-key": API_KEY}
    ) as resp:
        assert "has_nsfw" in (await resp.json())["data"]
    # ...and that the client reads the task regardless.
    assert (await client.get(task_id)).task_id == task_id


async def test_failed_task_has_no_results(client: WanClient, wan: FakeWanServer) -> None:
    wan.fail_next_tasks = 1
    task_id = (await client.create(REQUEST)).task_id
    wan.fail(task_id)
    task = await client.get(task_id)
    assert task.status is TaskStatus.FAILED
    assert task.generated == ()


async def test_list_tasks_returns_ids_and_statuses(client: WanClient, wan: FakeWanServer) -> None:
    first = await client.create(REQUEST)
    second = await client.create(REQUEST)
    wan.complete(second.task_id)

    listed = {task.task_id: task for task in await client.list_tasks()}

    assert listed.keys() == {first.task_id, second.task_id}
    assert listed[first.task_id].status is TaskStatus.CREATED
    assert listed[second.task_id].status is TaskStatus.COMPLETED
    assert listed[second.task_id].generated == ()  # list items carry no results


async def test_unknown_status_parses_as_unknown(
    client: WanClient, wan: FakeWanServer, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = (await client.create(REQUEST)).task_id
    wan.set_status(task_id, "QUEUED_FOR_REVIEW")
    with caplog.at_level(logging.WARNING, logger="core.wan"):
        task = await client.get(task_id)
    assert task.status is TaskStatus.UNKNOWN
    assert task.raw_status == "QUEUED_FOR_REVIEW"
    assert "QUEUED_FOR_REVIEW" in caplog.text


async def test_task_id_is_quoted_as_one_path_segment(client: WanClient, wan: FakeWanServer) -> None:
    with pytest.raises(WanNotFound) as caught:
        await client.get("a/b c?d")
    assert caught.value.status == 404
    [sent] = wan.requests
    assert sent.raw_path == f"{API_PATH}/a%2Fb%20c%3Fd"


async def test_an_empty_task_id_is_refused_before_any_request(
    client: WanClient, wan: FakeWanServer
) -> None:
    with pytest.raises(ValueError, match="task_id"):
        await client.get("")
    assert wan.requests == []


# --- error mapping --------------------------------------------------------------------------------


async def test_validation_errors_become_readable_user_errors(
    client: WanClient, wan: FakeWanServer
) -> None:
    with pytest.raises(WanUserError) as caught:
        await client.create(REQUEST.replace(duration=11, seed=-1))

    error = caught.value
    assert error.status == 400
    assert {p.name for p in error.invalid_params} == {"duration", "seed"}
    assert str(error).startswith("Invalid parameters — ")
    assert "duration: must be an integer from 2 to 10" in str(error)
    assert '"invalid_params"' in error.excerpt
    assert wan.tasks == {}


async def test_the_problem_wrapped_error_form_is_parsed(
    client: WanClient, wan: FakeWanServer
) -> None:
    problem = {"message": "Invalid request", "invalid_params": [{"name": "prompt", "reason": "x"}]}
    wan.fail_next(400, body={"problem": problem})
    with pytest.raises(WanUserError) as caught:
        await client.create(REQUEST)
    assert str(caught.value) == "Invalid request — prompt: x"


async def test_422_is_a_user_error_with_the_api_message(
    client: WanClient, wan: FakeWanServer
) -> None:
    wan.fail_next(422, message="The reference image is too small.")
    with pytest.raises(WanUserError, match=r"^The reference image is too small$"):
        await client.create(REQUEST)


async def test_a_wrong_key_is_an_operator_error(
    make_client: MakeClient, wan: FakeWanServer
) -> None:
    client = make_client(api_key="sk-wrong")
    with pytest.raises(WanOperatorError, match="Invalid API key") as caught:
        await client.list_tasks()
    assert caught.value.status == 401
    assert len(wan.requests) == 1  # never retried


async def test_a_missing_key_is_an_operator_error(
    make_client: MakeClient, wan: FakeWanServer
) -> None:
    client = make_client(key_header="x-some-other-header")
    with pytest.raises(WanOperatorError, match="Missing API key"):
        await client.list_tasks()


@pytest.mark.parametrize("status", [402, 403])
async def test_credits_and_permissions_are_operator_errors(
    client: WanClient, wan: FakeWanServer, status: int
) -> None:
    wan.fail_next(status)
    with pytest.raises(WanOperatorError) as caught:
        await client.create(REQUEST)
    assert caught.value.status == status
    assert len(wan.creates) == 1


async def test_unknown_task_is_not_found(client: WanClient) -> None:
    with pytest.raises(WanNotFound, match="Not found"):
        await client.get("046b6c7f-0b8a-43b9-b35d-6489e6daee91")


async def test_a_redirect_is_not_followed(client: WanClient, wan: FakeWanServer) -> None:
    wan.fail_next(302, text="moved", headers={"Location": "/elsewhere"})
    with pytest.raises(WanOperatorError, match="302"):
        await client.create(REQUEST)
    assert [r.path for r in wan.requests] == [API_PATH]


async def test_500_on_get_is_retried_then_transient(
    client: WanClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    wan.fail_next(500, count=10, method="GET", text="<html>Internal error</html>")
    with pytest.raises(WanTransientError) as caught:
        await client.list_tasks()
    assert caught.value.status == 500
    assert "Internal error" in caught.value.excerpt
    assert not isinstance(caught.value, WanProtocolError)
    assert len(wan.requests) == FAST.max_attempts
    assert len(clock.sleeps) == FAST.max_attempts - 1


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_5xx_after_a_create_is_an_unknown_outcome(
    client: WanClient, wan: FakeWanServer, status: int
) -> None:
    # The gateway failed after the API made the task: it exists, and we must not make another.
    wan.fail_next(status, method="POST", after_processing=True)
    with pytest.raises(WanSubmitUnknown) as caught:
        await client.create(REQUEST)
    assert caught.value.status == status
    assert len(wan.creates) == 1
    assert len(wan.tasks) == 1


async def test_bad_json_on_get_is_a_protocol_error(client: WanClient, wan: FakeWanServer) -> None:
    task_id = (await client.create(REQUEST)).task_id
    wan.bad_json_next(method="GET")
    with pytest.raises(WanProtocolError) as caught:
        await client.get(task_id)
    assert isinstance(caught.value, WanTransientError)
    assert caught.value.status == 200
    assert caught.value.excerpt.startswith('{"data": {"task_id"')
    assert len(wan.requests_to("GET", f"{API_PATH}/{task_id}")) == 1


async def test_an_unexpected_shape_is_a_protocol_error(
    client: WanClient, wan: FakeWanServer
) -> None:
    wan.fail_next(200, body={"task": {"task_id": "x", "status": "CREATED"}}, method="GET")
    with pytest.raises(WanProtocolError, match="data"):
        await client.list_tasks()


async def test_odd_list_items_are_skipped(client: WanClient, wan: FakeWanServer) -> None:
    body = {"data": [{"task_id": "ok", "status": "CREATED"}, {"status": "CREATED"}, "junk"]}
    wan.fail_next(200, body=body, method="GET")
    assert [task.task_id for task in await client.list_tasks()] == ["ok"]


async def test_bad_json_after_a_create_is_an_unknown_outcome(
    client: WanClient, wan: FakeWanServer
) -> None:
    wan.bad_json_next(method="POST")
    with pytest.raises(WanSubmitUnknown, match="may exist"):
        await client.create(REQUEST)
    assert len(wan.creates) == 1
    assert len(wan.tasks) == 1


async def test_an_oversized_body_is_a_protocol_error(
    make_client: MakeClient, wan: FakeWanServer
) -> None:
    client = make_client(max_body_bytes=64)
    wan.fail_next(200, text='{"data": []' + " " * 1000 + "}", method="GET")
    with pytest.raises(WanProtocolError, match="over 64 bytes"):
        await client.list_tasks()


async def test_error_excerpts_are_size_capped(client: WanClient, wan: FakeWanServer) -> None:
    wan.fail_next(400, text="E" * 200_000)
    with pytest.raises(WanUserError) as caught:
        await client.create(REQUEST)
    assert caught.value.excerpt == "E" * EXCERPT_CHARS
    assert str(caught.value) == "The video service rejected the request"


# --- retries --------------------------------------------------------------------------------------


async def test_a_503_burst_is_retried_and_creates_one_task(
    client: WanClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    wan.busy_next(2, method="POST")
    task = await client.create(REQUEST)
    assert len(wan.creates) == 3
    assert list(wan.tasks) == [task.task_id]
    assert len(clock.sleeps) == 2


async def test_backoff_is_exponential_with_full_jitter(
    make_client: MakeClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    wan.busy_next(3, method="GET")
    await make_client(rng=TopOfRange()).list_tasks()
    assert clock.sleeps == [0.5, 1.0, 2.0]  # the top of each jitter range: base * 2^n


async def test_jittered_delays_stay_within_their_range(
    client: WanClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    wan.busy_next(3, method="GET")
    await client.list_tasks()
    assert len(clock.sleeps) == 3
    for attempt, delay in enumerate(clock.sleeps):
        assert 0.0 <= delay <= 0.5 * 2**attempt


async def test_backoff_is_capped_by_max_delay(
    make_client: MakeClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    retry = RetrySettings(max_attempts=6, base_delay=1.0, max_delay=3.0, request_timeout=2.0)
    wan.busy_next(5, method="GET")
    await make_client(rng=TopOfRange(), retry=retry).list_tasks()
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


async def test_429_retry_after_is_honoured_and_pauses_every_call_of_that_kind(
    client: WanClient, wan: FakeWanServer, clock: FakeClock, limiter: CountingLimiter
) -> None:
    start = clock.now
    wan.rate_limit_next(retry_after="7", method="GET")
    await client.list_tasks()
    assert clock.sleeps == [7.0]  # one wait; the limiter's pause had ended when we retried
    assert limiter.paused_until("list") == pytest.approx(start + 7.0)
    assert limiter.paused_until("read") == float("-inf")  # reads of tasks were not refused
    assert len(wan.requests) == 2  # the refused page 1, then page 1 again (empty: the end)


async def test_retry_after_as_an_http_date(
    client: WanClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    wan.rate_limit_next(retry_after=formatdate(time.time() + 30, usegmt=True), method="GET")
    await client.list_tasks()
    [waited] = clock.sleeps
    assert 25.0 < waited <= 30.0


async def test_503_retry_after_is_honoured_without_a_global_pause(
    client: WanClient, wan: FakeWanServer, clock: FakeClock, limiter: CountingLimiter
) -> None:
    wan.fail_next(503, method="POST", headers={"Retry-After": "4"})
    await client.create(REQUEST)
    assert clock.sleeps == [4.0]
    assert limiter.paused_until("create") == float("-inf")


async def test_a_retry_after_beyond_the_budget_is_not_waited_for(
    make_client: MakeClient, wan: FakeWanServer, clock: FakeClock, limiter: CountingLimiter
) -> None:
    client = make_client(retry=RetrySettings(max_total_seconds=30.0, request_timeout=2.0))
    wan.rate_limit_next(retry_after="100", method="POST")
    with pytest.raises(WanTransientError) as caught:
        await client.create(REQUEST)
    assert caught.value.status == 429
    assert caught.value.retry_after == 100.0
    assert clock.sleeps == []
    assert limiter.paused_until("create") == pytest.approx(clock.now + 100.0)  # others hold off
    assert wan.tasks == {}


async def test_retries_are_bounded_in_attempts(
    make_client: MakeClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    client = make_client(retry=RetrySettings(max_attempts=3, base_delay=0.1, request_timeout=2.0))
    wan.busy_next(10, method="POST")
    with pytest.raises(WanTransientError) as caught:
        await client.create(REQUEST)
    assert not isinstance(caught.value, WanSubmitUnknown)
    assert caught.value.status == 503
    assert len(wan.creates) == 3
    assert len(clock.sleeps) == 2
    assert wan.tasks == {}


async def test_retries_are_bounded_in_total_time(
    make_client: MakeClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    retry = RetrySettings(max_attempts=100, max_total_seconds=10.0, request_timeout=2.0)
    client = make_client(retry=retry)
    wan.rate_limit_next(50, retry_after="3", method="GET")
    with pytest.raises(WanTransientError):
        await client.list_tasks()
    assert clock.sleeps == [3.0, 3.0, 3.0]  # a fourth wait would end past the 10 s budget
    assert len(wan.requests) == 4


async def test_every_attempt_goes_through_the_limiter(
    client: WanClient, wan: FakeWanServer, limiter: CountingLimiter
) -> None:
    wan.busy_next(2, method="POST")
    wan.rate_limit_next(1, retry_after="1", method="GET")
    task = await client.create(REQUEST)
    await client.get(task.task_id)
    await client.list_tasks()
    assert limiter.acquired == len(wan.requests) == 7  # the list read 2 pages (1 task, none)
    assert limiter.kinds == ["create"] * 3 + ["read"] * 2 + ["list"] * 2


# --- unknown outcomes and connection failures -----------------------------------------------------


async def test_a_create_that_times_out_after_acceptance_is_unknown(
    make_client: MakeClient, wan: FakeWanServer, clock: FakeClock
) -> None:
    client = make_client(retry=RetrySettings(request_timeout=0.3))
    wan.hang_next(seconds=30.0, method="POST")

    with pytest.raises(WanSubmitUnknown, match="timed out"):
        await client.create(REQUEST)

    assert len(wan.creates) == 1
    assert len(wan.tasks) == 1  # the API made the task; we did not make a second one
    assert clock.sleeps == []
    # This is how the tracker reconciles: the orphan is visible in the list.
    [orphan] = await client.list_tasks()
    assert orphan.task_id in wan.tasks


async def test_a_create_whose_connection_drops_after_acceptance_is_unknown(
    client: WanClient, wan: FakeWanServer
) -> None:
    wan.drop_next(method="POST")
    with pytest.raises(WanSubmitUnknown, match="connection failed"):
        await client.create(REQUEST)
    assert len(wan.creates) == 1
    assert len(wan.tasks) == 1


async def test_a_refused_create_is_retried_because_nothing_was_sent(
    session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    port = free_port()
    server = FakeWanServer(api_key=API_KEY, port=port, task_seconds=None)

    async def sleep_then_start_the_server(seconds: float) -> None:
        clock.sleeps.append(seconds)
        if len(clock.sleeps) == 1:
            await server.start()

    client = WanClient(
        session,
        base_url=f"http://127.0.0.1:{port}",
        api_key=API_KEY,
        limiter=RateLimiter(100.0, 50, clock=clock, sleep=clock.sleep),
        retry=FAST,
        sleep=sleep_then_start_the_server,
        clock=clock,
    )
    try:
        task = await client.create(REQUEST)
        assert list(server.tasks) == [task.task_id]
        assert len(server.creates) == 1
        assert len(clock.sleeps) == 1
    finally:
        await server.close()


async def test_a_create_that_never_connects_is_transient_not_unknown(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(WanTransientError, match="cannot connect") as caught:
        await client.create(REQUEST)
    assert caught.value.status is None
    assert len(clock.sleeps) == FAST.max_attempts - 1


async def test_a_get_is_retried_after_a_dropped_connection(
    client: WanClient, wan: FakeWanServer
) -> None:
    task_id = (await client.create(REQUEST)).task_id
    wan.drop_next(method="GET")
    assert (await client.get(task_id)).task_id == task_id
    assert len(wan.requests_to("GET", f"{API_PATH}/{task_id}")) == 2


async def test_a_get_is_retried_after_a_timeout(
    make_client: MakeClient, wan: FakeWanServer
) -> None:
    client = make_client(retry=RetrySettings(request_timeout=0.3, base_delay=0.1))
    task_id = (await client.create(REQUEST)).task_id
    wan.delay_next(30.0, method="GET")
    assert (await client.get(task_id)).task_id == task_id
    assert len(wan.requests_to("GET", f"{API_PATH}/{task_id}")) == 2


async def test_an_invalid_base_url_is_an_operator_error(make_client: MakeClient) -> None:
    with pytest.raises(WanOperatorError):
        await make_client(base_url="ftp://nowhere.example").list_tasks()


async def test_the_api_key_is_never_logged_or_raised(
    make_client: MakeClient,
    wan: FakeWanServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client()
    errors: list[WanError] = []
    wan.busy_next(2)
    wan.fail_next(500, method="POST", text=f"echo {API_KEY}")
    wan.fail_next(401, method="GET", message=f"bad key {API_KEY}")
    for call in (client.list_tasks, lambda: client.create(REQUEST), client.list_tasks):
        try:
            await call()
        except WanError as exc:
            errors.append(exc)
    assert len(errors) == 2
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(client)
    for error in errors:
        assert API_KEY not in str(error)
        assert API_KEY not in error.excerpt


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(header, now=now) == expected


# --- the fake itself ------------------------------------------------------------------------------


def test_the_fake_accepts_the_documented_example() -> None:
    example = {
        "prompt": "Image 1 is dancing in a garden while Video 1 plays guitar in the background",
        "webhook_url": "https://www.example.com/webhook",
        "negative_prompt": "watermark, text, distortion, blurry, extra limbs",
        "image_urls": [{"url": "https://e.com/c1.jpg", "reference_voice": "https://e.com/v.wav"}],
        "video_urls": [{"url": "https://e.com/c1.mp4", "reference_voice": "https://e.com/v.wav"}],
        "start_image_url": "https://example.com/start-frame.jpg",
        "aspect_ratio": "16:9",
        "resolution": "1080P",
        "duration": 5,
        "seed": 12345,
        "additional_settings": {"prompt_extend": True},
    }
    assert validate_create(example) == []


REF = [{"url": "https://e.com/a.png"}]


@pytest.mark.parametrize(
    ("body", "bad_name"),
    [
        ({"image_urls": REF}, "prompt"),
        ({"prompt": "x" * 5001, "image_urls": REF}, "prompt"),
        ({"prompt": "p", "negative_prompt": "n" * 501, "image_urls": REF}, "negative_prompt"),
        ({"prompt": "p"}, "image_urls"),
        ({"prompt": "p", "image_urls": REF * 3, "video_urls": REF * 3}, "image_urls"),
        ({"prompt": "p", "image_urls": [{"url": "file:///etc/passwd"}]}, "image_urls[0].url"),
        ({"prompt": "p", "image_urls": [{"url": "https://e/a", "x": 1}]}, "image_urls[0].x"),
        ({"prompt": "p", "image_urls": REF, "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"prompt": "p", "image_urls": REF, "resolution": "4K"}, "resolution"),
        ({"prompt": "p", "image_urls": REF, "duration": 1}, "duration"),
        ({"prompt": "p", "image_urls": REF, "duration": 5.0}, "duration"),
        ({"prompt": "p", "image_urls": REF, "duration": True}, "duration"),
        ({"prompt": "p", "image_urls": REF, "seed": 2_147_483_648}, "seed"),
        (
            {"prompt": "p", "image_urls": REF, "additional_settings": {"prompt_extend": "yes"}},
            "additional_settings.prompt_extend",
        ),
        ({"prompt": "p", "image_urls": REF, "mode": "fast"}, "mode"),
        ({"prompt": "p", "image_urls": REF, "webhook_url": "not a url"}, "webhook_url"),
    ],
)
def test_the_fake_refuses_what_the_contract_refuses(body: dict[str, Any], bad_name: str) -> None:
    assert bad_name in {problem["name"] for problem in validate_create(body)}


async def test_the_fake_runs_tasks_on_a_schedule_with_signed_webhooks(
    session: aiohttp.ClientSession,
) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with (
        TestServer(app, host="127.0.0.1") as receiver,
        FakeWanServer(api_key=API_KEY, task_seconds=0.05, webhook_secret="s3cret") as wan,
    ):
        body = REQUEST.replace(webhook_url=str(receiver.make_url("/hook"))).to_json()
        async with session.post(
            wan.api_url, json=body, headers={"x-freepik-api-key": API_KEY}
        ) as resp:
            task_id = (await resp.json())["data"]["task_id"]
        await eventually(lambda: len(received) == 2, "two status changes")

    statuses = [json.loads(raw)["status"] for _, raw in received]
    assert statuses == ["IN_PROGRESS", "COMPLETED"]
    for headers, raw in received:
        assert json.loads(raw)["task_id"] == task_id  # no "data" wrapper
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + raw
        digest = hmac.new(b"s3cret", signed, hashlib.sha256).digest()
        assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert json.loads(received[1][1])["generated"][0].startswith(wan.base_url + "/_fake/media/")


async def test_the_fake_can_repeat_and_reorder_webhooks(
    wan: FakeWanServer, client: WanClient
) -> None:
    wan.webhook_reverse = True
    wan.webhook_duplicates = 1
    sink = web.Application()
    seen: list[tuple[str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((request.headers["webhook-id"], (await request.json())["status"]))
        return web.Response()

    sink.router.add_post("/", hook)
    async with TestServer(sink, host="127.0.0.1") as receiver:
        task = await client.create(REQUEST.replace(webhook_url=str(receiver.make_url("/"))))
        wan.progress(task.task_id)
        wan.complete(task.task_id)
        await wan.drain_webhooks()

    assert [status for _, status in seen] == ["COMPLETED"] * 2 + ["IN_PROGRESS"] * 2
    assert seen[0][0] == seen[1][0] != seen[2][0]  # a repeat re-uses its webhook-id
    assert all(delivery.response_status == 200 for delivery in wan.webhooks)


async def test_the_fake_streams_an_mp4_behind_a_signed_url(
    wan: FakeWanServer, client: WanClient, session: aiohttp.ClientSession
) -> None:
    wan.media_bytes = 3 * 1024 * 1024 + 5
    task_id = (await client.create(REQUEST)).task_id
    wan.complete(task_id)
    [url] = (await client.get(task_id)).generated

    async with session.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type == "video/mp4"
        assert resp.content_length == wan.media_bytes
        data = await resp.read()
    assert len(data) == wan.media_bytes
    assert data[4:12] == b"ftypisom"
    assert data[36:40] == b"mdat"

    async with session.get(url.replace("~hmac=", "~hmac=0")) as resp:
        assert resp.status == 403
    async with session.get(wan.media_url(task_id, ttl=-10)) as resp:
        assert resp.status == 403
    assert len(wan.media_requests) == 3
    assert wan.requests_to("GET", f"{API_PATH}/{task_id}")  # downloads are kept apart


async def test_the_fake_runs_as_a_process_with_http_controls(
    session: aiohttp.ClientSession,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.wan_server",
        "--port",
        "0",
        "--api-key",
        API_KEY,
        "--manual",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        base = (await asyncio.wait_for(process.stdout.readline(), timeout=15)).decode().strip()
        assert base.startswith("http://127.0.0.1:")
        control: Callable[..., Awaitable[Any]] = _controller(session, base)

        await control("POST", "/_fake/faults", {"kind": "status", "status": 503, "count": 1})
        wan_client = WanClient(
            session,
            base_url=base,
            api_key=API_KEY,
            limiter=RateLimiter(100.0, 10),
            retry=RetrySettings(base_delay=0.0, request_timeout=5.0),
        )
        task = await wan_client.create(REQUEST)
        await control("POST", f"/_fake/tasks/{task.task_id}/status", {"status": "COMPLETED"})
        done = await wan_client.get(task.task_id)
        recorded = (await control("GET", "/_fake/requests"))["requests"]
        bad = await control("POST", "/_fake/faults", {"kind": "nonsense"}, expect=400)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=15)

    assert done.status is TaskStatus.COMPLETED
    assert [r["method"] for r in recorded] == ["POST", "POST", "GET"]
    assert all(r["headers"]["x-freepik-api-key"] == "<redacted>" for r in recorded)
    assert "nonsense" in bad["message"]
    assert process.returncode == 0


def _controller(session: aiohttp.ClientSession, base: str) -> Callable[..., Awaitable[Any]]:
    async def control(method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with session.request(method, base + path, json=body) as resp:
            assert resp.status == expect
            return await resp.json()

    return control
