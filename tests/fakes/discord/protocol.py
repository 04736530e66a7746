"""Discord's numbers and wire shapes: flag and permission bits, intents, error answers, ids.

Everything here is Discord's (values from its documentation); nothing keeps state.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
MIB = 1024 * 1024
# Per-file upload limit by boost tier (Discord's 2025 numbers).
TIER_UPLOAD_LIMITS = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}
THREAD_TYPES = (10, 11, 12)  # announcement, public and private threads


class Perm:
    """Permission bits used by the fake (Discord's values)."""

    ADMINISTRATOR = 1 << 3
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    USE_EXTERNAL_EMOJIS = 1 << 18
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 53) - 1


class Intent:
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


class MessageFlag:
    SUPPRESS_EMBEDS = 1 << 2
    HAS_THREAD = 1 << 5
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_VOICE_MESSAGE = 1 << 13
    IS_COMPONENTS_V2 = 1 << 15
    # The only bits a client may set when creating or editing a message.
    CLIENT_SETTABLE = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_VOICE_MESSAGE | IS_COMPONENTS_V2


EVERYONE_PERMISSIONS = (
    Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.ADD_REACTIONS
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.CREATE_PUBLIC_THREADS
    | Perm.SEND_MESSAGES_IN_THREADS
)
MODERATOR_PERMISSIONS = Perm.MANAGE_GUILD | Perm.MANAGE_MESSAGES | Perm.MANAGE_THREADS
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | Perm.MANAGE_MESSAGES | Perm.MANAGE_THREADS

_PLACEHOLDER = re.compile(r"\{[^}]*\}")


class ApiError(Exception):
    """Raised by a REST handler: answered as Discord's error JSON with this status and code."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def shape(route: str) -> str:
    """``/channels/{channel_id}/messages`` and ``/channels/{id}/messages`` compare equal."""
    return _PLACEHOLDER.sub("{}", route)


def bucket(route_shape: str) -> str:
    """A stable rate-limit bucket hash for a route."""
    return hashlib.sha1(route_shape.encode(), usedforsecurity=False).hexdigest()[:16]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    # Built by hand: discord.py parses JSON only for Content-Type exactly "application/json",
    # and aiohttp's json_response appends "; charset=utf-8".
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_body(code: int, message: str) -> JSON:
    return {"message": message, "code": code}


def error_response(status: int, code: int, message: str) -> web.Response:
    return json_response(status, error_body(code, message))


def iter_components(components: Sequence[JSON]) -> Iterator[JSON]:
    """Every component in a message's tree (rows, containers, sections), depth first."""
    for component in components:
        yield component
        for key in ("components", "accessory", "component"):
            child = component.get(key)
            if isinstance(child, list):
                yield from iter_components(child)
            elif isinstance(child, dict):
                yield from iter_components([child])
