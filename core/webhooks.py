"""The WAN webhook receiver: checks a delivery and hands its task to the tracker.

A webhook only *wakes* a job; the tracker decides what to do. When a secret is configured every
delivery must carry a valid signature (:mod:`core.webhook_signatures`); an unverified body is
only a hint to re-read the task. The URLs' tokens are :mod:`core.webhook_tokens`; the HTTP
server that serves this handler beside ``/healthz`` and ``/metrics`` is :mod:`core.http_server`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core.http_server import HttpServer, make_http_app
from core.wan import Task
from core.webhook_signatures import ReplayGuard, signature_problem, signing_keys
from core.webhook_tokens import (
    JobWebhooks,
    job_webhooks,
    token_digest,
    token_prefix,
    webhook_url_source,
)

log = logging.getLogger(__name__)

# The server and the per-job URLs too: bot.py, the tracker and its wiring import them from here.
__all__ = [
    "MAX_BODY_BYTES",
    "HttpServer",
    "JobWebhooks",
    "NotificationHandler",
    "WebhookReceiver",
    "job_webhooks",
    "make_http_app",
    "token_digest",
    "webhook_url_source",
]

MAX_BODY_BYTES = 64 * 1024  # a task notification is a few hundred bytes
# job_webhook_token() gives 43 characters; anything unlike a token is refused before any work.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")

# on_notification(token, task, verified) -> False when the token belongs to no job.
NotificationHandler = Callable[[str, Task, bool], Awaitable[bool]]


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
