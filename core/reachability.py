"""One GET with a hard deadline, and network failures told in one line that names the host."""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

DEFAULT_TIMEOUT = 10.0


class Unreachable(Exception):
    """No HTTP answer from ``host``; ``reason`` says why in a few words."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"cannot reach {host}: {reason}")


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname or url if parts.port is None else f"{parts.hostname}:{parts.port}"


def describe_network_error(exc: BaseException, timeout: float | None = None) -> str | None:
    """Why a request got no answer (DNS, refused, timeout, TLS…), or None if ``exc`` is not a
    network failure. Never includes the URL's path or query (tokens travel there)."""
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return f"no answer within {timeout:.0f} s" if timeout else "timed out"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve (DNS)"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "the TLS handshake failed (certificate or proxy)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        if code == errno.ECONNREFUSED:
            return "connection refused"
        if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "no route to the host (network down or firewalled)"
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "the connection was closed before an answer"
    if isinstance(exc, aiohttp.ClientError | ConnectionError):
        return f"the request failed ({type(exc).__name__})"
    return None


async def probe(
    session: aiohttp.ClientSession,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    within: float = DEFAULT_TIMEOUT,
) -> tuple[int, Any]:
    """GET ``url``: (status, the JSON body or None), within ``within`` seconds whatever the host
    does. Raises :class:`Unreachable` when no answer comes (DNS, refused, hung, TLS).
    """
    try:
        async with asyncio.timeout(within):
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                return response.status, body
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        reason = describe_network_error(exc, within) or type(exc).__name__
        raise Unreachable(host_of(url), reason) from None
