"""The WAN 2.7 Reference-to-Video API client (aiohttp, one injected session).

Three calls - :meth:`WanClient.create`, :meth:`WanClient.get`, :meth:`WanClient.list_tasks` - each
going through the process-wide :class:`~core.ratelimit.RateLimiter` on *every* HTTP attempt.

Errors (all :class:`WanError`, each with ``status`` when there was one and a size-capped ``excerpt``
of the raw body):

- :class:`WanUserError` - 400/422, input the user can fix; ``str()`` is readable text built from
  the API's ``message`` and ``invalid_params`` (flat or wrapped in ``{"problem": {...}}``).
- :class:`WanOperatorError` - 401/402/403 (key, credits, permissions) and anything else that only
  the operator can fix (unexpected 3xx/4xx, an invalid base URL).
- :class:`WanNotFound` - 404.
- :class:`WanTransientError` - 408/429/5xx, timeouts and connection errors once retries are spent;
  try again later. :class:`WanProtocolError` (a subclass) is a 2xx whose body is not the documented
  JSON (malformed, too large, wrong shape).
- :class:`WanSubmitUnknown` - a create whose outcome is unknown (see below). Deliberately *not* a
  transient error, so that a generic "retry on transient" never pays for a second task.

Retries: up to ``max_attempts`` attempts within ``max_total_seconds``, with exponential backoff and
full jitter, never shorter than the server's ``Retry-After`` (seconds or HTTP date). A 429's
``Retry-After`` also pauses the shared limiter, so every caller holds off, not just this one.
A Retry-After beyond the remaining budget is not waited for: the error carries ``retry_after``.

- GET (idempotent): retried on 408, 429, any 5xx, timeouts and connection errors.
- POST (creates a paid task): retried only when the API clearly did not take it - 408, 429, 503,
  or no connection was ever made (refused, DNS, connect timeout). Every other failure after the
  request may have left us is an *unknown outcome* and raises :class:`WanSubmitUnknown` at once:
  a read timeout, a dropped connection, a 5xx other than 503 (500/502/504 may come from a gateway
  after the API did the work), or a 2xx whose body cannot be read.

Reconciling unknown submits is the tracker's job, not this module's: it calls :meth:`list_tasks`
(which has only ``task_id`` + ``status``), adopts a task id it does not already know that appeared
after the submit, and otherwise fails and refunds the job - it never re-submits blindly.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Final, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from core.ratelimit import RateLimiter
from core.request import GenerationRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

API_PATH: Final = "/v1/ai/reference-to-video/wan-2-7"
DEFAULT_KEY_HEADER: Final = "x-freepik-api-key"
MAX_BODY_BYTES: Final = 1024 * 1024  # our responses are tiny; anything bigger is not the API
EXCERPT_CHARS: Final = 500
_READ_CHUNK: Final = 64 * 1024
# Statuses that mean "the request was not taken": safe to retry even for a create.
_NOT_ACCEPTED: Final = frozenset({408, 429, 503})


class TaskStatus(enum.StrEnum):
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"  # any value the contract does not list: keep polling, never crash

    @classmethod
    def parse(cls, raw: object) -> TaskStatus:
        try:
            return cls(str(raw).upper())
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)


@dataclass(frozen=True, slots=True)
class Task:
    """One API task as the API reports it (a job is ours; a task is the API's)."""

    task_id: str
    status: TaskStatus
    generated: tuple[str, ...] = ()
    raw_status: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Parse a task object (the inside of ``data``, or a webhook body). Raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("task is not a JSON object")
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ValueError("task has no task_id")
        raw_status = data.get("status")
        generated = data.get("generated") or []
        if not isinstance(generated, list):
            raise ValueError("task.generated is not a list")
        urls = tuple(u for u in generated if isinstance(u, str) and u)
        return cls(task_id, TaskStatus.parse(raw_status), urls, str(raw_status))


# --- errors ------------------------------------------------------------------------------------


class WanError(Exception):
    """Any failure talking to the API. ``status`` is the HTTP status when there was a response."""

    def __init__(self, message: str, *, status: int | None = None, excerpt: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.excerpt = excerpt[:EXCERPT_CHARS]


@dataclass(frozen=True, slots=True)
class InvalidParam:
    name: str
    reason: str


class WanUserError(WanError):
    """400/422: the request itself is wrong in a way the user can fix. ``str()`` is readable."""

    def __init__(
        self,
        api_message: str,
        invalid_params: tuple[InvalidParam, ...] = (),
        *,
        status: int | None = None,
        excerpt: str = "",
    ) -> None:
        self.api_message = api_message
        self.invalid_params = invalid_params
        super().__init__(_user_text(api_message, invalid_params), status=status, excerpt=excerpt)


class WanOperatorError(WanError):
    """401/402/403 and other misconfiguration: the operator must act (key, credits, base URL)."""


class WanNotFound(WanError):
    """404: the API does not know this task (or this key cannot see it)."""


class WanTransientError(WanError):
    """Busy, rate limited, unreachable or broken for now; ``retry_after`` is the API's hint."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, excerpt=excerpt)
        self.retry_after = retry_after


class WanProtocolError(WanTransientError):
    """A success status whose body is not the documented JSON (malformed, too big, wrong shape)."""


class WanSubmitUnknown(WanError):
    """A create that may or may not have produced a task. Reconcile via ``list_tasks``; never
    simply submit again."""


def _user_text(message: str, params: tuple[InvalidParam, ...]) -> str:
    head = message.strip().rstrip(".") or "The video service rejected the request"
    if not params:
        return head
    details = "; ".join(f"{p.name}: {p.reason}" if p.name else p.reason for p in params)
    return f"{head} — {details}"


def _error_details(raw: bytes) -> tuple[str, tuple[InvalidParam, ...]]:
    """The API's ``message`` and ``invalid_params``, flat or inside ``problem``; empty if absent."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return "", ()
    if not isinstance(doc, dict):
        return "", ()
    sources = [doc]
    if isinstance(doc.get("problem"), dict):
        sources.insert(0, doc["problem"])
    message = next((s["message"] for s in sources if isinstance(s.get("message"), str)), "")
    raw_params: Any = next((s["invalid_params"] for s in sources if "invalid_params" in s), [])
    params: list[InvalidParam] = []
    if isinstance(raw_params, list):
        for item in raw_params:
            if isinstance(item, dict):
                params.append(InvalidParam(str(item.get("name", "")), str(item.get("reason", ""))))
    return message, tuple(params)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date); None if unusable.

    ``now`` is the wall-clock time (Unix seconds) used for the date form.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


# --- client ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Retry bounds. A call ends within ``max_total_seconds`` of waiting plus at most one
    ``request_timeout`` (the attempt in flight is never cut short)."""

    max_attempts: int = 4
    max_total_seconds: float = 60.0
    base_delay: float = 1.0
    max_delay: float = 20.0
    request_timeout: float = 30.0  # per HTTP attempt, connect + send + read

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_total_seconds < 0:
            raise ValueError("retry delays must not be negative")
        if self.request_timeout <= 0:
            raise ValueError("request_timeout must be positive")


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool  # the body was longer than the cap; ``body`` holds only its start


class WanClient:
    """The API client. The session, limiter and settings are injected; nothing here is owned."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        limiter: RateLimiter,
        key_header: str = DEFAULT_KEY_HEADER,
        retry: RetrySettings | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session
        self._endpoint = base_url.rstrip("/") + API_PATH
        self._api_key = api_key
        self._headers = {
            key_header: api_key,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._limiter = limiter
        self._retry = retry or RetrySettings()
        self._timeout = aiohttp.ClientTimeout(total=self._retry.request_timeout)
        self._max_body = max_body_bytes
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"WanClient({self._endpoint!r})"  # never the key

    async def create(self, request: GenerationRequest) -> Task:
        """Submit a task. Raises :class:`WanSubmitUnknown` when it may exist without our knowing."""
        body = json.dumps(request.to_json(), ensure_ascii=False).encode()
        task = await self._call("POST", URL(self._endpoint), _parse_task, body)
        log.info("WAN task %s created (%s)", task.task_id, task.raw_status)
        return task

    async def get(self, task_id: str) -> Task:
        """One task's status and, when completed, its result URLs."""
        if not task_id:
            raise ValueError("task_id must not be empty")
        # Quote everything (even "/"): an id is one path segment, whatever it contains.
        url = URL(f"{self._endpoint}/{quote(task_id, safe='')}", encoded=True)
        task = await self._call("GET", url, _parse_task)
        if task.status is TaskStatus.UNKNOWN:
            log.warning("WAN task %s has an unlisted status %r", task.task_id, task.raw_status)
        return task

    async def list_tasks(self) -> list[Task]:
        """This key's tasks with their status (no ``generated`` in list items)."""
        return await self._call("GET", URL(self._endpoint), _parse_task_list)

    async def _call(
        self, method: str, url: URL, parse: Callable[[Any], T], body: bytes | None = None
    ) -> T:
        deadline = self._clock() + self._retry.max_total_seconds
        attempt = 0
        while True:
            attempt += 1
            await self._limiter.acquire()  # every attempt, retries included, spends budget
            retry_after: float | None = None
            try:
                reply = await self._send(method, url, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error, retryable = self._exception_error(method, exc)
            else:
                if 200 <= reply.status < 300:
                    return self._parse(method, reply, parse)
                error, retryable = self._status_error(method, reply)
                if isinstance(error, WanTransientError):
                    retry_after = error.retry_after
            if not retryable:
                raise error
            if attempt >= self._retry.max_attempts:
                log.warning("WAN %s %s: giving up after %d attempts", method, url.path, attempt)
                raise error
            delay = self._backoff(attempt, retry_after)
            if self._clock() + delay > deadline:
                log.warning("WAN %s %s: no retry budget left for %.1fs", method, url.path, delay)
                raise error
            log.warning(
                "WAN %s %s failed (%s); attempt %d/%d, retrying in %.2fs",
                method,
                url.path,
                error,
                attempt,
                self._retry.max_attempts,
                delay,
            )
            await self._sleep(delay)

    async def _send(self, method: str, url: URL, body: bytes | None) -> _Reply:
        async with self._session.request(
            method,
            url,
            data=body,
            headers=self._headers,
            timeout=self._timeout,
            allow_redirects=False,  # a redirected POST would silently turn into a GET
        ) as resp:
            raw, truncated = await _read_capped(resp.content, self._max_body)
            return _Reply(resp.status, resp.headers, raw, truncated)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        # Full jitter spreads out callers that failed together; Retry-After is a floor.
        ceiling = min(self._retry.max_delay, self._retry.base_delay * 2.0 ** min(attempt - 1, 30))
        delay = self._rng.uniform(0.0, ceiling)
        return delay if retry_after is None else max(delay, retry_after)

    def _exception_error(self, method: str, exc: Exception) -> tuple[WanError, bool]:
        if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
            return WanOperatorError(f"invalid WAN API URL: {exc}"), False
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            # No connection was made, so nothing was sent: even a create may be retried.
            return WanTransientError(f"cannot connect to the WAN API: {exc}"), True
        what = "timed out" if isinstance(exc, TimeoutError) else f"connection failed: {exc!r}"
        if method == "POST":
            return WanSubmitUnknown(self._redact(f"create {what}; the task may exist")), False
        return WanTransientError(self._redact(f"WAN API {what}")), True

    def _status_error(self, method: str, reply: _Reply) -> tuple[WanError, bool]:
        status = reply.status
        message, params = _error_details(reply.body)
        excerpt = self._excerpt(reply.body)
        message = self._redact(message)
        summary = f"WAN API HTTP {status}: {message or excerpt[:200] or 'no details'}"
        if status in (400, 422):
            return WanUserError(message, params, status=status, excerpt=excerpt), False
        if status in (401, 402, 403):
            return WanOperatorError(summary, status=status, excerpt=excerpt), False
        if status == 404:
            return WanNotFound(summary, status=status, excerpt=excerpt), False
        if status in _NOT_ACCEPTED:
            retry_after = parse_retry_after(reply.headers.get("Retry-After"))
            if status == 429 and retry_after is not None:
                self._limiter.pause_for(retry_after)  # everyone holds off, not only this call
            error = WanTransientError(
                summary, status=status, excerpt=excerpt, retry_after=retry_after
            )
            return error, True
        if status >= 500:
            if method == "POST":
                unknown = f"{summary} (after a create: the task may exist)"
                return WanSubmitUnknown(unknown, status=status, excerpt=excerpt), False
            return WanTransientError(summary, status=status, excerpt=excerpt), True
        return WanOperatorError(f"unexpected {summary}", status=status, excerpt=excerpt), False

    def _parse(self, method: str, reply: _Reply, parse: Callable[[Any], T]) -> T:
        if reply.truncated:
            problem = f"the body is over {self._max_body} bytes"
        else:
            try:
                return parse(json.loads(reply.body))
            except ValueError as exc:  # JSON, UTF-8 and shape errors are all ValueError
                problem = f"the body is unreadable ({exc})"
        excerpt = self._excerpt(reply.body)
        if method == "POST":
            # The API said yes but we cannot read the task id: it exists, we just don't know it.
            message = f"create answered HTTP {reply.status} but {problem}; the task may exist"
            raise WanSubmitUnknown(message, status=reply.status, excerpt=excerpt)
        raise WanProtocolError(
            f"WAN API HTTP {reply.status}: {problem}", status=reply.status, excerpt=excerpt
        )

    def _excerpt(self, raw: bytes) -> str:
        text = raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
        return self._redact(text)

    def _redact(self, text: str) -> str:
        # The API has no reason to echo our key, but an error text must never carry it onwards.
        return text.replace(self._api_key, "***") if self._api_key else text


async def _read_capped(stream: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes; the flag says the body was longer (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_chunked(_READ_CHUNK):
        room = limit - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _data(doc: Any) -> Any:
    if not isinstance(doc, dict) or "data" not in doc:
        raise ValueError("no 'data' in the response")
    return doc["data"]


def _parse_task(doc: Any) -> Task:
    return Task.from_json(_data(doc))


def _parse_task_list(doc: Any) -> list[Task]:
    items = _data(doc)
    if not isinstance(items, list):
        raise ValueError("'data' is not a list")
    tasks: list[Task] = []
    for item in items:
        try:
            tasks.append(Task.from_json(item))
        except ValueError as exc:
            # One odd item must not hide the others from reconciliation.
            log.warning("WAN task list: skipping an unreadable item (%s)", exc)
    return tasks
