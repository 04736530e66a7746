"""The bot's HTTP side: ``/healthz``, ``/metrics`` and the webhook route, and the server that runs
them with an access log that never prints a webhook token."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from core.webhook_tokens import WEBHOOK_ROUTE, token_prefix

log = logging.getLogger(__name__)

HEALTH_ROUTE = "/healthz"
METRICS_ROUTE = "/metrics"
HEALTH_TIMEOUT_SECONDS = 5.0  # a check that takes longer is an answer in itself

HealthCheck = Callable[[], Mapping[str, object] | Awaitable[Mapping[str, object]]]


class MetricsSource(Protocol):
    """What ``/metrics`` serves: an exposition and its content type (core.metrics.Metrics)."""

    @property
    def content_type(self) -> str: ...

    async def render(self) -> bytes: ...


class WebhookHandler(Protocol):
    """What answers ``POST /webhooks/wan/{token}`` (core.webhooks.WebhookReceiver)."""

    async def handle(self, request: web.Request) -> web.Response: ...


def make_http_app(
    receiver: WebhookHandler | None,
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
