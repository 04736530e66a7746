"""Injected REST faults: the next calls to a route (or the next uploads) answer a real-looking
429, an error JSON, or one of Discord's thread refusals instead of their handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
class Fault:
    routes: frozenset[tuple[str, str]] | None  # (METHOD, shape or path); None: every route
    uploads_only: bool
    remaining: int
    respond: Callable[[str], web.Response]  # given the route's shape

    def matches(self, method: str, route: str, path: str, has_files: bool) -> bool:
        if self.uploads_only and not has_files:
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

    def clear(self) -> None:
        self._queue.clear()

    def take(self, method: str, route: str, path: str, has_files: bool) -> Fault | None:
        """The fault for this call, if one is queued (counting it as used once)."""
        for fault in self._queue:
            if fault.remaining > 0 and fault.matches(method, route, path, has_files):
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
