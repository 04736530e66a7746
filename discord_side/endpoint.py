"""Point discord.py at a Discord-compatible API other than discord.com (a local fake, a proxy).

discord.py has no setting for this, so two class attributes are patched, process-wide:

* ``discord.http.Route.BASE``: every REST URL is ``Route.BASE + path``, including interaction
  callbacks, follow-ups and ``@original`` edits, so one assignment moves all REST traffic.
* ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``: a plain ``Client``/``commands.Bot`` dials
  this URL directly and never asks the API for one (only ``AutoShardedClient`` calls
  ``GET /gateway/bot``). discord.py also falls back to it after an invalidated session, so it is
  patched on the class rather than on one websocket.

The gateway URL is learned the way Discord documents it: ``GET {api_base}/gateway/bot``, which needs
the bot token. The token only ever travels in the ``Authorization`` header of that one request; it
is never logged or put into an exception message.

Call :func:`point_discord_at` once, before ``bot.login()``. With Discord's own base it restores the
defaults and does nothing else, so production start-up pays no extra request.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import aiohttp
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

log = logging.getLogger(__name__)

# Captured at import, before anything patches them, so they can be restored exactly.
DISCORD_API_BASE: str = Route.BASE
DISCORD_GATEWAY: yarl.URL = DiscordWebSocket.DEFAULT_GATEWAY


class DiscordEndpointError(RuntimeError):
    """The alternative API could not tell us where its gateway is."""


def _normalised(api_base: str) -> str:
    base = api_base.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("the Discord API base must be an http(s) URL")
    return base


def restore_discord_defaults() -> None:
    """Undo :func:`point_discord_at` (tests use this to leave no process-wide state behind)."""
    Route.BASE = DISCORD_API_BASE
    DiscordWebSocket.DEFAULT_GATEWAY = DISCORD_GATEWAY


async def point_discord_at(
    api_base: str,
    token: str,
    *,
    session: aiohttp.ClientSession | None = None,
    request_timeout: float = 10.0,
) -> yarl.URL | None:
    """Send discord.py's REST and gateway traffic to ``api_base``.

    Returns the gateway URL now in use, or ``None`` when ``api_base`` is Discord's own (the
    defaults are then restored). Raises :class:`DiscordEndpointError` if ``GET /gateway/bot``
    fails or answers nonsense, and ``ValueError`` for a malformed ``api_base``.
    """
    base = _normalised(api_base)
    if base == DISCORD_API_BASE:
        restore_discord_defaults()
        return None

    gateway = await _fetch_gateway(base, token, session=session, request_timeout=request_timeout)
    Route.BASE = base
    DiscordWebSocket.DEFAULT_GATEWAY = gateway
    log.info("discord.py redirected: REST %s, gateway %s", base, gateway)
    return gateway


async def _fetch_gateway(
    base: str, token: str, *, session: aiohttp.ClientSession | None, request_timeout: float
) -> yarl.URL:
    headers = {"Authorization": f"Bot {token.strip()}"}
    url = f"{base}/gateway/bot"
    client_timeout = aiohttp.ClientTimeout(total=request_timeout)
    own_session = session is None
    http = session if session is not None else aiohttp.ClientSession()
    try:
        async with http.get(url, headers=headers, timeout=client_timeout) as response:
            if response.status != 200:
                # Status only: the body of an auth error could echo request details.
                raise DiscordEndpointError(f"GET {url} answered HTTP {response.status}")
            data = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise DiscordEndpointError(f"GET {url} failed: {type(exc).__name__}") from None
    finally:
        if own_session:
            await http.close()

    raw = data.get("url") if isinstance(data, dict) else None
    if not isinstance(raw, str):
        raise DiscordEndpointError(f"GET {url} returned no gateway url")
    gateway = yarl.URL(raw)
    if gateway.scheme not in ("ws", "wss") or not gateway.host:
        raise DiscordEndpointError(f"GET {url} returned an unusable gateway url")
    return gateway
