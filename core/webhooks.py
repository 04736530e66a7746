"""The HTTP side of the bot: the WAN webhook receiver, ``/healthz``, ``/metrics`` and their server.

A webhook only *wakes* a job; the tracker decides what to do. Each job gets its own unguessable
URL (``/webhooks/wan/{token}``), and when a secret is configured every delivery must carry a valid
signature (see API_NOTES "Webhooks"). An unverified body is only a hint to re-read the task.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import inspect
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from core.config import Settings
from core.jobs import Job
from core.wan import Task

log = logging.getLogger(__name__)

WEBHOOK_ROUTE = "/webhooks/wan/{token}"
HEALTH_ROUTE = "/healthz"
METRICS_ROUTE = "/metrics"
HEALTH_TIMEOUT_SECONDS = 5.0  # a check that takes longer is an answer in itself
MAX_BODY_BYTES = 64 * 1024  # a task notification is a few hundred bytes
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60
# job_webhook_token() gives 43 characters; anything unlike a token is refused before any work.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")

# on_notification(token, task, verified) -> False when the token belongs to no job.
NotificationHandler = Callable[[str, Task, bool], Awaitable[bool]]
HealthCheck = Callable[[], Mapping[str, object] | Awaitable[Mapping[str, object]]]


class MetricsSource(Protocol):
    """What ``/metrics`` serves: an exposition and its content type (core.metrics.Metrics)."""

    @property
    def content_type(self) -> str: ...

    async def render(self) -> bytes: ...


# --- tokens ---------------------------------------------------------------------------------------


# A job's token is derived, never stored: HMAC-SHA256 of the job id under a key taken from a
# secret the bot is given (WEBHOOK_SECRET when set, else the API key), so the database holds only
# its digest and a copy of the database alone cannot call a job's webhook. The label separates
# this use of the secret from its use for signatures.
_TOKEN_KEY_LABEL = b"wan-r2v-bot: per-job webhook tokens, v1"


def webhook_token_key(secret: str) -> bytes:
    """The key job tokens are derived with. Never stored, never logged."""
    return hmac.new(secret.encode(), _TOKEN_KEY_LABEL, hashlib.sha256).digest()


def job_webhook_token(key: bytes, job_id: str) -> str:
    """The token in ``job_id``'s webhook URL: 43 URL-safe characters."""
    mac = hmac.new(key, job_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def webhook_url_for(public_base: str, token: str) -> str:
    """The URL the API should call for the job owning ``token``."""
    return public_base.rstrip("/") + WEBHOOK_ROUTE.replace("{token}", token)


def token_digest(token: str) -> str:
    """A stable key to store and look tokens up by.

    Looking up a SHA-256 digest in a dict leaks nothing useful through timing (an attacker cannot
    steer the digest byte by byte), so the receiver needs no constant-time scan over all jobs.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    """The only part of a token that may appear in a log."""
    return token[:6] + "…"


class JobWebhooks:
    """Per-job webhook URLs for one configuration: the digest to store, the URL to submit."""

    def __init__(self, secret: str, public_url: str) -> None:
        self._key = webhook_token_key(secret)
        self._public_url = public_url

    def __repr__(self) -> str:
        return f"JobWebhooks({self._public_url!r})"  # never the key

    def digest(self, job_id: str) -> str:
        """What the store keeps for ``job_id`` (the receiver looks deliveries up by it)."""
        return token_digest(job_webhook_token(self._key, job_id))

    def url(self, job: Job) -> str | None:
        """The URL to submit ``job`` with; None when the job is to be tracked by polling.

        None when the job was accepted without webhooks, or its stored digest is not this key's:
        the key changed (WEBHOOK_SECRET set, rotated or unset, or the API key rotated) between
        acceptance and submission, or the job predates derived tokens. Its token cannot be
        rebuilt, and a URL the receiver would not know is worse than none. Jobs already
        submitted are unaffected by a key change: the API calls the URL it was given, and the
        receiver finds the job by that token's stored digest.
        """
        if job.webhook_token_hash is None:
            return None
        token = job_webhook_token(self._key, job.id)
        if not hmac.compare_digest(token_digest(token), job.webhook_token_hash):
            log.info("job %s: webhook key changed since it was accepted; polling it", job.id)
            return None
        return webhook_url_for(self._public_url, token)


def job_webhooks(settings: Settings) -> JobWebhooks | None:
    """The bot's per-job webhook URLs, or None when webhooks are off."""
    if settings.webhook_public_url is None:
        return None
    return JobWebhooks(settings.webhook_secret or settings.wan_api_key, settings.webhook_public_url)


def webhook_url_source(settings: Settings) -> Callable[[Job], str | None] | None:
    """What the tracker asks for each job's URL at submit time: ``Tracker(webhook_url=...)``."""
    webhooks = job_webhooks(settings)
    return None if webhooks is None else webhooks.url


# --- signatures -----------------------------------------------------------------------------------


def signing_keys(secret: str) -> tuple[bytes, ...]:
    """The HMAC keys to try: the secret's raw bytes, then its base64 decoding (``whsec_`` stripped).

    The API's Python/JS samples use the raw secret, its PHP sample decodes it first.
    """
    keys = [secret.encode()]
    encoded = secret.removeprefix("whsec_")
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if decoded and decoded not in keys:
        keys.append(decoded)
    return tuple(keys)


def signature_problem(
    keys: tuple[bytes, ...], headers: Mapping[str, str], body: bytes, now: float
) -> str | None:
    """Why a delivery's signature is refused, or None when it is valid. Never mentions the key."""
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signature = lowered.get("webhook-signature", "")
    if not (webhook_id and timestamp and signature):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        return "malformed webhook-timestamp"
    skew = now - int(timestamp)
    if abs(skew) > TIMESTAMP_TOLERANCE_SECONDS:
        # Reported so that a wrong server clock can be told apart from a forgery.
        return f"webhook-timestamp is {skew:+.0f}s off"
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    for entry in signature.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # compare_digest: the time taken says nothing about how much of a forgery was right.
        if any(hmac.compare_digest(candidate, digest) for digest in expected):
            return None
    return "no matching v1 signature"


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """True when ``body`` carries a valid, fresh signature made with ``secret``."""
    return signature_problem(signing_keys(secret), headers, body, now) is None


class ReplayGuard:
    """Remembers recently accepted ``webhook-id``s, bounded in size and time.

    In memory is enough: a delivery older than the timestamp tolerance is refused anyway, so an id
    only has to be remembered for about twice that window, and a restart only reopens that window
    for deliveries that were already verified. Only verified ids are recorded (so nobody can
    poison the guard), and an unverified body is only a hint: the tracker re-reads the task.
    """

    def __init__(
        self,
        ttl_seconds: float = 2 * TIMESTAMP_TOLERANCE_SECONDS,
        max_entries: int = 10_000,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, webhook_id: str, now: float) -> bool:
        """Record ``webhook_id``; False when it was already seen and has not expired."""
        self._prune(now)
        if webhook_id in self._expiry:
            return False
        if len(self._expiry) >= self._max_entries:
            # Only signed deliveries get here, so a full guard means a flood from the API itself.
            self._expiry.popitem(last=False)
        self._expiry[webhook_id] = now + self._ttl
        return True

    def release(self, webhook_id: str) -> None:
        """Forget an id whose delivery failed on our side, so the sender's retry is handled."""
        self._expiry.pop(webhook_id, None)

    def _prune(self, now: float) -> None:
        while self._expiry:
            oldest_id, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                break
            del self._expiry[oldest_id]


# --- the receiver ---------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _read_capped(request: web.Request, cap: int) -> bytes | None:
    """The request body, or None as soon as it exceeds ``cap`` (nothing more is read)."""
    declared = request.content_length
    if declared is not None and declared > cap:
        return None
    body = bytearray()
    while True:
        chunk = await request.content.read(cap + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > cap:
            return None


def _parse_task(body: bytes) -> Task:
    try:
        payload: Any = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested arrays
        raise ValueError("body is not JSON") from exc
    # Documented without the ``data`` wrapper; accept it wrapped too, as the GET answer is.
    if isinstance(payload, dict) and "task_id" not in payload and "data" in payload:
        payload = payload["data"]
    return Task.from_json(payload)


class WebhookReceiver:
    """Checks a webhook delivery and hands the task to ``on_notification``.

    Answers: 413 body too large, 401 bad/missing/stale signature (only when a secret is set),
    400 not a task, 404 unknown token, 500 handler error (the sender retries), 200 otherwise.
    A replayed ``webhook-id`` gets 200 without calling the handler: a retry of a delivery whose
    answer was lost reuses its id, and a 409 would only make the sender retry it again.
    """

    def __init__(
        self,
        on_notification: NotificationHandler,
        *,
        secret: str | None,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
        replay_guard: ReplayGuard | None = None,
    ) -> None:
        self._on_notification = on_notification
        self._keys = signing_keys(secret) if secret else None
        self._max_body_bytes = max_body_bytes
        self._clock = clock
        self._replays = replay_guard or ReplayGuard()

    @property
    def verifies(self) -> bool:
        return self._keys is not None

    async def handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not _TOKEN_RE.fullmatch(token):
            return _error(404, "unknown webhook")
        body = await _read_capped(request, self._max_body_bytes)
        if body is None:
            log.warning(
                "webhook %s: body over %d bytes refused", token_prefix(token), self._max_body_bytes
            )
            response = _error(413, "body too large")
            response.force_close()  # do not keep a connection that still has body in flight
            return response

        now = self._clock()
        webhook_id = request.headers.get("webhook-id", "")
        if self._keys is not None:
            problem = signature_problem(self._keys, request.headers, body, now)
            if problem is not None:
                log.warning("webhook %s: signature refused: %s", token_prefix(token), problem)
                return _error(401, "invalid signature")

        try:
            task = _parse_task(body)
        except ValueError as exc:
            log.warning("webhook %s: bad payload: %s", token_prefix(token), exc)
            return _error(400, "not a task")

        verified = self._keys is not None
        # Ids are authentic only when signed; unsigned bodies are hints, so repeats are harmless.
        if verified and not self._replays.claim(webhook_id, now):
            log.info("webhook %s: replayed id %s ignored", token_prefix(token), webhook_id)
            return web.json_response({"ok": True, "duplicate": True})

        try:
            known = await self._on_notification(token, task, verified)
        except Exception:
            log.exception(
                "webhook %s: handler failed for task %s", token_prefix(token), task.task_id
            )
            if verified:
                self._replays.release(webhook_id)
            return _error(500, "internal error")
        if not known:
            if verified:
                self._replays.release(webhook_id)
            log.info(
                "webhook %s: no job for this token (task %s)", token_prefix(token), task.task_id
            )
            return _error(404, "unknown webhook")
        log.debug(
            "webhook %s: task %s is %s (verified=%s)",
            token_prefix(token),
            task.task_id,
            task.raw_status,
            verified,
        )
        return web.json_response({"ok": True})


# --- the application and its server ---------------------------------------------------------------


def make_http_app(
    receiver: WebhookReceiver | None,
    health: HealthCheck,
    *,
    metrics: MetricsSource | None = None,
) -> web.Application:
    """``GET /healthz`` always; ``GET /metrics`` when ``metrics`` is given;
    ``POST /webhooks/wan/{token}`` when a receiver is given.

    ``/healthz`` answers 200 only when the report says ``"ok": true``, else 503 with the report
    (which says what is wrong); a check that raises or hangs is a 503 too.
    """

    async def healthz(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                found = health()
                report = dict(await found if inspect.isawaitable(found) else found)
        except Exception as exc:
            if not isinstance(exc, TimeoutError):
                log.exception("health check failed")
            report = {"ok": False, "problems": [f"the health check failed: {type(exc).__name__}"]}
        status = 200 if report.get("ok") is True else 503
        return web.json_response(report, status=status, dumps=lambda v: json.dumps(v, default=str))

    app = web.Application()
    app.router.add_get(HEALTH_ROUTE, healthz)
    if metrics is not None:
        source = metrics

        async def metrics_page(request: web.Request) -> web.Response:
            body = await source.render()
            return web.Response(body=body, headers={"Content-Type": source.content_type})

        app.router.add_get(METRICS_ROUTE, metrics_page)
    if receiver is not None:
        app.router.add_post(WEBHOOK_ROUTE, receiver.handle)
    return app


def redact_path(path: str) -> str:
    """``path`` with a webhook token shortened to its log-safe prefix."""
    prefix, sep, token = path.partition("/webhooks/wan/")
    return prefix + sep + token_prefix(token) if sep and token else path


class _AccessLogger(AbstractAccessLogger):
    """aiohttp's default access log prints the request line, which holds the webhook token."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.debug(
            "%s %s -> %d in %.1f ms",
            request.method,
            redact_path(request.path),
            response.status,
            time * 1000,
        )


class HttpServer:
    """Runs an aiohttp application on ``host:port`` (port 0 picks a free one); owned by bot.py."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound. Only valid after :meth:`start`."""
        if self._bound_port is None:
            raise RuntimeError("HTTP server is not started")
        return self._bound_port

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("HTTP server is already started")
        runner = web.AppRunner(
            self._app,
            access_log_class=_AccessLogger,
            access_log=log,
            # After an early answer (413), aiohttp drains and drops the rest of the body so the
            # client can read the answer; keep that short.
            lingering_time=2.0,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])
        log.info("HTTP server listening on %s:%d", self._host, self._bound_port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self._bound_port = None
        if runner is not None:
            await runner.cleanup()
            log.info("HTTP server stopped")
