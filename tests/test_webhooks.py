"""Webhook signatures, the replay guard, the receiver's answers, /healthz and the server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TypeAlias

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.http_server import HttpServer, make_http_app, redact_path
from core.wan import Task, TaskStatus
from core.webhook_signatures import ReplayGuard, verify_signature
from core.webhook_tokens import job_webhook_token, token_digest, webhook_token_key, webhook_url_for
from core.webhooks import MAX_BODY_BYTES, WebhookReceiver

Client: TypeAlias = "TestClient[web.Request, web.Application]"
NOW = 1_700_000_000.0
RAW_SECRET = "a-plain-dashboard-secret"
KEY_BYTES = b"\x01\x02binary key bytes\xff\x00"
WHSEC_SECRET = "whsec_" + base64.b64encode(KEY_BYTES).decode()
TOKEN_KEY = webhook_token_key("a-key-for-these-tests")
TOKEN = job_webhook_token(TOKEN_KEY, "0123456789ab")
BODY = json.dumps(
    {"task_id": "t-1", "status": "COMPLETED", "generated": ["https://cdn.example/v.mp4"]}
).encode()


def sign(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    key: bytes = RAW_SECRET.encode(),
    body: bytes = BODY,
    webhook_id: str = "msg_1",
    timestamp: float = NOW,
) -> dict[str, str]:
    ts = str(int(timestamp))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": ts,
        "webhook-signature": sign(key, webhook_id, ts, body),
    }


# --- verify_signature -----------------------------------------------------------------------------


def test_raw_secret_signature_is_accepted() -> None:
    assert verify_signature(RAW_SECRET, signed_headers(), BODY, NOW)


def test_whsec_secret_is_base64_decoded() -> None:
    headers = signed_headers(key=KEY_BYTES)
    assert verify_signature(WHSEC_SECRET, headers, BODY, NOW)


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in signed_headers().items()}
    assert verify_signature(RAW_SECRET, headers, BODY, NOW)


def test_one_valid_entry_among_several_is_enough() -> None:
    headers = signed_headers()
    forged = sign(b"other", "msg_1", str(int(NOW)), BODY)
    headers["webhook-signature"] = f"v2,abc {forged} v1,!!notbase64 {headers['webhook-signature']}"
    assert verify_signature(RAW_SECRET, headers, BODY, NOW)


@pytest.mark.parametrize(
    ("secret", "headers", "body"),
    [
        pytest.param("wrong-secret", signed_headers(), BODY, id="wrong secret"),
        pytest.param(RAW_SECRET, signed_headers(), BODY + b" ", id="tampered body"),
        pytest.param(
            RAW_SECRET, {**signed_headers(), "webhook-id": "msg_2"}, BODY, id="tampered id"
        ),
        pytest.param(
            RAW_SECRET,
            {**signed_headers(), "webhook-timestamp": str(int(NOW) + 1)},
            BODY,
            id="tampered timestamp",
        ),
        pytest.param(
            RAW_SECRET,
            {
                **signed_headers(),
                "webhook-signature": signed_headers()["webhook-signature"].replace("v1,", "v2,"),
            },
            BODY,
            id="unknown version",
        ),
        pytest.param(RAW_SECRET, {}, BODY, id="no headers"),
        pytest.param(
            RAW_SECRET,
            {k: v for k, v in signed_headers().items() if k != "webhook-signature"},
            BODY,
            id="no signature",
        ),
        pytest.param(
            RAW_SECRET, {**signed_headers(), "webhook-timestamp": "12e3"}, BODY, id="bad ts"
        ),
        pytest.param(
            RAW_SECRET, {**signed_headers(), "webhook-signature": "v1,"}, BODY, id="empty sig"
        ),
    ],
)
def test_forged_or_incomplete_deliveries_are_refused(
    secret: str, headers: Mapping[str, str], body: bytes
) -> None:
    assert not verify_signature(secret, headers, body, NOW)


def test_raw_key_does_not_verify_when_signed_with_decoded_whsec_key_of_other_secret() -> None:
    # A whsec_ secret whose decoding differs must not accept a signature made with KEY_BYTES.
    other = "whsec_" + base64.b64encode(b"something else").decode()
    assert not verify_signature(other, signed_headers(key=KEY_BYTES), BODY, NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_stale_or_future_timestamps_are_refused(offset: int) -> None:
    headers = signed_headers(timestamp=NOW + offset)
    assert not verify_signature(RAW_SECRET, headers, BODY, NOW)


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamps_at_the_tolerance_edge_are_accepted(offset: int) -> None:
    headers = signed_headers(timestamp=NOW + offset)
    assert verify_signature(RAW_SECRET, headers, BODY, NOW)


# --- ReplayGuard ----------------------------------------------------------------------------------


def test_replay_guard_refuses_a_seen_id_until_it_expires() -> None:
    guard = ReplayGuard(ttl_seconds=600)
    assert guard.claim("a", NOW)
    assert not guard.claim("a", NOW + 599)
    assert guard.claim("a", NOW + 601)


def test_replay_guard_is_bounded() -> None:
    guard = ReplayGuard(ttl_seconds=600, max_entries=3)
    for i in range(10):
        assert guard.claim(f"id{i}", NOW)
    assert len(guard) == 3
    assert not guard.claim("id9", NOW)


def test_replay_guard_release_forgets_an_id() -> None:
    guard = ReplayGuard()
    guard.claim("a", NOW)
    guard.release("a")
    assert guard.claim("a", NOW)


# --- tokens ---------------------------------------------------------------------------------------


def test_tokens_differ_per_job_and_are_url_safe() -> None:
    tokens = {job_webhook_token(TOKEN_KEY, f"{n:012x}") for n in range(50)}
    assert len(tokens) == 50
    assert all(len(t) == 43 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_webhook_url_for_joins_cleanly() -> None:
    assert webhook_url_for("https://bot.example/", "abc") == "https://bot.example/webhooks/wan/abc"
    assert webhook_url_for("https://bot.example/x", "abc") == (
        "https://bot.example/x/webhooks/wan/abc"
    )


def test_token_digest_is_stable_and_hides_the_token() -> None:
    assert token_digest(TOKEN) == token_digest(TOKEN)
    assert TOKEN not in token_digest(TOKEN)


def test_redact_path_keeps_only_a_token_prefix() -> None:
    redacted = redact_path(f"/webhooks/wan/{TOKEN}")
    assert TOKEN not in redacted
    assert redacted.startswith("/webhooks/wan/" + TOKEN[:6])
    assert redact_path("/healthz") == "/healthz"


# --- the receiver over HTTP -----------------------------------------------------------------------


class Recorder:
    """The injected notification handler: records calls; knows only TOKEN."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Task, bool]] = []
        self.fail = False

    async def __call__(self, token: str, task: Task, verified: bool) -> bool:
        if self.fail:
            raise RuntimeError("boom")
        self.calls.append((token, task, verified))
        return token == TOKEN


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def make_client(receiver: WebhookReceiver | None, health=None) -> Client:
    app = make_http_app(receiver, health or (lambda: {"ok": True, "jobs_in_flight": 0}))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[Client]:
    receiver = WebhookReceiver(recorder, secret=RAW_SECRET, clock=lambda: NOW)
    client = await make_client(receiver)
    yield client
    await client.close()


@pytest.fixture
async def open_client(recorder: Recorder) -> AsyncIterator[Client]:
    receiver = WebhookReceiver(recorder, secret=None, clock=lambda: NOW)
    client = await make_client(receiver)
    yield client
    await client.close()


def url(token: str = TOKEN) -> str:
    return f"/webhooks/wan/{token}"


async def test_valid_delivery_wakes_the_job(client: Client, recorder: Recorder) -> None:
    resp = await client.post(url(), data=BODY, headers=signed_headers())
    assert resp.status == 200
    [(token, task, verified)] = recorder.calls
    assert token == TOKEN
    assert verified is True
    assert task.task_id == "t-1"
    assert task.status is TaskStatus.COMPLETED
    assert task.generated == ("https://cdn.example/v.mp4",)


async def test_whsec_secret_works_over_http(recorder: Recorder) -> None:
    receiver = WebhookReceiver(recorder, secret=WHSEC_SECRET, clock=lambda: NOW)
    client = await make_client(receiver)
    try:
        resp = await client.post(url(), data=BODY, headers=signed_headers(key=KEY_BYTES))
        assert resp.status == 200
        assert [verified for _, _, verified in recorder.calls] == [True]
    finally:
        await client.close()


async def test_replayed_id_is_acknowledged_but_not_handled_twice(
    client: Client, recorder: Recorder
) -> None:
    headers = signed_headers()
    first = await client.post(url(), data=BODY, headers=headers)
    second = await client.post(url(), data=BODY, headers=headers)
    assert (first.status, second.status) == (200, 200)
    assert (await second.json()).get("duplicate") is True
    assert len(recorder.calls) == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(signed_headers(key=b"wrong"), id="wrong secret"),
        pytest.param(signed_headers(body=b"{}"), id="signed another body"),
        pytest.param({}, id="unsigned"),
        pytest.param(signed_headers(timestamp=NOW - 600), id="stale"),
        pytest.param(signed_headers(timestamp=NOW + 600), id="future"),
    ],
)
async def test_bad_signatures_get_401(
    client: Client, recorder: Recorder, headers: dict[str, str]
) -> None:
    resp = await client.post(url(), data=BODY, headers=headers)
    assert resp.status == 401
    assert recorder.calls == []


async def test_refusals_never_log_the_secret_or_token(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.post(url(), data=BODY, headers=signed_headers(key=b"wrong"))
    await client.post(url(), data=b"x" * (MAX_BODY_BYTES + 1))
    await client.post(url(), data=b"{", headers=signed_headers(body=b"{"))
    # Only our own records: TestServer keeps aiohttp's default access log, HttpServer does not.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name == "core.webhooks")
    assert "signature refused" in ours
    assert TOKEN not in ours
    assert RAW_SECRET not in ours


async def test_no_secret_accepts_unverified(open_client: Client, recorder: Recorder) -> None:
    resp = await open_client.post(url(), data=BODY)
    assert resp.status == 200
    assert [(t, task.task_id, v) for t, task, v in recorder.calls] == [(TOKEN, "t-1", False)]


async def test_oversized_body_with_content_length_gets_413(
    client: Client, recorder: Recorder
) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    resp = await client.post(url(), data=body, headers=signed_headers(body=body))
    assert resp.status == 413
    assert recorder.calls == []


async def test_oversized_chunked_body_gets_413(open_client: Client, recorder: Recorder) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b" " * (MAX_BODY_BYTES // 2)

    resp = await open_client.post(url(), data=chunks())
    assert resp.status == 413
    assert recorder.calls == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="malformed"),
        pytest.param(b"\xff\xfe", id="not utf-8"),
        pytest.param(b"[" * 50_000, id="deeply nested"),
        pytest.param(b'["task_id"]', id="not an object"),
        pytest.param(b'{"status": "COMPLETED"}', id="no task_id"),
        pytest.param(b'{"task_id": "t", "generated": "x"}', id="generated not a list"),
    ],
)
async def test_bodies_that_are_not_tasks_get_400(
    client: Client, recorder: Recorder, body: bytes
) -> None:
    resp = await client.post(url(), data=body, headers=signed_headers(body=body))
    assert resp.status == 400
    assert recorder.calls == []


async def test_wrapped_task_is_accepted(client: Client, recorder: Recorder) -> None:
    body = json.dumps({"data": {"task_id": "t-2", "status": "IN_PROGRESS"}}).encode()
    resp = await client.post(url(), data=body, headers=signed_headers(body=body))
    assert resp.status == 200
    assert recorder.calls[0][1].status is TaskStatus.IN_PROGRESS


async def test_unknown_token_gets_404(client: Client, recorder: Recorder) -> None:
    other = job_webhook_token(TOKEN_KEY, "another-job")
    resp = await client.post(url(other), data=BODY, headers=signed_headers())
    assert resp.status == 404
    assert [token for token, _, _ in recorder.calls] == [other]


async def test_unknown_token_does_not_burn_the_webhook_id(
    client: Client, recorder: Recorder
) -> None:
    headers = signed_headers()
    other = url(job_webhook_token(TOKEN_KEY, "another-job"))
    assert (await client.post(other, data=BODY, headers=headers)).status == 404
    assert (await client.post(url(), data=BODY, headers=headers)).status == 200


async def test_malformed_token_gets_404_without_calling_the_handler(
    client: Client, recorder: Recorder
) -> None:
    resp = await client.post(url("short"), data=BODY, headers=signed_headers())
    assert resp.status == 404
    assert recorder.calls == []


async def test_handler_failure_gets_500_and_the_retry_is_handled(
    client: Client, recorder: Recorder
) -> None:
    headers = signed_headers()
    recorder.fail = True
    assert (await client.post(url(), data=BODY, headers=headers)).status == 500
    recorder.fail = False
    assert (await client.post(url(), data=BODY, headers=headers)).status == 200
    assert len(recorder.calls) == 1


async def test_no_receiver_means_no_webhook_route() -> None:
    client = await make_client(None)
    try:
        assert (await client.post(url(), data=BODY)).status in (404, 405)
    finally:
        await client.close()


# --- /healthz -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "status"),
    [
        ({"ok": True, "jobs_in_flight": 3}, 200),
        ({"ok": False, "jobs_in_flight": 0, "reason": "gateway down"}, 503),
        ({"jobs_in_flight": 1}, 503),
    ],
)
async def test_healthz_reports_the_health_callable(report: dict[str, object], status: int) -> None:
    client = await make_client(None, health=lambda: report)
    try:
        resp = await client.get("/healthz")
        assert resp.status == status
        assert await resp.json() == report
    finally:
        await client.close()


async def test_healthz_is_503_when_the_check_raises() -> None:
    def broken() -> Mapping[str, object]:
        raise RuntimeError("store closed")

    client = await make_client(None, health=broken)
    try:
        resp = await client.get("/healthz")
        assert resp.status == 503
        assert await resp.json() == {
            "ok": False,
            "problems": ["the health check failed: RuntimeError"],
        }
    finally:
        await client.close()


# --- HttpServer -----------------------------------------------------------------------------------


async def test_http_server_binds_a_free_port_and_stops(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = WebhookReceiver(recorder, secret=None)
    server = HttpServer(make_http_app(receiver, lambda: {"ok": True}), "127.0.0.1", 0)
    await server.start()
    try:
        assert server.port > 0
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{server.port}"
            async with session.get(base + "/healthz") as resp:
                assert resp.status == 200
            async with session.post(base + url(), data=BODY) as resp:
                assert resp.status == 200
        assert len(recorder.calls) == 1
    finally:
        await server.stop()
    # The access log shows the webhook path, but never the whole token.
    assert f"/webhooks/wan/{TOKEN[:6]}" in caplog.text
    assert TOKEN not in caplog.text
    with pytest.raises(RuntimeError):
        _ = server.port
