"""A fake WAN 2.7 Reference-to-Video API, faithful to ``shared/API_NOTES.md``.

In-process (tests)::

    async with FakeWanServer(api_key="k", task_seconds=None) as wan:
        client = WanClient(session, base_url=wan.base_url, api_key="k", ...)
        wan.complete(task_id)           # manual control (task_seconds=None: nothing moves alone)
        wan.fail_next(503, count=2)     # fault injection
        assert len(wan.creates) == 1    # every API request is recorded

As a process (end-to-end tests of the real bot)::

    python -m tests.fakes.wan_server --port 0 --api-key k [--webhook-secret S] [--task-seconds X]

prints its base URL as the first stdout line, then serves until SIGINT/SIGTERM. The same controls
are HTTP endpoints under ``/_fake`` (no API key needed):

- ``POST /_fake/faults`` ``{"kind": "status"|"bad_json"|"delay"|"drop"|"hang", "count": 1,
  "method": "POST"|"GET"|null, "status": 503, "body": {...}|null, "text": str|null,
  "headers": {...}, "seconds": 0.0, "after_processing": false}``
- ``POST /_fake/config`` any of ``task_seconds`` (null = manual), ``fail_next_tasks``,
  ``media_bytes``, ``media_content_type``, ``webhook_duplicates``, ``webhook_reverse``,
  ``extra_fields``, ``list_page_size``
- the list operation pages: ``?page=N&page_size=M`` (M capped at ``list_page_size``, 100)
- ``POST /_fake/tasks/{id}/progress|complete|fail``; ``POST /_fake/tasks/{id}/status``
  ``{"status": "ANY"}``
- ``GET /_fake/tasks``, ``GET /_fake/requests`` (API requests + media downloads; ``?brief=1``:
  method, path and time of the API requests only),
  ``GET /_fake/webhooks``; ``POST /_fake/reset``
- ``GET /_fake/media/{id}.mp4?token=...``: the result video (streamed MP4-looking bytes)

Faults apply to API requests only, in the order they were added; each matches one request
(``count`` times). ``status`` answers at once (nothing is created unless ``after_processing``),
``bad_json`` / ``drop`` / ``hang`` handle the request first - so a create *does* make a task -
then answer garbage, close the connection, or answer only after ``seconds``. ``delay`` waits, then
handles the request normally.

The limits below are written out again on purpose, not imported from ``core.request``: a fake that
shares the client's constants would agree with the client's mistakes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import signal
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

API_PATH: Final = "/v1/ai/reference-to-video/wan-2-7"
KEY_HEADERS: Final = ("x-freepik-api-key", "x-magnific-api-key")
DEFAULT_API_KEY: Final = "test-key"

# The documented create contract (API reference + product page).
_TOP_LEVEL: Final = frozenset(
    {
        "prompt",
        "webhook_url",
        "negative_prompt",
        "image_urls",
        "video_urls",
        "start_image_url",
        "aspect_ratio",
        "resolution",
        "duration",
        "seed",
        "additional_settings",
    }
)
_ASPECT_RATIOS: Final = frozenset({"16:9", "9:16", "1:1", "4:3", "3:4"})
_RESOLUTIONS: Final = frozenset({"720P", "1080P"})
_MAX_REFS: Final = 5
_SEED_MAX: Final = 2_147_483_647

FaultKind = Literal["status", "bad_json", "delay", "drop", "hang"]
_FAULT_KINDS: Final = ("status", "bad_json", "delay", "drop", "hang")
_CHUNK: Final = 64 * 1024
_BROKEN_JSON: Final = '{"data": {"task_id": "'  # cut off mid-string, as a dying proxy would


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as received. The API key's value is replaced by ``<redacted>``."""

    method: str
    path: str  # decoded
    raw_path: str  # as sent, quoting visible
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any  # the parsed body, or None
    key_ok: bool
    at: float

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["body"] = self.body.decode("utf-8", "replace")
        return data


@dataclass
class FakeTask:
    task_id: str
    body: dict[str, Any]
    outcome: str  # the final status the schedule will reach
    status: str = "CREATED"
    history: list[str] = field(default_factory=lambda: ["CREATED"])
    held_webhooks: list[bytes] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None  # when it reached COMPLETED/FAILED (benchmarks measure lag)

    @property
    def webhook_url(self) -> str | None:
        url = self.body.get("webhook_url")
        return url if isinstance(url, str) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": self.status,
            "history": list(self.history),
            "body": self.body,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


@dataclass
class Fault:
    kind: FaultKind
    count: int = 1
    method: str | None = None  # only requests with this method; None = any API request
    status: int = 503
    body: Any = None  # JSON body for "status" (default: {"message": <reason>})
    text: str | None = None  # a raw body instead of JSON
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after_processing: bool = False  # "status" only: handle the request first (creates the task)

    def __post_init__(self) -> None:
        if self.kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.method is not None:
            self.method = self.method.upper()


@dataclass(frozen=True)
class WebhookDelivery:
    url: str
    headers: dict[str, str]
    body: bytes
    response_status: int | None
    error: str | None

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["body"] = self.body.decode()
        return data


def sign_webhook(
    secret: str, webhook_id: str, timestamp: str, body: bytes, *, base64_key: bool = False
) -> str:
    """A ``webhook-signature`` entry: ``v1,`` + base64(HMAC-SHA256(key, "{id}.{ts}.{body}")).

    The key is the secret's UTF-8 bytes (the docs' Python sample), or with ``base64_key`` the
    base64 decoding of the secret after a ``whsec_`` prefix (the PHP sample).
    """
    key = base64.b64decode(secret.removeprefix("whsec_")) if base64_key else secret.encode()
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def validate_create(body: Any) -> list[dict[str, str]]:
    """Every problem with a create body as ``invalid_params`` entries; empty when valid."""
    if not isinstance(body, dict):
        return [{"name": "body", "reason": "must be a JSON object"}]
    problems: list[dict[str, str]] = []

    def bad(name: str, reason: str) -> None:
        problems.append({"name": name, "reason": reason})

    for key in body:
        if key not in _TOP_LEVEL:
            bad(key, "unknown field")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        bad("prompt", "is required")
    elif len(prompt) > 5000:
        bad("prompt", "must be at most 5000 characters")
    if "negative_prompt" in body:
        negative = body["negative_prompt"]
        if not isinstance(negative, str) or len(negative) > 500:
            bad("negative_prompt", "must be a string of at most 500 characters")
    references = 0
    for name in ("image_urls", "video_urls"):
        if name not in body:
            continue
        items = body[name]
        if not isinstance(items, list):
            bad(name, "must be an array")
            continue
        references += len(items)
        for index, item in enumerate(items):
            where = f"{name}[{index}]"
            if not isinstance(item, dict):
                bad(where, "must be an object with url and optional reference_voice")
                continue
            for key in set(item) - {"url", "reference_voice"}:
                bad(f"{where}.{key}", "unknown field")
            if not _is_http_url(item.get("url")):
                bad(f"{where}.url", "must be an http(s) URL")
            if "reference_voice" in item and not _is_http_url(item["reference_voice"]):
                bad(f"{where}.reference_voice", "must be an http(s) URL")
    if references == 0:
        bad("image_urls", "at least one image or video reference is required")
    elif references > _MAX_REFS:
        bad("image_urls", f"at most {_MAX_REFS} references (images and videos combined)")
    for name in ("start_image_url", "webhook_url"):
        if name in body and not _is_http_url(body[name]):
            bad(name, "must be an http(s) URL")
    if "aspect_ratio" in body and body["aspect_ratio"] not in _ASPECT_RATIOS:
        bad("aspect_ratio", "must be one of " + ", ".join(sorted(_ASPECT_RATIOS)))
    if "resolution" in body and body["resolution"] not in _RESOLUTIONS:
        bad("resolution", "must be 720P or 1080P")
    if "duration" in body and not _is_int_in(body["duration"], 2, 10):
        bad("duration", "must be an integer from 2 to 10")
    if "seed" in body and not _is_int_in(body["seed"], 0, _SEED_MAX):
        bad("seed", f"must be an integer from 0 to {_SEED_MAX}")
    if "additional_settings" in body:
        extra = body["additional_settings"]
        if not isinstance(extra, dict):
            bad("additional_settings", "must be an object")
        else:
            for key in set(extra) - {"prompt_extend"}:
                bad(f"additional_settings.{key}", "unknown field")
            if "prompt_extend" in extra and not isinstance(extra["prompt_extend"], bool):
                bad("additional_settings.prompt_extend", "must be a boolean")
    return problems


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_int_in(value: Any, low: int, high: int) -> bool:
    # bool is an int in Python but not in JSON Schema
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def fake_mp4_chunks(size: int) -> Iterator[bytes]:
    """``size`` bytes that start like an MP4 (``ftyp`` + ``mdat`` boxes), in 64 KiB chunks."""
    ftyp = struct.pack(">I", 32) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"
    mdat = struct.pack(">I", max(0, min(size - len(ftyp), 0xFFFFFFFF))) + b"mdat"
    head = (ftyp + mdat)[:size]
    yield head
    filler = bytes(range(256)) * (_CHUNK // 256)
    left = size - len(head)
    while left > 0:
        piece = filler[: min(left, _CHUNK)]
        yield piece
        left -= len(piece)


class FakeWanServer:
    """The fake API. ``task_seconds`` is how long a task takes to finish (None: manual only)."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        key_headers: tuple[str, ...] = KEY_HEADERS,
        host: str = "127.0.0.1",
        port: int = 0,
        task_seconds: float | None = 0.2,
        webhook_secret: str | None = None,
        webhook_base64_key: bool = False,
        media_bytes: int = 64 * 1024,
        media_ttl_seconds: float = 3600.0,
        extra_fields: bool = True,
        task_spread: float = 0.0,
        scale_by_duration: bool = False,
    ) -> None:
        self.api_key = api_key
        self.key_headers = tuple(h.lower() for h in key_headers)
        self.host = host
        self.port = port
        self.task_seconds = task_seconds
        # Run time of a task: task_seconds × uniform(1 ± task_spread) [× duration / 5].
        self.task_spread = task_spread
        self.scale_by_duration = scale_by_duration
        self.webhook_secret = webhook_secret
        self.webhook_base64_key = webhook_base64_key
        self.media_bytes = media_bytes
        self.media_content_type = "video/mp4"
        self.media_ttl_seconds = media_ttl_seconds
        self.extra_fields = extra_fields  # add fields the contract does not list (has_nsfw)
        self.webhook_duplicates = 0  # extra copies of every notification (same webhook-id)
        self.webhook_reverse = False  # hold a task's notifications, send them newest first
        self.fail_next_tasks = 0  # how many of the next created tasks end FAILED
        self.list_page_size = 100  # the most tasks one page of the list holds
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[RecordedRequest] = []  # API requests only
        self.media_requests: list[RecordedRequest] = []  # result downloads
        self.webhooks: list[WebhookDelivery] = []
        self.faults: list[Fault] = []
        self._media_key = secrets.token_bytes(32)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._outbox: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue()
        self._background: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the fake WAN server is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PATH

    async def start(self) -> None:
        app = web.Application(middlewares=[self._api_middleware])
        app.router.add_post(API_PATH, self._create)
        app.router.add_get(API_PATH, self._list)
        app.router.add_get(API_PATH + "/{task_id}", self._get_one)
        app.router.add_get("/_fake/media/{task_id}.mp4", self._media, allow_head=False)
        app.router.add_post("/_fake/faults", self._control_fault)
        app.router.add_post("/_fake/config", self._control_config)
        app.router.add_post("/_fake/reset", self._control_reset)
        app.router.add_post("/_fake/tasks/{task_id}/{action}", self._control_task)
        app.router.add_get("/_fake/tasks", self._control_list_tasks)
        app.router.add_get("/_fake/requests", self._control_requests)
        app.router.add_get("/_fake/webhooks", self._control_webhooks)
        # A short shutdown: "hang" handlers watch _closing, nothing else lingers.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._spawn(self._deliver_webhooks())
        log.info("fake WAN API listening on %s", self.base_url)

    async def close(self) -> None:
        self._closing.set()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeWanServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def reset(self) -> None:
        """Forget tasks, requests, deliveries and faults (the configuration stays)."""
        self.tasks.clear()
        self.requests.clear()
        self.media_requests.clear()
        self.webhooks.clear()
        self.faults.clear()
        self.fail_next_tasks = 0

    # ------------------------------------------------------------------ inspection

    @property
    def creates(self) -> list[RecordedRequest]:
        """Every create request received (whatever its answer)."""
        return [r for r in self.requests if r.method == "POST" and r.path == API_PATH]

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    async def drain_webhooks(self) -> None:
        """Wait until every notification queued so far has been delivered (or failed)."""
        await self._outbox.join()

    # ------------------------------------------------------------------ faults

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def fail_next(
        self,
        status: int = 503,
        count: int = 1,
        *,
        method: str | None = None,
        message: str | None = None,
        body: Any = None,
        text: str | None = None,
        headers: dict[str, str] | None = None,
        after_processing: bool = False,
    ) -> None:
        """Answer the next ``count`` API requests with ``status`` and ``{"message": ...}``."""
        if body is None and text is None:
            body = {"message": message or _REASONS.get(status, "Error")}
        self.add_fault(
            Fault(
                "status",
                count,
                method,
                status=status,
                body=body,
                text=text,
                headers=headers or {},
                after_processing=after_processing,
            )
        )

    def busy_next(self, count: int = 1, *, method: str | None = None) -> None:
        self.fail_next(503, count, method=method)

    def rate_limit_next(
        self, count: int = 1, *, retry_after: str | None = "1", method: str | None = None
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.fail_next(429, count, method=method, headers=headers)

    def delay_next(self, seconds: float, count: int = 1, *, method: str | None = None) -> None:
        self.add_fault(Fault("delay", count, method, seconds=seconds))

    def bad_json_next(self, count: int = 1, *, method: str | None = None) -> None:
        self.add_fault(Fault("bad_json", count, method))

    def drop_next(self, count: int = 1, *, method: str | None = "POST") -> None:
        """Handle the request (a create makes its task), then close the connection unanswered."""
        self.add_fault(Fault("drop", count, method))

    def hang_next(
        self, seconds: float = 30.0, count: int = 1, *, method: str | None = "POST"
    ) -> None:
        """Handle the request (a create makes its task), then answer only after ``seconds``."""
        self.add_fault(Fault("hang", count, method, seconds=seconds))

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method in (None, method):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ task control

    def progress(self, task_id: str) -> None:
        self._set_status(self.tasks[task_id], "IN_PROGRESS")

    def complete(self, task_id: str) -> None:
        self._set_status(self.tasks[task_id], "COMPLETED")

    def fail(self, task_id: str) -> None:
        self._set_status(self.tasks[task_id], "FAILED")

    def set_status(self, task_id: str, status: str) -> None:
        """Any raw status, including ones the contract does not list."""
        self._set_status(self.tasks[task_id], status)

    def media_url(self, task_id: str, *, ttl: float | None = None) -> str:
        expires = int(time.time() + (self.media_ttl_seconds if ttl is None else ttl))
        return f"{self.base_url}/_fake/media/{task_id}.mp4?token=exp={expires}~hmac=" + (
            self._media_mac(task_id, expires)
        )

    def generated(self, task: FakeTask) -> list[str]:
        """A completed task's results: a freshly signed link on every answer, like a CDN."""
        return [self.media_url(task.task_id)] if task.status == "COMPLETED" else []

    def _media_mac(self, task_id: str, expires: int) -> str:
        message = f"{task_id}:{expires}".encode()
        return hmac.new(self._media_key, message, hashlib.sha256).hexdigest()

    def _set_status(self, task: FakeTask, status: str) -> None:
        if status == task.status:
            return
        task.status = status
        task.history.append(status)
        if status in ("COMPLETED", "FAILED"):
            task.finished_at = time.time()
        log.info("fake task %s -> %s", task.task_id, status)
        self._notify(task)

    async def _run_schedule(self, task: FakeTask, seconds: float) -> None:
        # Halfway it starts, at the end it finishes; manual moves in between take precedence.
        await asyncio.sleep(seconds / 2)
        if task.status == "CREATED":
            self._set_status(task, "IN_PROGRESS")
        await asyncio.sleep(seconds / 2)
        if task.status not in ("COMPLETED", "FAILED"):
            self._set_status(task, task.outcome)

    # ------------------------------------------------------------------ webhooks

    def _notify(self, task: FakeTask) -> None:
        url = task.webhook_url
        if url is None:
            return
        payload = {
            "task_id": task.task_id,
            "status": task.status,
            "generated": self.generated(task),
        }
        body = json.dumps(payload).encode()
        if self.webhook_reverse:
            task.held_webhooks.append(body)
            if task.status not in ("COMPLETED", "FAILED"):
                return
            bodies = list(reversed(task.held_webhooks))
            task.held_webhooks.clear()
        else:
            bodies = [body]
        for one in bodies:
            webhook_id = f"msg_{uuid.uuid4().hex}"
            for _ in range(1 + self.webhook_duplicates):
                self._outbox.put_nowait((url, one, webhook_id))

    async def _deliver_webhooks(self) -> None:
        # One worker, so notifications go out in the order they were queued.
        while True:
            url, body, webhook_id = await self._outbox.get()
            try:
                await self._deliver(url, body, webhook_id)
            finally:
                self._outbox.task_done()

    async def _deliver(self, url: str, body: bytes, webhook_id: str) -> None:
        assert self._http is not None
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": timestamp,
        }
        if self.webhook_secret is not None:
            headers["webhook-signature"] = sign_webhook(
                self.webhook_secret, webhook_id, timestamp, body, base64_key=self.webhook_base64_key
            )
        status: int | None = None
        error: str | None = None
        try:
            async with self._http.post(url, data=body, headers=headers) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = repr(exc)
            log.info("fake webhook to %s failed: %s", url, error)
        self.webhooks.append(WebhookDelivery(url, headers, body, status, error))

    # ------------------------------------------------------------------ the API

    @web.middleware
    async def _api_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PATH):
            return await handler(request)
        body = await request.read()
        key_ok = self._key_ok(request)
        self.requests.append(self._record(request, body, key_ok))
        fault = self._take_fault(request.method)
        if fault is not None and fault.kind == "delay":
            await self._wait(fault.seconds)
        if fault is not None and fault.kind == "status" and not fault.after_processing:
            return _fault_response(fault)
        response = await self._authorised(request, handler, key_ok)
        if fault is None or fault.kind == "delay":
            return response
        if fault.kind == "status":
            return _fault_response(fault)
        if fault.kind == "bad_json":
            return web.Response(status=200, text=_BROKEN_JSON, content_type="application/json")
        if fault.kind == "drop" and request.transport is not None:
            request.transport.close()  # the client sees the connection die, no answer
        elif fault.kind == "hang":
            await self._wait(fault.seconds)
        return response

    async def _authorised(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        key_ok: bool,
    ) -> web.StreamResponse:
        if not key_ok:
            given = any(request.headers.get(h) for h in self.key_headers)
            return _json({"message": "Invalid API key" if given else "Missing API key"}, 401)
        return await handler(request)

    def _key_ok(self, request: web.Request) -> bool:
        given = [request.headers.get(h) for h in self.key_headers]
        return any(
            value is not None and hmac.compare_digest(value.encode(), self.api_key.encode())
            for value in given
        )

    def _record(self, request: web.Request, body: bytes, key_ok: bool) -> RecordedRequest:
        headers = {
            name: ("<redacted>" if name.lower() in self.key_headers else value)
            for name, value in request.headers.items()
        }
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        return RecordedRequest(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            query=dict(request.query),
            headers=headers,
            body=body,
            json=parsed,
            key_ok=key_ok,
            at=time.time(),
        )

    async def _wait(self, seconds: float) -> None:
        # Wait, but let close() end the wait at once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return _json({"message": "Content-Type must be application/json"}, 400)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _json({"message": "The request body is not valid JSON"}, 400)
        problems = validate_create(body)
        if problems:
            return _json({"message": "Invalid parameters", "invalid_params": problems}, 400)
        outcome = "COMPLETED"
        if self.fail_next_tasks > 0:
            self.fail_next_tasks -= 1
            outcome = "FAILED"
        task = FakeTask(task_id=str(uuid.uuid4()), body=body, outcome=outcome)
        self.tasks[task.task_id] = task
        log.info("fake task %s created", task.task_id)
        if self.task_seconds is not None:
            self._spawn(self._run_schedule(task, self._run_time(body)))
        return _json({"data": self._task_json(task)})

    def _run_time(self, body: dict[str, Any]) -> float:
        assert self.task_seconds is not None
        seconds = self.task_seconds
        if self.scale_by_duration:
            seconds *= int(body.get("duration", 5)) / 5
        if self.task_spread:
            seconds *= random.uniform(1 - self.task_spread, 1 + self.task_spread)
        return seconds

    async def _list(self, request: web.Request) -> web.StreamResponse:
        # Pages as the sibling endpoint does: ``page`` from 1, ``page_size`` up to our maximum.
        try:
            page = int(request.query.get("page", "1"))
            size = int(request.query.get("page_size", str(self.list_page_size)))
        except ValueError:
            return _json({"message": "page and page_size must be integers"}, 400)
        if page < 1 or size < 1:
            return _json({"message": "page and page_size must be at least 1"}, 400)
        size = min(size, self.list_page_size)
        tasks = list(self.tasks.values())[(page - 1) * size : page * size]
        return _json({"data": [{"task_id": t.task_id, "status": t.status} for t in tasks]})

    async def _get_one(self, request: web.Request) -> web.StreamResponse:
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return _json({"message": "Not found"}, 404)
        return _json({"data": self._task_json(task)})

    def _task_json(self, task: FakeTask) -> dict[str, Any]:
        data: dict[str, Any] = {
            "generated": self.generated(task),
            "task_id": task.task_id,
            "status": task.status,
        }
        if self.extra_fields:
            data["has_nsfw"] = False
        return data

    async def _media(self, request: web.Request) -> web.StreamResponse:
        self.media_requests.append(self._record(request, b"", key_ok=False))
        task_id = request.match_info["task_id"]
        if task_id not in self.tasks or self.tasks[task_id].status != "COMPLETED":
            return _json({"message": "Not found"}, 404)
        if not self._media_token_ok(task_id, request.query.get("token", "")):
            return _json({"message": "Forbidden"}, 403)
        response = web.StreamResponse(
            headers={"Content-Type": self.media_content_type},
        )
        response.content_length = self.media_bytes
        await response.prepare(request)
        # Chunk by chunk: a 100 MB result never sits in memory.
        for chunk in fake_mp4_chunks(self.media_bytes):
            await response.write(chunk)
        await response.write_eof()
        return response

    def _media_token_ok(self, task_id: str, token: str) -> bool:
        fields = dict(part.partition("=")[::2] for part in token.split("~"))
        try:
            expires = int(fields.get("exp", ""))
        except ValueError:
            return False
        mac = self._media_mac(task_id, expires)
        return expires >= time.time() and hmac.compare_digest(mac, fields.get("hmac", ""))

    # ------------------------------------------------------------------ control endpoints

    async def _control_fault(self, request: web.Request) -> web.StreamResponse:
        try:
            self.add_fault(Fault(**await request.json()))
        except (TypeError, ValueError) as exc:
            return _json({"message": str(exc)}, 400)
        return _json({"ok": True})

    async def _control_config(self, request: web.Request) -> web.StreamResponse:
        settable = {
            "task_seconds",
            "task_spread",
            "scale_by_duration",
            "fail_next_tasks",
            "media_bytes",
            "media_content_type",
            "webhook_duplicates",
            "webhook_reverse",
            "extra_fields",
            "list_page_size",
        }
        changes = await request.json()
        if not isinstance(changes, dict) or set(changes) - settable:
            return _json({"message": f"settable: {sorted(settable)}"}, 400)
        for name, value in changes.items():
            setattr(self, name, value)
        return _json({"ok": True})

    async def _control_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return _json({"ok": True})

    async def _control_task(self, request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["task_id"]
        action = request.match_info["action"]
        if task_id not in self.tasks:
            return _json({"message": "Not found"}, 404)
        if action == "status":
            status = (await request.json()).get("status")
            if not isinstance(status, str):
                return _json({"message": "status must be a string"}, 400)
            self.set_status(task_id, status)
        elif action in ("progress", "complete", "fail"):
            getattr(self, action)(task_id)
        else:
            return _json({"message": "actions: progress, complete, fail, status"}, 404)
        task = self.tasks[task_id]
        return _json({"data": task.to_json() | {"generated": self.generated(task)}})

    async def _control_list_tasks(self, request: web.Request) -> web.StreamResponse:
        tasks = [t.to_json() | {"generated": self.generated(t)} for t in self.tasks.values()]
        return _json({"tasks": tasks})

    async def _control_requests(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("brief"):  # method, path and time only (benchmarks count them)
            brief = [{"method": r.method, "path": r.path, "at": r.at} for r in self.requests]
            return _json({"requests": brief})
        return _json(
            {
                "requests": [r.to_json() for r in self.requests],
                "media_requests": [r.to_json() for r in self.media_requests],
            }
        )

    async def _control_webhooks(self, request: web.Request) -> web.StreamResponse:
        return _json({"webhooks": [w.to_json() for w in self.webhooks]})

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


_REASONS: Final = {
    400: "Bad request",
    401: "Invalid API key",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _fault_response(fault: Fault) -> web.Response:
    if fault.text is not None:
        return web.Response(status=fault.status, text=fault.text, headers=fault.headers)
    return web.json_response(fault.body, status=fault.status, headers=fault.headers)


# ---------------------------------------------------------------------- subprocess mode


async def _serve(args: argparse.Namespace) -> None:
    server = FakeWanServer(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        task_seconds=None if args.manual else args.task_seconds,
        webhook_secret=args.webhook_secret,
        media_bytes=args.media_bytes,
        task_spread=args.task_spread,
        scale_by_duration=args.scale_by_duration,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print(server.base_url, flush=True)  # the parent reads this line to find us
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake WAN 2.7 Reference-to-Video API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--webhook-secret", default=None)
    parser.add_argument("--task-seconds", type=float, default=2.0)
    parser.add_argument("--manual", action="store_true", help="tasks move only when told to")
    parser.add_argument("--task-spread", type=float, default=0.0, help="run time ± this share")
    parser.add_argument(
        "--scale-by-duration", action="store_true", help="run time × (video duration / 5)"
    )
    parser.add_argument("--media-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
