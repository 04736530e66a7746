"""Injected REST faults: the next calls to a route (or the next uploads) answer a real-looking
429, an error JSON, or one of Discord's thread refusals instead of their handler; or an upload is
held (``hold_uploads``) until the test lets it go, so a bot can be killed in the middle of it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord.protocol import bucket, error_body, json_response, shape
from tests.fakes.discord.state import State

_THREAD_CREATIONS = frozenset(
    {
        ("POST", shape("/channels/{channel_id}/messages/{message_id}/threads")),
        ("POST", shape("/channels/{channel_id}/threads")),
    }
)


@dataclass
class UploadHold:
    """Uploads caught by :meth:`Faults.hold_uploads`, each kept waiting until :meth:`release`.

    ``posted=True``: the upload is handled first (the message exists), only its answer waits, as
    when a bot dies between Discord's posting and its own record of it. ``posted=False``: the
    upload waits unhandled and, once released, is refused (503) without a message, as a request
    that died with its client. ``bodies`` has the JSON (``payload_json``) of each caught upload.
    """

    posted: bool
    content: str | None  # only uploads whose message content contains this
    bodies: list[Any] = field(default_factory=list)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def caught(self) -> int:
        return len(self.bodies)

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self) -> None:
        """Let every caught upload (and any later one this hold catches) be answered."""
        self._released.set()

    def wants(self, body: Any) -> bool:
        if self.content is None:
            return True
        return isinstance(body, dict) and self.content in str(body.get("content") or "")

    async def answer(
        self, body: Any, handle: Callable[[], Awaitable[web.Response]]
    ) -> web.Response:
        self.bodies.append(body)
        if self.posted:
            response = await handle()
            await self._released.wait()
            return response
        await self._released.wait()
        return json_response(503, error_body(0, "503: upload cut off (held, then dropped)"))


@dataclass
class Fault:
    routes: frozenset[tuple[str, str]] | None  # (METHOD, shape or path); None: every route
    uploads_only: bool
    remaining: int
    respond: Callable[[str], web.Response]  # given the route's shape
    hold: UploadHold | None = None  # set: the upload waits for the hold (respond is unused)

    def matches(
        self, method: str, route: str, path: str, has_files: bool, body: Any = None
    ) -> bool:
        if self.uploads_only and not has_files:
            return False
        if self.hold is not None and not self.hold.wants(body):
            return False
        if self.routes is None:
            return True
        return (method, shape(route)) in self.routes or (method, path) in self.routes


class Faults:
    """The queue of faults, first match first; each is used up after ``times`` calls."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._queue: list[Fault] = []

    def rate_limit_next(
        self,
        method: str,
        route: str,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        scope: str = "user",
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` calls to ``method route`` with a real-looking 429."""

        def respond(route_shape: str) -> web.Response:
            headers = {
                "Retry-After": str(max(1, round(retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{self.state.now() + retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Bucket": bucket(route_shape),
                "X-RateLimit-Scope": scope,
                # discord.py treats a 429 without Via as a Cloudflare ban, not a rate limit.
                "Via": "1.1 google",
            }
            if is_global:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": is_global,
                "code": 0,
            }
            return json_response(429, body, headers)

        self._queue.append(Fault(_routes(method, route), False, times, respond))

    def fail_next(
        self,
        method: str,
        route: str,
        status: int,
        *,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls to ``method route`` with an error JSON."""
        self._fail(
            _routes(method, route), status, code, message or f"{status}: fake failure", times
        )

    def forbid_thread_creation(self, *, times: int = 1) -> None:
        """The next ``times`` thread creations fail with 403 Missing Permissions (50013)."""
        self._fail(_THREAD_CREATIONS, 403, 50013, "Missing Permissions", times)

    def refuse_thread_creation_at_limit(self, *, times: int = 1) -> None:
        """The next ``times`` thread creations fail as on a server at Discord's limit of active
        threads: 400, code 160006."""
        self._fail(
            _THREAD_CREATIONS, 400, 160006, "Maximum number of active threads reached", times
        )

    def fail_uploads(self, *, status: int = 503, times: int = 1) -> None:
        """The next ``times`` requests carrying files fail with ``status``.

        discord.py retries 500/502/504 (with 1 s, 3 s... sleeps) on bot routes and every 5xx on
        webhook routes; 503 on a bot route surfaces at once as DiscordServerError.
        """
        body = error_body(0, f"{status}: upload failed (injected)")
        self._queue.append(Fault(None, True, times, lambda _: json_response(status, body)))

    def hold_uploads(
        self, *, times: int = 1, posted: bool = False, content: str | None = None
    ) -> UploadHold:
        """Hold the next ``times`` requests carrying files (whose message content contains
        ``content``, when given) until the returned hold is released; see :class:`UploadHold`."""
        hold = UploadHold(posted=posted, content=content)
        refuse = json_response(503, error_body(0, "503: held upload"))
        self._queue.append(Fault(None, True, times, lambda _: refuse, hold=hold))
        return hold

    def clear(self) -> None:
        for fault in self._queue:
            if fault.hold is not None:
                fault.hold.release()
        self._queue.clear()

    def take(
        self, method: str, route: str, path: str, has_files: bool, body: Any = None
    ) -> Fault | None:
        """The fault for this call, if one is queued (counting it as used once)."""
        for fault in self._queue:
            if fault.remaining > 0 and fault.matches(method, route, path, has_files, body):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._queue.remove(fault)
                return fault
        return None

    def _fail(
        self,
        routes: frozenset[tuple[str, str]],
        status: int,
        code: int,
        message: str,
        times: int,
    ) -> None:
        body = error_body(code, message)
        self._queue.append(Fault(routes, False, times, lambda _: json_response(status, body)))


def _routes(method: str, route: str) -> frozenset[tuple[str, str]]:
    return frozenset({(method.upper(), shape(route) if "{" in route else route)})
