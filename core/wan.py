"""The WAN 2.7 Reference-to-Video API client (aiohttp, one injected session).

Three calls - :meth:`WanClient.create`, :meth:`WanClient.get`, :meth:`WanClient.list_tasks` (every
page of it) - each going through the process-wide :class:`~core.ratelimit.RateLimiter` on *every*
HTTP attempt, as one of three kinds (``create``, ``read``, ``list``) that the API may hold off
separately.

Errors are :class:`~core.wan_types.WanError` subclasses (``core.wan_types`` lists them; this
module re-exports them with the task types).

Retries: up to ``max_attempts`` attempts within ``max_total_seconds``, with exponential backoff and
full jitter, never shorter than the server's ``Retry-After`` (seconds or HTTP date). A 429's
``Retry-After`` also pauses that kind of call in the shared limiter, so every caller of that kind
holds off, not just this one. A Retry-After (or such a pause) beyond the remaining budget is not
waited for: the call fails at once with a :class:`WanTransientError` carrying ``retry_after``.

- GET (idempotent): retried on 408, 429, any 5xx, timeouts and connection errors.
- POST (creates a paid task): retried only when the API clearly did not take it - 408, 429, 503,
  or no connection was ever made (refused, DNS, connect timeout). Every other failure after the
  request may have left us is an *unknown outcome* and raises :class:`WanSubmitUnknown` at once:
  a read timeout, a dropped connection, a 5xx other than 503 (500/502/504 may come from a gateway
  after the API did the work), or a 2xx whose body cannot be read.

Reconciling unknown submits is the tracker's job, not this module's (see ``core.reconcile``): it
calls :meth:`list_tasks` (which has only ``task_id`` + ``status``) and never re-submits blindly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from core.ratelimit import RateLimiter
from core.request import GenerationRequest
from core.wan_types import (
    EXCERPT_CHARS,
    InvalidParam,
    Task,
    TaskStatus,
    WanDeadlinePassed,
    WanError,
    WanNotFound,
    WanOperatorError,
    WanProtocolError,
    WanSubmitUnknown,
    WanTransientError,
    WanUserError,
    error_details,
    parse_retry_after,
    parse_task,
    parse_task_list,
)

__all__ = [
    "CREATE",
    "EXCERPT_CHARS",
    "LIST",
    "READ",
    "ApiObserver",
    "InvalidParam",
    "RetrySettings",
    "Task",
    "TaskStatus",
    "WanClient",
    "WanDeadlinePassed",
    "WanError",
    "WanNotFound",
    "WanOperatorError",
    "WanProtocolError",
    "WanSubmitUnknown",
    "WanTransientError",
    "WanUserError",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

API_PATH: Final = "/v1/ai/reference-to-video/wan-2-7"
DEFAULT_KEY_HEADER: Final = "x-freepik-api-key"
MAX_BODY_BYTES: Final = 1024 * 1024  # our responses are tiny; anything bigger is not the API
LIST_PAGE_SIZE: Final = 100  # the most a sibling endpoint's list allows per page
MAX_LIST_PAGES: Final = 100
CREATE, READ, LIST = "create", "read", "list"  # kinds of call the API may hold off apart
_READ_CHUNK: Final = 64 * 1024
# Statuses that mean "the request was not taken": safe to retry even for a create.
_NOT_ACCEPTED: Final = frozenset({408, 429, 503})
# The operation each kind of call is counted as (``core.metrics.API_OPERATIONS``).
_OPERATIONS: Final = {CREATE: "create", READ: "get", LIST: "list"}


class ApiObserver(Protocol):
    """Told of every HTTP attempt (``core.metrics.Metrics`` is one; this module needs no more)."""

    def api_request(self, operation: str, status: int | str) -> None:
        """``operation``: create, get or list; ``status``: the HTTP code, or ``timeout`` /
        ``connection_error`` when no answer came."""


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
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        observer: ApiObserver | None = None,
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
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._observer = observer

    def __repr__(self) -> str:
        return f"WanClient({self._endpoint!r})"  # never the key

    def held_for(self, kind: str) -> float:
        """Seconds the API asked us to hold calls of ``kind`` (create, read, list) from now."""
        return self._limiter.pause_remaining(kind)

    async def create(
        self,
        request: GenerationRequest,
        *,
        webhook_url: str | None = None,
        not_after: float | None = None,
    ) -> Task:
        """Submit a task. Raises :class:`WanSubmitUnknown` when it may exist without our knowing.

        ``webhook_url`` is where the API should notify (it wins over one in the request);
        ``not_after`` (Unix time) is when sending becomes pointless: :class:`WanDeadlinePassed`.
        """
        document = request.to_json()
        if webhook_url is not None:
            document["webhook_url"] = webhook_url
        body = json.dumps(document, ensure_ascii=False).encode()
        task = await self._call(
            "POST", URL(self._endpoint), parse_task, body, kind=CREATE, not_after=not_after
        )
        log.info("WAN task %s created (%s)", task.task_id, task.raw_status)
        return task

    async def get(self, task_id: str) -> Task:
        """One task's status and, when completed, its result URLs."""
        if not task_id:
            raise ValueError("task_id must not be empty")
        # Quote everything (even "/"): an id is one path segment, whatever it contains.
        url = URL(f"{self._endpoint}/{quote(task_id, safe='')}", encoded=True)
        task = await self._call("GET", url, parse_task, kind=READ)
        if task.status is TaskStatus.UNKNOWN:
            log.warning("WAN task %s has an unlisted status %r", task.task_id, task.raw_status)
        return task

    async def list_tasks(self) -> list[Task]:
        """Every task of this key with its status (no ``generated`` in list items), all pages."""
        tasks, _complete = await self.list_all_tasks()
        return tasks

    async def list_all_tasks(self, max_pages: int = MAX_LIST_PAGES) -> tuple[list[Task], bool]:
        """The key's tasks, and whether the list was read to its end (not cut at ``max_pages``).

        Paging is not documented for this endpoint; a sibling's ``page``/``page_size`` is sent.
        Reading stops at an empty page or one that brings nothing new (an API that ignores the
        parameters answers every page with the same list), not at a short one: a server that
        caps pages below our size must not hide a task (missing one could pay for two).
        """
        tasks: dict[str, Task] = {}
        for page in range(1, max_pages + 1):
            url = URL(self._endpoint).with_query(page=page, page_size=LIST_PAGE_SIZE)
            items = await self._call("GET", url, parse_task_list, kind=LIST)
            fresh = [task for task in items if task.task_id not in tasks]
            if not fresh:
                return list(tasks.values()), True
            tasks.update((task.task_id, task) for task in fresh)
        log.warning("WAN task list: stopped after %d pages (%d tasks)", max_pages, len(tasks))
        return list(tasks.values()), False

    async def _call(
        self,
        method: str,
        url: URL,
        parse: Callable[[Any], T],
        body: bytes | None = None,
        *,
        kind: str,
        not_after: float | None = None,
    ) -> T:
        deadline = self._clock() + self._retry.max_total_seconds
        attempt = 0
        while True:
            attempt += 1
            held = self._limiter.pause_remaining(kind)
            if held > deadline - self._clock():
                # The API asked us to hold off longer than this call may wait: say so now.
                raise WanTransientError(
                    f"WAN API asked us to hold {kind} requests for {held:.0f}s",
                    status=429,
                    retry_after=held,
                )
            await self._limiter.acquire(kind)  # every attempt, retries included, spends budget
            if not_after is not None and self._wall_clock() >= not_after:
                raise WanDeadlinePassed(f"WAN {kind} not sent: its deadline has passed")
            retry_after: float | None = None
            try:
                reply = await self._send(method, url, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                no_answer = "timeout" if isinstance(exc, TimeoutError) else "connection_error"
                self._observe(kind, no_answer)
                error, retryable = self._exception_error(method, exc)
            else:
                self._observe(kind, reply.status)
                if 200 <= reply.status < 300:
                    return self._parse(method, reply, parse)
                error, retryable = self._status_error(method, kind, reply)
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

    def _observe(self, kind: str, status: int | str) -> None:
        if self._observer is not None:
            self._observer.api_request(_OPERATIONS[kind], status)

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

    def _status_error(self, method: str, kind: str, reply: _Reply) -> tuple[WanError, bool]:
        status = reply.status
        message, params = error_details(reply.body)
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
                self._limiter.pause_for(retry_after, kind)  # every call of this kind holds off
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
