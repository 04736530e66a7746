"""REST plumbing: every request under ``/api/v10`` is parsed, recorded, authorised, given its
injected fault or its handler's answer, and stamped with rate-limit headers.

Handlers live with what they serve (messages, threads, interactions...) and are listed here as
``Route`` triples. What a test reads: ``calls`` (every request), ``unhandled`` (endpoints the
fake lacks, 404), ``server_errors`` (handler crashes, 500) and ``dropped`` (requests the client
gave up on while sending them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord.faults import Faults
from tests.fakes.discord.protocol import (
    API_PREFIX,
    JSON,
    ApiError,
    bucket,
    error_response,
    shape,
)
from tests.fakes.discord.state import State

log = logging.getLogger(__name__)

# Routes answered with the interaction token instead of the bot token.
_TOKEN_ROUTES = ("/webhooks/{}/{}", "/interactions/{}/{}/")


@dataclass(frozen=True)
class UploadedFile:
    """One ``files[N]`` part of a multipart request, as recorded (not the bytes)."""

    field: str
    filename: str
    size: int
    content_type: str | None


@dataclass
class RecordedCall:
    """One REST request. ``route`` is the matched template (None for unknown endpoints)."""

    method: str
    path: str
    route: str | None
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    authorized: bool
    status: int = 0
    response: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass
class Part:
    """One uploaded file of a multipart request, with its bytes."""

    field: str
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class Ctx:
    """What a REST handler gets: path parameters, query, JSON (or payload_json) and files."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any
    files: list[Part]

    def json(self) -> JSON:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise ApiError(400, 50109, "The request body contains invalid JSON.")
        return self.body

    def id(self, name: str) -> int:
        try:
            return int(self.params[name])
        except ValueError:
            raise ApiError(404, 0, "404: Not Found") from None

    def query_int(self, name: str, default: int) -> int:
        try:
            return int(self.query.get(name, default))
        except ValueError:
            raise ApiError(400, 50035, f"Invalid Form Body ({name})") from None


Handler = Callable[[Ctx], Awaitable[web.Response]]
Route = tuple[str, str, Handler]  # method, template under /api/v10, handler


class Rest:
    """Serves the routes it is given; records every call."""

    def __init__(self, state: State, faults: Faults) -> None:
        self.state = state
        self.faults = faults
        self.calls: list[RecordedCall] = []
        self.unhandled: list[RecordedCall] = []
        self.server_errors: list[str] = []
        self.dropped: list[RecordedCall] = []  # the client left while sending them

    def add_routes(self, app: web.Application, routes: list[Route]) -> None:
        for method, template, handler in routes:
            app.router.add_route(method, API_PREFIX + template, self._endpoint(template, handler))

    def add_fallback(self, app: web.Application) -> None:
        """Every other path: recorded as unhandled and answered 404 (add it last)."""
        app.router.add_route("*", "/{tail:.*}", self._endpoint(None, None))

    def calls_to(self, method: str, route: str) -> list[RecordedCall]:
        """Calls to ``method route``: a template (any placeholder names) or a concrete path."""
        wanted = shape(route)
        return [
            c
            for c in self.calls
            if c.method == method
            and (c.path == route or (c.route is not None and shape(c.route) == wanted))
        ]

    def _endpoint(
        self, template: str | None, handler: Handler | None
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a handler (None: unknown endpoint) with parsing, recording, auth and faults."""

        async def run(request: web.Request) -> web.StreamResponse:
            path = request.path
            if path.startswith(API_PREFIX + "/"):
                path = path[len(API_PREFIX) :]
            authorized = request.headers.get("Authorization") == f"Bot {self.state.token}"
            call = RecordedCall(
                request.method, path, template, dict(request.query), None, [], authorized
            )
            self.calls.append(call)
            self.state.notify()
            try:
                try:
                    body, parts = await _read_body(request)
                except ConnectionResetError:
                    # The client went away mid-request (the bot stopped or was killed): nothing
                    # to answer, and no fault of the fake. The call keeps status 0 (unanswered).
                    self.dropped.append(call)
                    self.state.notify()
                    return web.Response(status=499)
                call.json = body
                call.files = [
                    UploadedFile(p.field, p.filename, len(p.data), p.content_type) for p in parts
                ]
                ctx = Ctx(dict(request.match_info), dict(request.query), body, parts)
                response = await self._answer(call, template, ctx, handler)
            except ApiError as exc:
                response = error_response(exc.status, exc.code, exc.message)
            except ConnectionError as exc:
                # The bot went away mid-request (killed in a crash test): no fault of the fake.
                log.info(
                    "fake Discord: %s %s cut off by the client (%r)", request.method, path, exc
                )
                response = error_response(499, 0, "client closed request")
            except Exception as exc:
                log.exception("fake Discord: %s %s crashed", request.method, path)
                self.server_errors.append(f"{request.method} {path}: {exc!r}")
                response = error_response(500, 0, "500: Internal Server Error")
            call.status = response.status
            if isinstance(response.body, bytes) and response.content_type == "application/json":
                call.response = json.loads(response.body)
            if template is not None and response.status != 429:
                response.headers.update(self._ratelimit_headers(template))
            self.state.notify()
            return response

        return run

    def _ratelimit_headers(self, template: str) -> dict[str, str]:
        # A roomy bucket that never runs dry, so discord.py never pre-emptively sleeps.
        return {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{self.state.now() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": bucket(shape(template)),
        }

    async def _answer(
        self, call: RecordedCall, template: str | None, ctx: Ctx, handler: Handler | None
    ) -> web.Response:
        if template is None or handler is None:
            # Recorded so a test can see which endpoint the fake is missing.
            self.unhandled.append(call)
            log.warning("fake Discord has no endpoint for %s %s", call.method, call.path)
            return error_response(404, 0, "404: Not Found")
        route_shape = shape(template)
        if not route_shape.startswith(_TOKEN_ROUTES) and not call.authorized:
            return error_response(401, 0, "401: Unauthorized")
        fault = self.faults.take(call.method, template, call.path, bool(ctx.files), ctx.body)
        if fault is not None and fault.hold is not None:
            return await fault.hold.answer(ctx.body, lambda: self._handle(ctx, handler))
        if fault is not None:
            return fault.respond(route_shape)
        return await self._handle(ctx, handler)

    async def _handle(self, ctx: Ctx, handler: Handler) -> web.Response:
        if any(len(part.data) > self.state.upload_limit for part in ctx.files):
            return error_response(413, 40005, "Request entity too large")
        return await handler(ctx)


async def _read_body(request: web.Request) -> tuple[Any, list[Part]]:
    """JSON body, or a multipart's ``payload_json`` plus its ``files[N]`` parts."""
    try:
        if request.content_type != "multipart/form-data":
            raw = await request.read()
            return (json.loads(raw) if raw else None), []
        payload: Any = None
        parts: list[Part] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            elif part.filename is not None:
                data = bytes(await part.read(decode=False))
                kind = part.headers.get("Content-Type")
                parts.append(Part(part.name or "", part.filename, data, kind))
        return payload, parts
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None
