"""A local stand-in for Discord that the real discord.py client can run against, offline.

One guild, a handful of channels and users, REST under ``/api/v10``, a gateway websocket at
``/gateway`` and a CDN for attachments, all on 127.0.0.1. Built from Discord's documented API and
from what discord.py 2.7 actually sends and parses. Runs inside the test's event loop::

    fake = FakeDiscord()
    await fake.start()
    ...                                   # point discord.py at fake.api_base, log in, connect
    await fake.wait_until_ready()
    iid = await fake.dispatch_slash_command("video", {"prompt": "a cat"})
    await fake.wait_for(lambda: fake.interactions[iid].response_type is not None)
    await fake.close()

Tests read what users would see from ``messages``, ``interactions`` and ``channels``; every REST
call is in ``calls``; unknown endpoints land in ``unhandled`` (404), handler crashes in
``server_errors`` (500), requests the client gave up on while sending them in ``dropped``, and a
request the client cut off later (a killed bot) is answered 499.
Faults are queued with ``rate_limit_next``, ``fail_next``, ``forbid_thread_creation``,
``refuse_thread_creation_at_limit`` and ``fail_uploads``; the upload limit follows the guild's
boost tier. Threads can be archived or locked (``archive_thread``) and
deleted (``delete_thread``); members can close their DMs to the bot (``close_dms``).
Time-based rules (3 s to answer an interaction, 15 min token life, URL expiry, nonce window) use a
fake clock that ``advance_clock`` moves, so expiry is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import logging
import mimetypes
import re
import secrets
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from aiohttp import BodyPartReader, WSMsgType, web

log = logging.getLogger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
MIB = 1024 * 1024
# Per-file upload limit by boost tier (Discord's 2025 numbers).
TIER_UPLOAD_LIMITS = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}


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

# Routes answered with the interaction token instead of the bot token.
_TOKEN_ROUTES = ("/webhooks/{}/{}", "/interactions/{}/{}/")
_PLACEHOLDER = re.compile(r"\{[^}]*\}")
_MENTION = re.compile(r"<@!?(\d+)>")
_CDN_PATH = re.compile(r"^(?:/media)?/(ephemeral-attachments|attachments)/(\d+)/(\d+)/[^/?]+$")


def _shape(route: str) -> str:
    """``/channels/{channel_id}/messages`` and ``/channels/{id}/messages`` compare equal."""
    return _PLACEHOLDER.sub("{}", route)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    # Built by hand: discord.py parses JSON only for Content-Type exactly "application/json",
    # and aiohttp's json_response appends "; charset=utf-8".
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _error_body(code: int, message: str) -> JSON:
    return {"message": message, "code": code}


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG or WebP, read from its header; else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(
                data[27:30], "little"
            )
        if chunk == b"VP8 ":
            return (
                int.from_bytes(data[26:28], "little") & 0x3FFF,
                int.from_bytes(data[28:30], "little") & 0x3FFF,
            )
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _ranged_response(data: bytes, content_type: str, header: str | None) -> web.Response:
    """The whole file (200), or one ``Range: bytes=a-b`` of it (206; 416 past the end), as the
    Discord CDN answers. A range the CDN would not understand gets the whole file."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return web.Response(
            body=data, content_type=content_type, headers={"Accept-Ranges": "bytes"}
        )
    first, last = match.groups()
    size = len(data)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:  # "bytes=-N": the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    return web.Response(
        status=206,
        body=data[start : end + 1],
        content_type=content_type,
        headers={"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{size}"},
    )


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walk the segments to the first start-of-frame marker, which holds the dimensions.
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + int(length)
    return None


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FakeUser:
    id: int
    username: str
    bot: bool = False
    role_ids: tuple[int, ...] = ()

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


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
class FakeInteraction:
    """An interaction the fake dispatched, and how the bot answered it."""

    id: int
    token: str
    type: int  # 2 application command, 3 component, 4 autocomplete, 5 modal submit
    user_id: int
    channel_id: int
    guild_id: int
    name: str  # command path ("admin quota set") or component custom_id
    payload: JSON  # exactly what the bot received
    created_at: float  # fake clock
    message_id: int | None = None  # component interactions: the message clicked
    response_type: int | None = None
    response_data: JSON | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    ephemeral: bool = False
    loading: bool = False


@dataclass
class _Part:
    field: str
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class _Blob:
    id: int
    channel_id: int
    filename: str
    data: bytes
    content_type: str | None
    ephemeral: bool
    width: int | None = None
    height: int | None = None
    duration_secs: float | None = None
    description: str | None = None
    removed: bool = False


@dataclass
class _Fault:
    routes: frozenset[tuple[str, str]] | None  # (METHOD, shape); None means every route
    uploads_only: bool
    remaining: int
    respond: Callable[[str], web.Response]

    def matches(self, method: str, route: str, path: str, has_files: bool) -> bool:
        if self.uploads_only and not has_files:
            return False
        if self.routes is None:
            return True
        return (method, _shape(route)) in self.routes or (method, path) in self.routes


@dataclass
class _Ctx:
    """What a REST handler gets: path parameters, query, JSON (or payload_json) and files."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any
    files: list[_Part]

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


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _Connection:
    """One gateway websocket. Sends are serialised: zlib-stream needs them in order."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool) -> None:
        self.ws = ws
        self._deflate = zlib.compressobj() if zlib_stream else None
        self._lock = asyncio.Lock()
        self.session: _Session | None = None

    async def send(self, frame: JSON | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":"))
        async with self._lock:
            if self.ws.closed:
                return
            try:
                if self._deflate is None:
                    await self.ws.send_str(text)
                else:
                    # One shared stream; each message ends with Z_SYNC_FLUSH (00 00 ff ff),
                    # which is how the client knows a message is complete.
                    chunk = self._deflate.compress(text.encode())
                    await self.ws.send_bytes(chunk + self._deflate.flush(zlib.Z_SYNC_FLUSH))
            except ConnectionError:
                pass  # the socket died under us; RESUME will replay from the buffer


@dataclass
class _Session:
    id: str
    intents: int
    seq: int = 0
    buffer: list[tuple[int, str]] = field(default_factory=list)
    connection: _Connection | None = None
    ready: bool = False  # READY and every GUILD_CREATE sent


# ----------------------------------------------------------------------------- the fake


class FakeDiscord:
    """Local Discord: REST, gateway and CDN on one aiohttp server bound to 127.0.0.1."""

    def __init__(
        self,
        *,
        token: str | None = None,
        premium_tier: int = 0,
        upload_limit: int | None = None,
        heartbeat_interval_ms: int = 41_250,
        response_window: float = 3.0,
        token_lifetime: float = 15 * 60,
        url_ttl: float = 24 * 3600,
        nonce_window: float = 300.0,
        allowed_privileged_intents: int = Intent.PRIVILEGED,
    ) -> None:
        self._last_id = 0
        self._clock_offset = 0.0
        self.token = token or f"fake.{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(27)}"
        self.premium_tier = premium_tier
        self._upload_limit_override = upload_limit
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.response_window = response_window
        self.token_lifetime = token_lifetime
        self.url_ttl = url_ttl
        self.nonce_window = nonce_window
        self.allowed_privileged_intents = allowed_privileged_intents

        # Recording.
        self.calls: list[RecordedCall] = []
        self.unhandled: list[RecordedCall] = []
        self.server_errors: list[str] = []
        self.dropped: list[RecordedCall] = []  # the client left while sending them
        self.cdn_requests: list[tuple[str, int]] = []
        self.gateway_received: list[JSON] = []  # ops from the bot; IDENTIFY/RESUME token redacted
        self.gateway_queries: list[dict[str, str]] = []  # ?v=10&encoding=json&compress=...
        self.identify_count = 0
        self.resume_count = 0

        # World.
        self.guild_id = self._snowflake()
        self.moderator_role_id = self._snowflake()
        self.bot_role_id = self._snowflake()
        self.bot_user = FakeUser(
            self._snowflake(), "wan-bot", bot=True, role_ids=(self.bot_role_id,)
        )
        self.application_id = self.bot_user.id  # as for every modern Discord bot
        self.owner = FakeUser(self._snowflake(), "owner")
        self.member = FakeUser(self._snowflake(), "alice")
        self.moderator = FakeUser(self._snowflake(), "mod", role_ids=(self.moderator_role_id,))
        self.users: dict[int, FakeUser] = {
            u.id: u for u in (self.bot_user, self.owner, self.member, self.moderator)
        }
        self._joined_at = self.now()
        self.roles: dict[int, JSON] = {
            self.guild_id: self._role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0),
            self.moderator_role_id: self._role(
                self.moderator_role_id, "Moderator", MODERATOR_PERMISSIONS, 1
            ),
            self.bot_role_id: self._role(self.bot_role_id, "wan-bot", BOT_PERMISSIONS, 2),
        }
        self.roles[self.bot_role_id]["managed"] = True
        self.roles[self.bot_role_id]["tags"] = {"bot_id": str(self.bot_user.id)}

        self.channels: dict[int, JSON] = {}  # guild channels and threads
        self.dm_channels: dict[int, JSON] = {}  # the bot's DMs (type 1), by channel id
        self.dms_closed: set[int] = set()  # members who do not take DMs from the bot
        self.category_id = self._add_channel(4, "Text Channels", position=0)
        self.channel_id = self._add_channel(0, "general", position=0, parent=self.category_id)
        self.other_channel_id = self._add_channel(0, "videos", position=1, parent=self.category_id)
        self.voice_channel_id = self._add_channel(2, "Lounge", position=2)

        self.messages: dict[int, JSON] = {}
        self.deleted_messages: dict[int, JSON] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        # Application commands as Discord stores them: key None is global, else a guild id.
        self.commands: dict[int | None, list[JSON]] = {}
        self.command_creations: dict[int | None, int] = {}
        self._blobs: dict[int, _Blob] = {}
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}
        self._faults: list[_Fault] = []
        self._cdn_secret = secrets.token_bytes(32)

        # Gateway.
        self.gateway_refused = False  # True: new gateway connections get HTTP 503 (an outage)
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()

        # Server.
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=256 * MIB)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving. Close the bot first, or discord.py will keep trying to reconnect."""
        for connection in list(self._connections):
            await connection.ws.close(code=1001, message=b"fake Discord closing")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------------ clock, ids, waiting

    def now(self) -> float:
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock (interaction windows, token life, URL expiry, nonces)."""
        self._clock_offset += seconds
        self._notify()

    def _snowflake(self) -> int:
        # Real snowflakes (timestamp << 22) so discord.py's created_at is sensible.
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(candidate, self._last_id + 1)
        return self._last_id

    def _notify(self) -> None:
        # Wake every waiter; each re-checks its own condition.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, what: str | None = None
    ) -> T:
        """Wait until ``predicate()`` (about the fake's state) is truthy and return its value.

        Re-checked after every change the fake sees (a REST call, a gateway op, a dispatch) and
        once more at the deadline. The bot's own caches change without the fake noticing: wait
        on the bot's events for those, not here.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "; ".join(str(c) for c in self.calls[-8:]) or "none"
                raise TimeoutError(
                    f"fake Discord: {what or 'condition'} not met within {timeout}s "
                    f"(recent calls: {recent}; unhandled: {len(self.unhandled)})"
                )
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    async def wait_for_call(
        self, method: str, route: str, *, status: int | None = None, timeout: float = 5.0
    ) -> RecordedCall:
        """Wait for the first answered call to ``method route`` (template or concrete path)."""

        def found() -> RecordedCall | None:
            for call in self.calls_to(method, route):
                if call.status and (status is None or call.status == status):
                    return call
            return None

        return await self.wait_for(found, timeout, f"{method} {route}")

    def calls_to(self, method: str, route: str) -> list[RecordedCall]:
        shape = _shape(route)
        return [
            c
            for c in self.calls
            if c.method == method
            and (c.path == route or (c.route is not None and _shape(c.route) == shape))
        ]

    @property
    def connected(self) -> bool:
        return any(s.ready and s.connection is not None for s in self._sessions.values())

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Wait for a bot that has IDENTIFYed and been sent every GUILD_CREATE."""
        await self.wait_for(lambda: self.connected, timeout, "a connected, ready bot")

    # ------------------------------------------------------------------ world payloads

    def _role(self, role_id: int, name: str, permissions: int, position: int) -> JSON:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _add_channel(
        self, kind: int, name: str, *, position: int, parent: int | None = None
    ) -> int:
        channel_id = self._snowflake()
        channel: JSON = {
            "id": str(channel_id),
            "type": kind,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": position,
            "parent_id": str(parent) if parent else None,
            "permission_overwrites": [],
            "nsfw": False,
            "flags": 0,
        }
        if kind in (0, 5):
            channel |= {
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "default_auto_archive_duration": 1440,
            }
        elif kind == 2:
            channel |= {
                "bitrate": 64000,
                "user_limit": 0,
                "rtc_region": None,
                "last_message_id": None,
            }
        self.channels[channel_id] = channel
        return channel_id

    def add_user(self, username: str, *, moderator: bool = False, bot: bool = False) -> FakeUser:
        """Add a guild member (optionally with the Moderator role)."""
        roles = (self.moderator_role_id,) if moderator else ()
        user = FakeUser(self._snowflake(), username, bot=bot, role_ids=roles)
        self.users[user.id] = user
        return user

    def user_payload(self, user: FakeUser) -> JSON:
        return {
            "id": str(user.id),
            "username": user.username,
            "discriminator": "0",
            "global_name": None if user.bot else user.username.title(),
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "bot": user.bot,
        }

    def member_payload(self, user: FakeUser, *, with_user: bool = True) -> JSON:
        member: JSON = {
            "nick": None,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in user.role_ids],
            "joined_at": _iso(self._joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self.user_payload(user)
        return member

    def permissions_of(self, user: FakeUser) -> int:
        if user.id == self.owner.id:
            return Perm.ALL
        value = int(self.roles[self.guild_id]["permissions"])
        for role_id in user.role_ids:
            value |= int(self.roles[role_id]["permissions"])
        return Perm.ALL if value & Perm.ADMINISTRATOR else value

    @property
    def upload_limit(self) -> int:
        if self._upload_limit_override is not None:
            return self._upload_limit_override
        return TIER_UPLOAD_LIMITS.get(self.premium_tier, 10 * MIB)

    @upload_limit.setter
    def upload_limit(self, value: int | None) -> None:
        self._upload_limit_override = value

    async def set_premium_tier(self, tier: int) -> None:
        """Change the boost tier (and with it the upload limit) and tell the bot (GUILD_UPDATE)."""
        self.premium_tier = tier
        await self._dispatch("GUILD_UPDATE", self.guild_payload(), Intent.GUILDS)

    def guild_payload(self) -> JSON:
        return {
            "id": str(self.guild_id),
            "name": "WAN Test Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": [],
            "application_id": None,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": {0: 0, 1: 2, 2: 7, 3: 14}.get(self.premium_tier, 0),
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "max_members": 500000,
            "max_video_channel_users": 25,
            "approximate_member_count": len(self.users),
            "approximate_presence_count": 0,
        }

    def _guild_create_payload(self) -> JSON:
        guild = self.guild_payload()
        guild.pop("approximate_member_count")
        guild.pop("approximate_presence_count")
        # Like Discord: only active threads; archived ones the bot learns of when it asks.
        threads = [
            c
            for c in self.channels.values()
            if c["type"] in (10, 11, 12) and not c["thread_metadata"]["archived"]
        ]
        return guild | {
            "joined_at": _iso(self._joined_at),
            "large": False,
            "unavailable": False,
            "member_count": len(self.users),
            "voice_states": [],
            # Like Discord for bots without the presences intent: only the bot itself; the
            # rest come from GUILD_MEMBERS_CHUNK (op 8), interactions and messages.
            "members": [self.member_payload(self.bot_user)],
            "channels": [c for c in self.channels.values() if c["type"] not in (10, 11, 12)],
            "threads": threads,
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _application_payload(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": "WAN Bot",
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(str(self.application_id).encode()).hexdigest(),
            "owner": self.user_payload(self.owner),
            "team": None,
            "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "bot": self.user_payload(self.bot_user),
            "approximate_guild_count": 1,
        }

    def channel(self, channel_id: int) -> JSON:
        found = self.channels.get(channel_id) or self.dm_channels.get(channel_id)
        if found is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return found

    # ------------------------------------------------------------------ attachments / CDN

    def register_file(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        *,
        ephemeral: bool = True,
        channel_id: int | None = None,
        width: int | None = None,
        height: int | None = None,
        duration_secs: float | None = None,
    ) -> JSON:
        """Store a user's file on the fake CDN and return its attachment payload.

        Defaults suit a file attached to a slash-command option (ephemeral); pass
        ``ephemeral=False`` for one attached to a regular message via ``post_message``.
        """
        blob = self._store_blob(
            channel_id or self.channel_id,
            data,
            filename,
            content_type,
            ephemeral=ephemeral,
            width=width,
            height=height,
            duration_secs=duration_secs,
        )
        return self.attachment_payload(blob.id)

    def _store_blob(
        self,
        channel_id: int,
        data: bytes,
        filename: str,
        content_type: str | None,
        *,
        ephemeral: bool = False,
        width: int | None = None,
        height: int | None = None,
        duration_secs: float | None = None,
        description: str | None = None,
    ) -> _Blob:
        # Discord sniffs the type itself (discord.py sends every part as octet-stream).
        content_type = content_type or mimetypes.guess_type(filename)[0]
        if width is None and content_type and content_type.startswith("image/"):
            size = image_size(data)
            if size is not None:
                width, height = size
        blob = _Blob(
            id=self._snowflake(),
            channel_id=channel_id,
            filename=filename.replace(" ", "_"),
            data=data,
            content_type=content_type,
            ephemeral=ephemeral,
            width=width,
            height=height,
            duration_secs=duration_secs,
            description=description,
        )
        self._blobs[blob.id] = blob
        return blob

    def attachment_payload(self, attachment_id: int) -> JSON:
        """The attachment as Discord would send it now (freshly signed URLs)."""
        blob = self._blobs[attachment_id]
        payload: JSON = {
            "id": str(blob.id),
            "filename": blob.filename,
            "size": len(blob.data),
            "url": self._cdn_url(blob, proxy=False),
            "proxy_url": self._cdn_url(blob, proxy=True),
            "content_type": blob.content_type,
        }
        if blob.width is not None and blob.height is not None:
            payload |= {"width": blob.width, "height": blob.height}
        if blob.duration_secs is not None:
            payload["duration_secs"] = blob.duration_secs
        if blob.description is not None:
            payload["description"] = blob.description
        if blob.ephemeral:
            payload["ephemeral"] = True
        return payload

    def attachment_bytes(self, attachment_id: int) -> bytes:
        return self._blobs[attachment_id].data

    def remove_attachment(self, attachment_id: int) -> None:
        """Make a stored file disappear (its URLs then answer 404)."""
        self._blobs[attachment_id].removed = True

    def expire_ephemeral_attachments(self) -> None:
        """Discord removes slash-command uploads after a while; do it now."""
        for blob in self._blobs.values():
            if blob.ephemeral:
                blob.removed = True

    def _sign(self, blob_id: int, expires: str, issued: str) -> str:
        message = f"{blob_id}:{expires}:{issued}".encode()
        return hmac.new(self._cdn_secret, message, hashlib.sha256).hexdigest()

    def _cdn_url(self, blob: _Blob, *, proxy: bool) -> str:
        issued = int(self.now())
        expires, issued_hex = f"{issued + int(self.url_ttl):x}", f"{issued:x}"
        kind = "ephemeral-attachments" if blob.ephemeral else "attachments"
        host = self.base_url + ("/media" if proxy else "")
        signature = self._sign(blob.id, expires, issued_hex)
        path = f"{kind}/{blob.channel_id}/{blob.id}/{quote(blob.filename)}"
        # Discord's links carry ex (expiry), is (issued) and hm (signature), and end with "&".
        return f"{host}/{path}?ex={expires}&is={issued_hex}&hm={signature}&"

    def _blob_for_url(self, url: str) -> _Blob | None:
        match = _CDN_PATH.match(urlsplit(url).path)
        if match is None:
            return None
        kind, channel_id, blob_id = match.groups()
        blob = self._blobs.get(int(blob_id))
        if blob is None or blob.removed or int(channel_id) != blob.channel_id:
            return None
        if (kind == "ephemeral-attachments") != blob.ephemeral:
            return None
        return blob

    async def _serve_cdn(self, request: web.Request) -> web.StreamResponse:
        blob = self._blob_for_url(str(request.rel_url))
        query = request.query
        valid = blob is not None and hmac.compare_digest(
            self._sign(blob.id, query.get("ex", ""), query.get("is", "")), query.get("hm", "")
        )
        try:
            fresh = int(query.get("ex", "0"), 16) > self.now()
        except ValueError:
            fresh = False
        if blob is None or not valid or not fresh:
            response = web.Response(status=404, text="This content is no longer available.")
        else:
            response = _ranged_response(
                blob.data,
                blob.content_type or "application/octet-stream",
                request.headers.get("Range"),
            )
        self.cdn_requests.append((request.path, response.status))
        self._notify()
        return response

    # ------------------------------------------------------------------ faults

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

        def respond(shape: str) -> web.Response:
            headers = {
                "Retry-After": str(max(1, round(retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{self.now() + retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Bucket": self._bucket(shape),
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
            return _json_response(429, body, headers)

        self._faults.append(_Fault(self._routes(method, route), False, times, respond))

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
        body = _error_body(code, message or f"{status}: fake failure")
        self._faults.append(
            _Fault(
                self._routes(method, route), False, times, lambda _: _json_response(status, body)
            )
        )

    def forbid_thread_creation(self, *, times: int = 1) -> None:
        """The next ``times`` thread creations fail with 403 Missing Permissions (50013)."""
        routes = frozenset(
            {
                ("POST", _shape("/channels/{channel_id}/messages/{message_id}/threads")),
                ("POST", _shape("/channels/{channel_id}/threads")),
            }
        )
        body = _error_body(50013, "Missing Permissions")
        self._faults.append(_Fault(routes, False, times, lambda _: _json_response(403, body)))

    def refuse_thread_creation_at_limit(self, *, times: int = 1) -> None:
        """The next ``times`` thread creations fail as on a server at Discord's limit of active
        threads: 400, code 160006."""
        routes = frozenset(
            {
                ("POST", _shape("/channels/{channel_id}/messages/{message_id}/threads")),
                ("POST", _shape("/channels/{channel_id}/threads")),
            }
        )
        body = _error_body(160006, "Maximum number of active threads reached")
        self._faults.append(_Fault(routes, False, times, lambda _: _json_response(400, body)))

    async def archive_thread(self, thread_id: int, *, locked: bool = False) -> None:
        """Archive a thread (and lock it), as its auto-archive timer or a moderator does.

        The bot gets THREAD_UPDATE (discord.py then drops the thread from its cache) and the
        thread is left out of later GUILD_CREATEs. A post in an archived thread unarchives it;
        in a locked one every post and every edit is refused (400, 50083).
        """
        thread = self.threads[thread_id]
        thread["thread_metadata"] |= {
            "archived": True,
            "locked": locked,
            "archive_timestamp": _iso(self.now()),
        }
        await self._dispatch("THREAD_UPDATE", thread, Intent.GUILDS)

    async def delete_thread(self, thread_id: int) -> None:
        """Delete a thread and its messages (THREAD_DELETE); its starter message stays."""
        thread = self.channels.pop(thread_id)
        for message in self.channel_messages(thread_id, include_ephemeral=True):
            self._delete(int(message["id"]))
        starter = self.messages.get(thread_id)
        if starter is not None:
            starter.pop("thread", None)
            starter["flags"] &= ~MessageFlag.HAS_THREAD
        data = {
            "id": thread["id"],
            "guild_id": thread["guild_id"],
            "parent_id": thread["parent_id"],
            "type": thread["type"],
        }
        await self._dispatch("THREAD_DELETE", data, Intent.GUILDS)

    def close_dms(self, user: FakeUser) -> None:
        """``user`` takes no DMs from the bot: sending one fails with 403, code 50007."""
        self.dms_closed.add(user.id)

    def fail_uploads(self, *, status: int = 503, times: int = 1) -> None:
        """The next ``times`` requests carrying files fail with ``status``.

        discord.py retries 500/502/504 (with 1 s, 3 s... sleeps) on bot routes and every 5xx on
        webhook routes; 503 on a bot route surfaces at once as DiscordServerError.
        """
        body = _error_body(0, f"{status}: upload failed (injected)")
        self._faults.append(_Fault(None, True, times, lambda _: _json_response(status, body)))

    def clear_faults(self) -> None:
        self._faults.clear()

    @staticmethod
    def _routes(method: str, route: str) -> frozenset[tuple[str, str]]:
        return frozenset({(method.upper(), _shape(route) if "{" in route else route)})

    @staticmethod
    def _bucket(shape: str) -> str:
        return hashlib.sha1(shape.encode(), usedforsecurity=False).hexdigest()[:16]

    def _take_fault(self, method: str, route: str, path: str, has_files: bool) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(method, route, path, has_files):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ REST plumbing

    def _add_routes(self, app: web.Application) -> None:
        app_ = "/applications/{application_id}"
        hook = "/webhooks/{application_id}/{token}"
        channel = "/channels/{channel_id}"
        message = channel + "/messages/{message_id}"
        routes: list[tuple[str, str, Callable[[_Ctx], Awaitable[web.Response]]]] = [
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("GET", "/users/@me", self._get_me),
            ("GET", "/users/{user_id}", self._get_user),
            ("POST", "/users/@me/channels", self._open_dm),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/applications/@me", self._get_application),
            ("GET", app_ + "/commands", self._get_commands),
            ("PUT", app_ + "/commands", self._put_commands),
            ("POST", app_ + "/commands", self._post_command),
            ("GET", app_ + "/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", app_ + "/guilds/{guild_id}/commands", self._put_commands),
            ("POST", app_ + "/guilds/{guild_id}/commands", self._post_command),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._interaction_callback),
            ("POST", hook, self._post_followup),
            ("GET", hook + "/messages/{message_id}", self._get_wh_message),
            ("PATCH", hook + "/messages/{message_id}", self._edit_wh_message),
            ("DELETE", hook + "/messages/{message_id}", self._del_wh_message),
            ("GET", channel, self._get_channel),
            ("GET", channel + "/messages", self._list_messages),
            ("POST", channel + "/messages", self._post_message),
            ("GET", message, self._get_message),
            ("PATCH", message, self._edit_message),
            ("DELETE", message, self._delete_message),
            ("POST", message + "/threads", self._thread_from_message),
            ("POST", channel + "/threads", self._thread_without_message),
            ("POST", channel + "/typing", self._typing),
            ("POST", "/attachments/refresh-urls", self._refresh_urls),
            ("GET", "/guilds/{guild_id}", self._get_guild),
            ("GET", "/guilds/{guild_id}/channels", self._get_guild_channels),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member),
        ]
        for method, template, handler in routes:
            app.router.add_route(method, API_PREFIX + template, self._endpoint(template, handler))
        app.router.add_get("/gateway", self._gateway)
        for prefix in ("", "/media"):
            for kind in ("attachments", "ephemeral-attachments"):
                path = f"{prefix}/{kind}/{{channel_id}}/{{attachment_id}}/{{filename}}"
                app.router.add_get(path, self._serve_cdn)
        app.router.add_route("*", "/{tail:.*}", self._endpoint(None, None))

    def _endpoint(
        self, template: str | None, handler: Callable[[_Ctx], Awaitable[web.Response]] | None
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a handler (None: unknown endpoint) with parsing, recording, auth and faults."""

        async def run(request: web.Request) -> web.StreamResponse:
            path = request.path
            if path.startswith(API_PREFIX + "/"):
                path = path[len(API_PREFIX) :]
            authorized = request.headers.get("Authorization") == f"Bot {self.token}"
            call = RecordedCall(
                request.method, path, template, dict(request.query), None, [], authorized
            )
            self.calls.append(call)
            self._notify()
            try:
                try:
                    body, parts = await _read_body(request)
                except ConnectionResetError:
                    # The client went away mid-request (the bot stopped or was killed): nothing
                    # to answer, and no fault of the fake. The call keeps status 0 (unanswered).
                    self.dropped.append(call)
                    self._notify()
                    return web.Response(status=499)
                call.json = body
                call.files = [
                    UploadedFile(p.field, p.filename, len(p.data), p.content_type) for p in parts
                ]
                ctx = _Ctx(dict(request.match_info), dict(request.query), body, parts)
                response = await self._answer(call, template, ctx, handler)
            except ApiError as exc:
                response = _json_response(exc.status, _error_body(exc.code, exc.message))
            except ConnectionError as exc:
                # The bot went away mid-request (killed in a crash test): no fault of the fake.
                log.info(
                    "fake Discord: %s %s cut off by the client (%r)", request.method, path, exc
                )
                response = _json_response(499, _error_body(0, "client closed request"))
            except Exception as exc:
                log.exception("fake Discord: %s %s crashed", request.method, path)
                self.server_errors.append(f"{request.method} {path}: {exc!r}")
                response = _json_response(500, _error_body(0, "500: Internal Server Error"))
            call.status = response.status
            if isinstance(response.body, bytes) and response.content_type == "application/json":
                call.response = json.loads(response.body)
            if template is not None and response.status != 429:
                response.headers.update(self._ratelimit_headers(template))
            self._notify()
            return response

        return run

    def _ratelimit_headers(self, template: str) -> dict[str, str]:
        # A roomy bucket that never runs dry, so discord.py never pre-emptively sleeps.
        return {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{self.now() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": self._bucket(_shape(template)),
        }

    async def _answer(
        self,
        call: RecordedCall,
        template: str | None,
        ctx: _Ctx,
        handler: Callable[[_Ctx], Awaitable[web.Response]] | None,
    ) -> web.Response:
        if template is None or handler is None:
            # Recorded so a test can see which endpoint the fake is missing.
            self.unhandled.append(call)
            log.warning("fake Discord has no endpoint for %s %s", call.method, call.path)
            return _json_response(404, _error_body(0, "404: Not Found"))
        shape = _shape(template)
        if not shape.startswith(_TOKEN_ROUTES) and not call.authorized:
            return _json_response(401, _error_body(0, "401: Unauthorized"))
        fault = self._take_fault(call.method, template, call.path, bool(ctx.files))
        if fault is not None:
            return fault.respond(shape)
        if any(len(part.data) > self.upload_limit for part in ctx.files):
            return _json_response(413, _error_body(40005, "Request entity too large"))
        return await handler(ctx)

    # ------------------------------------------------------------------ REST: identity

    async def _get_gateway(self, ctx: _Ctx) -> web.Response:
        return _json_response(200, {"url": self.gateway_url})

    async def _get_gateway_bot(self, ctx: _Ctx) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return _json_response(
            200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}
        )

    def _me_payload(self) -> JSON:
        return self.user_payload(self.bot_user) | {
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "flags": 0,
            "email": None,
        }

    async def _get_me(self, ctx: _Ctx) -> web.Response:
        return _json_response(200, self._me_payload())

    async def _get_user(self, ctx: _Ctx) -> web.Response:
        user = self.users.get(ctx.id("user_id"))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return _json_response(200, self.user_payload(user))

    async def _get_application(self, ctx: _Ctx) -> web.Response:
        return _json_response(200, self._application_payload())

    async def _open_dm(self, ctx: _Ctx) -> web.Response:
        try:
            user = self.users[int(ctx.json().get("recipient_id") or 0)]
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, 50033, "Invalid Recipient(s)") from None
        found = next(
            (c for c in self.dm_channels.values() if int(c["recipients"][0]["id"]) == user.id),
            None,
        )
        if found is None:
            channel_id = self._snowflake()
            found = {
                "id": str(channel_id),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.user_payload(user)],
            }
            self.dm_channels[channel_id] = found
        return _json_response(200, found)

    # ------------------------------------------------------------------ REST: commands

    def _command_scope(self, ctx: _Ctx) -> int | None:
        if ctx.id("application_id") != self.application_id:
            raise ApiError(403, 50001, "Missing Access")
        if "guild_id" not in ctx.params:
            return None
        if ctx.id("guild_id") != self.guild_id:
            raise ApiError(403, 50001, "Missing Access")
        return self.guild_id

    def _store_command(self, scope: int | None, spec: JSON, existing: list[JSON]) -> JSON:
        kind = spec.get("type", 1)
        old = next((c for c in existing if c["name"] == spec["name"] and c["type"] == kind), None)
        if old is None:
            self.command_creations[scope] = self.command_creations.get(scope, 0) + 1
        command: JSON = {
            "default_member_permissions": None,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "options": [],
        } | spec
        command |= {
            "id": old["id"] if old else str(self._snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "version": str(self._snowflake()),
            "description": spec.get("description", ""),
        }
        if scope is not None:
            command["guild_id"] = str(scope)
        return command

    async def _get_commands(self, ctx: _Ctx) -> web.Response:
        return _json_response(200, self.commands.get(self._command_scope(ctx), []))

    async def _put_commands(self, ctx: _Ctx) -> web.Response:
        scope = self._command_scope(ctx)
        if not isinstance(ctx.body, list):
            raise ApiError(400, 50035, "Invalid Form Body")
        existing = self.commands.get(scope, [])
        self.commands[scope] = [self._store_command(scope, spec, existing) for spec in ctx.body]
        return _json_response(200, self.commands[scope])

    async def _post_command(self, ctx: _Ctx) -> web.Response:
        scope = self._command_scope(ctx)
        existing = self.commands.setdefault(scope, [])
        command = self._store_command(scope, ctx.json(), existing)
        existing[:] = [c for c in existing if c["id"] != command["id"]] + [command]
        return _json_response(201, command)

    def find_command(self, name: str) -> JSON | None:
        """A synced command by top-level name: guild commands first, then global."""
        for scope in (self.guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name and command["type"] == 1:
                    return command
        return None

    # ------------------------------------------------------------------ REST: messages

    def _visible_message(self, channel_id: int, message_id: int) -> JSON:
        """A message readable through the channel (ephemeral ones are not)."""
        message = self.messages.get(message_id)
        if (
            message is None
            or int(message["channel_id"]) != channel_id
            or message["flags"] & MessageFlag.EPHEMERAL
        ):
            raise ApiError(404, 10008, "Unknown Message")
        return message

    def render(self, message: JSON) -> JSON:
        """A message as Discord would return it now: attachment URLs freshly signed."""
        out = copy.deepcopy(message)
        for attachment in out.get("attachments", []):
            blob = self._blobs.get(int(attachment["id"]))
            if blob is not None and not blob.removed:
                attachment |= self.attachment_payload(blob.id)
        referenced = out.get("referenced_message")
        if referenced:
            out["referenced_message"] = self.render(referenced)
        return out

    def _attachments(
        self, channel_id: int, spec: Any, parts: list[_Part], existing: list[JSON]
    ) -> list[JSON]:
        """Resolve an ``attachments`` list: keep existing ids, upload ``files[N]`` parts."""
        by_index = {p.field.removeprefix("files[").removesuffix("]"): p for p in parts}
        wanted: list[tuple[_Part, JSON]]
        if not isinstance(spec, list):
            kept, wanted = list(existing), [(part, {}) for part in parts]
        else:
            old = {a["id"]: a for a in existing}
            kept = [old[str(s["id"])] for s in spec if str(s.get("id")) in old]
            wanted = [(by_index[str(s["id"])], s) for s in spec if str(s.get("id")) in by_index]
            named = {id(part) for part, _ in wanted}
            wanted += [(part, {}) for part in parts if id(part) not in named]
        for part, meta in wanted:
            blob = self._store_blob(
                channel_id,
                part.data,
                meta.get("filename") or part.filename,
                None,
                duration_secs=meta.get("duration_secs"),
                description=meta.get("description"),
            )
            kept.append(self.attachment_payload(blob.id))
        return kept

    def _mentions(
        self, content: str, allowed: Any, replied_author: int | None, extra: Sequence[int] = ()
    ) -> list[JSON]:
        ids = [int(m) for m in _MENTION.findall(content)]
        if isinstance(allowed, dict):
            users = {int(u) for u in allowed.get("users", [])}
            ids = [i for i in ids if "users" in allowed.get("parse", []) or i in users]
        if replied_author is not None and (
            not isinstance(allowed, dict) or allowed.get("replied_user", False)
        ):
            ids.append(replied_author)
        ids += extra
        out: list[JSON] = []
        for user_id in dict.fromkeys(ids):
            user = self.users.get(user_id)
            if user is not None:
                out.append(
                    self.user_payload(user) | {"member": self.member_payload(user, with_user=False)}
                )
        return out

    def _validate_content(self, body: JSON, has_attachments: bool) -> None:
        content = body.get("content") or ""
        if len(content) > 2000:
            raise ApiError(
                400, 50035, "Invalid Form Body (content: Must be 2000 or fewer in length.)"
            )
        if len(body.get("embeds") or []) > 10:
            raise ApiError(400, 50035, "Invalid Form Body (embeds: Must be 10 or fewer in length.)")
        if not (content or body.get("embeds") or body.get("components") or has_attachments):
            raise ApiError(400, 50006, "Cannot send an empty message")

    def _create_message(
        self,
        channel_id: int,
        author: FakeUser,
        body: JSON,
        parts: list[_Part],
        *,
        interaction: FakeInteraction | None = None,
        ephemeral: bool = False,
        loading: bool = False,
        uploaded: Sequence[JSON] = (),
        mentions: Sequence[FakeUser] = (),
    ) -> JSON:
        """Store a new message. ``uploaded`` are files already on the CDN (a user's post)."""
        channel = self.channel(channel_id)
        if not loading:
            self._validate_content(body, bool(parts) or bool(body.get("attachments") or uploaded))
        now = self.now()
        message_id = self._snowflake()
        flags = int(body.get("flags") or 0) & MessageFlag.CLIENT_SETTABLE
        flags |= (MessageFlag.EPHEMERAL if ephemeral else 0) | (
            MessageFlag.LOADING if loading else 0
        )
        message: JSON = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0,
            "author": self.user_payload(author),
            "content": body.get("content") or "",
            "timestamp": _iso(now),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mention_roles": [],
            "attachments": [
                *(self.attachment_payload(int(a["id"])) for a in uploaded),
                *self._attachments(channel_id, body.get("attachments"), parts, []),
            ],
            "embeds": [{"type": "rich"} | e for e in body.get("embeds") or []],
            "components": body.get("components") or [],
            "pinned": False,
            "flags": flags,
        }
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        replied_author = self._attach_reference(message, channel_id, body.get("message_reference"))
        message["mentions"] = self._mentions(
            message["content"],
            body.get("allowed_mentions"),
            replied_author,
            [u.id for u in mentions],
        )
        if interaction is not None:
            self._mark_interaction_message(message, interaction)
        if channel["type"] in (10, 11, 12):
            message["position"] = channel["total_message_sent"]
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
        if not ephemeral and "last_message_id" in channel:
            channel["last_message_id"] = str(message_id)
        self.messages[message_id] = message
        return message

    def _attach_reference(self, message: JSON, channel_id: int, reference: Any) -> int | None:
        if not isinstance(reference, dict) or reference.get("message_id") is None:
            return None
        target = self.messages.get(int(reference["message_id"]))
        if target is None or int(target["channel_id"]) != channel_id:
            if reference.get("fail_if_not_exists", True):
                raise ApiError(400, 50035, "Invalid Form Body (message_reference: Unknown message)")
            return None
        message["type"] = 19
        message["message_reference"] = {
            "type": 0,
            "message_id": target["id"],
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
        }
        referenced = copy.deepcopy(target)
        referenced.pop("referenced_message", None)
        message["referenced_message"] = referenced
        return int(target["author"]["id"])

    def _mark_interaction_message(self, message: JSON, interaction: FakeInteraction) -> None:
        user = self.users[interaction.user_id]
        message["webhook_id"] = str(self.application_id)
        message["application_id"] = str(self.application_id)
        message["type"] = 20 if interaction.type == 2 else 0
        metadata: JSON = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": self.user_payload(user),
            "authorizing_integration_owners": {"0": str(self.guild_id)},
        }
        if interaction.type == 2:
            metadata["name"] = interaction.name
            metadata["command_type"] = 1
        elif interaction.message_id is not None:
            metadata["interacted_message_id"] = str(interaction.message_id)
        message["interaction_metadata"] = metadata
        message["interaction"] = {
            "id": str(interaction.id),
            "type": interaction.type,
            "name": interaction.name,
            "user": self.user_payload(user),
        }

    def _apply_edit(self, message: JSON, body: JSON, parts: list[_Part]) -> None:
        was_loading = bool(message["flags"] & MessageFlag.LOADING)
        for key in ("content", "components"):
            if key in body:
                message[key] = body[key] or ("" if key == "content" else [])
        if "embeds" in body:
            message["embeds"] = [{"type": "rich"} | e for e in body["embeds"] or []]
        if "flags" in body and body["flags"] is not None:
            server_bits = message["flags"] & ~MessageFlag.CLIENT_SETTABLE
            message["flags"] = server_bits | (int(body["flags"]) & MessageFlag.CLIENT_SETTABLE)
        if "attachments" in body or parts:
            message["attachments"] = self._attachments(
                int(message["channel_id"]), body.get("attachments"), parts, message["attachments"]
            )
        if "content" in body or "allowed_mentions" in body:
            message["mentions"] = self._mentions(
                message["content"], body.get("allowed_mentions"), None
            )
        message["flags"] &= ~MessageFlag.LOADING
        # Filling a "thinking..." message is not an edit as far as users can tell.
        message["edited_timestamp"] = None if was_loading else _iso(self.now())

    def _delete(self, message_id: int) -> JSON:
        message = self.messages.pop(message_id)
        self.deleted_messages[message_id] = message
        for attachment in message["attachments"]:
            blob = self._blobs.get(int(attachment["id"]))
            if blob is not None:
                blob.removed = True
        return message

    def _check_postable(self, channel: JSON) -> bool:
        """Refuse a post where Discord would; True when the post unarchives a thread."""
        if channel["type"] == 1:
            if int(channel["recipients"][0]["id"]) in self.dms_closed:
                raise ApiError(403, 50007, "Cannot send messages to this user")
            return False
        metadata = channel.get("thread_metadata")
        if metadata is None or not metadata["archived"]:
            return False
        if metadata["locked"]:
            raise ApiError(400, 50083, "Thread is archived")
        return True

    async def _unarchive(self, channel: JSON) -> None:
        # Sent after the message that unarchived the thread: Discord promises no order, and a
        # bot must not need the thread in its cache to read the message.
        channel["thread_metadata"]["archived"] = False
        await self._dispatch("THREAD_UPDATE", channel, Intent.GUILDS)

    async def _post_message(self, ctx: _Ctx) -> web.Response:
        channel_id = ctx.id("channel_id")
        unarchives = self._check_postable(self.channel(channel_id))
        body = ctx.json()
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            raise ApiError(400, 50035, "Invalid Form Body (nonce: Must be 25 or fewer in length.)")
        if body.get("enforce_nonce") and nonce is not None:
            earlier = self._nonces.get((self.bot_user.id, str(nonce)))
            if (
                earlier
                and self.now() - earlier[1] <= self.nonce_window
                and earlier[0] in self.messages
            ):
                return _json_response(200, self.render(self.messages[earlier[0]]))
        message = self._create_message(channel_id, self.bot_user, body, ctx.files)
        if nonce is not None:
            self._nonces[(self.bot_user.id, str(nonce))] = (int(message["id"]), self.now())
        await self._dispatch_message("MESSAGE_CREATE", message)
        if unarchives:
            await self._unarchive(self.channel(channel_id))
        return _json_response(200, self.render(message))

    async def _list_messages(self, ctx: _Ctx) -> web.Response:
        channel_id = ctx.id("channel_id")
        self.channel(channel_id)
        limit = max(1, min(100, ctx.query_int("limit", 50)))
        before, after = ctx.query_int("before", 1 << 63), ctx.query_int("after", 0)
        found = [
            self.render(m)
            for m in self.channel_messages(channel_id)
            if after < int(m["id"]) < before
        ]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        return _json_response(200, found[:limit])

    async def _get_message(self, ctx: _Ctx) -> web.Response:
        message = self._visible_message(ctx.id("channel_id"), ctx.id("message_id"))
        return _json_response(200, self.render(message))

    async def _edit_message(self, ctx: _Ctx) -> web.Response:
        message = self._visible_message(ctx.id("channel_id"), ctx.id("message_id"))
        if int(message["author"]["id"]) != self.bot_user.id or "webhook_id" in message:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        metadata = self.channel(int(message["channel_id"])).get("thread_metadata")
        if metadata is not None and metadata["archived"]:
            raise ApiError(400, 50083, "Thread is archived")
        self._apply_edit(message, ctx.json(), ctx.files)
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return _json_response(200, self.render(message))

    async def _delete_message(self, ctx: _Ctx) -> web.Response:
        message = self._visible_message(ctx.id("channel_id"), ctx.id("message_id"))
        self._delete(int(message["id"]))
        await self._dispatch_delete(message)
        return web.Response(status=204)

    async def _typing(self, ctx: _Ctx) -> web.Response:
        self.channel(ctx.id("channel_id"))
        return web.Response(status=204)

    async def _refresh_urls(self, ctx: _Ctx) -> web.Response:
        urls = ctx.json().get("attachment_urls")
        if not isinstance(urls, list) or not 1 <= len(urls) <= 50:
            raise ApiError(400, 50035, "Invalid Form Body (attachment_urls)")
        refreshed = []
        for url in urls:
            # Links to files that no longer exist are left out, as they cannot be refreshed.
            blob = self._blob_for_url(str(url))
            if blob is not None:
                fresh = self._cdn_url(blob, proxy=str(url).startswith(self.base_url + "/media"))
                refreshed.append({"original": url, "refreshed": fresh})
        return _json_response(200, {"refreshed_urls": refreshed})

    # ------------------------------------------------------------------ REST: channels, guild

    async def _get_channel(self, ctx: _Ctx) -> web.Response:
        return _json_response(200, self.channel(ctx.id("channel_id")))

    async def _get_guild(self, ctx: _Ctx) -> web.Response:
        if ctx.id("guild_id") != self.guild_id:
            raise ApiError(404, 10004, "Unknown Guild")
        return _json_response(200, self.guild_payload())

    async def _get_guild_channels(self, ctx: _Ctx) -> web.Response:
        if ctx.id("guild_id") != self.guild_id:
            raise ApiError(404, 10004, "Unknown Guild")
        channels = [c for c in self.channels.values() if c["type"] not in (10, 11, 12)]
        return _json_response(200, channels)

    async def _get_member(self, ctx: _Ctx) -> web.Response:
        user = self.users.get(ctx.id("user_id"))
        if ctx.id("guild_id") != self.guild_id:
            raise ApiError(404, 10004, "Unknown Guild")
        if user is None:
            raise ApiError(404, 10007, "Unknown Member")
        return _json_response(200, self.member_payload(user))

    def _new_thread(self, thread_id: int, parent: JSON, body: JSON, kind: int) -> JSON:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise ApiError(
                400, 50035, "Invalid Form Body (name: Must be between 1 and 100 in length.)"
            )
        now = _iso(self.now())
        metadata: JSON = {
            "archived": False,
            "auto_archive_duration": body.get("auto_archive_duration") or 1440,
            "archive_timestamp": now,
            "locked": False,
            "create_timestamp": now,
        }
        if kind == 12:
            metadata["invitable"] = bool(body.get("invitable", True))
        thread: JSON = {
            "id": str(thread_id),
            "type": kind,
            "guild_id": str(self.guild_id),
            "parent_id": parent["id"],
            "owner_id": str(self.bot_user.id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": metadata,
            "member": {
                "id": str(thread_id),
                "user_id": str(self.bot_user.id),
                "join_timestamp": now,
                "flags": 0,
            },
        }
        self.channels[thread_id] = thread
        return thread

    def _thread_parent(self, channel_id: int) -> JSON:
        parent = self.channel(channel_id)
        if parent["type"] not in (0, 5):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        return parent

    async def _thread_from_message(self, ctx: _Ctx) -> web.Response:
        parent = self._thread_parent(ctx.id("channel_id"))
        message = self._visible_message(int(parent["id"]), ctx.id("message_id"))
        message_id = int(message["id"])
        if message_id in self.channels:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        # A thread started from a message shares that message's id.
        thread = self._new_thread(message_id, parent, ctx.json(), 10 if parent["type"] == 5 else 11)
        message["flags"] |= MessageFlag.HAS_THREAD
        message["thread"] = thread
        await self._dispatch("THREAD_CREATE", thread | {"newly_created": True}, Intent.GUILDS)
        return _json_response(201, thread)

    async def _thread_without_message(self, ctx: _Ctx) -> web.Response:
        parent = self._thread_parent(ctx.id("channel_id"))
        body = ctx.json()
        kind = int(body.get("type") or 12)  # Discord's default is a *private* thread
        if kind not in (10, 11, 12):
            raise ApiError(400, 50035, "Invalid Form Body (type)")
        thread = self._new_thread(self._snowflake(), parent, body, kind)
        await self._dispatch("THREAD_CREATE", thread | {"newly_created": True}, Intent.GUILDS)
        return _json_response(201, thread)

    # ------------------------------------------------------------------ REST: interactions

    def _interaction_by_token(self, application_id: str, token: str) -> FakeInteraction:
        interaction = self._interactions_by_token.get(token)
        if interaction is None or application_id != str(self.application_id):
            raise ApiError(404, 10015, "Unknown Webhook")
        if self.now() - interaction.created_at > self.token_lifetime:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _interaction_callback(self, ctx: _Ctx) -> web.Response:
        interaction = self.interactions.get(ctx.id("interaction_id"))
        if interaction is None or not hmac.compare_digest(interaction.token, ctx.params["token"]):
            raise ApiError(404, 10062, "Unknown interaction")
        if interaction.response_type is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if self.now() - interaction.created_at > self.response_window:
            raise ApiError(404, 10062, "Unknown interaction")
        body = ctx.json()
        kind = body.get("type")
        data = body.get("data") or {}
        message = await self._respond(interaction, kind, data, ctx.files)
        interaction.response_type = kind
        interaction.response_data = data
        if ctx.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        resource: JSON = {"type": kind}
        if message is not None:
            resource["message"] = self.render(message)
        callback = {
            "id": str(interaction.id),
            "type": interaction.type,
            "response_message_id": message["id"] if message else None,
            "response_message_loading": interaction.loading,
            "response_message_ephemeral": interaction.ephemeral,
        }
        return _json_response(200, {"interaction": callback, "resource": resource})

    async def _respond(
        self, interaction: FakeInteraction, kind: Any, data: JSON, parts: list[_Part]
    ) -> JSON | None:
        ephemeral = bool(int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)
        component = interaction.type == 3
        if kind == 4 or kind == 5:
            message = self._create_message(
                interaction.channel_id,
                self.bot_user,
                data,
                parts,
                interaction=interaction,
                ephemeral=ephemeral,
                loading=kind == 5,
            )
            interaction.original_message_id = int(message["id"])
            interaction.ephemeral, interaction.loading = ephemeral, kind == 5
            await self._dispatch_message("MESSAGE_CREATE", message)
            return message
        if kind in (6, 7) and component and interaction.message_id is not None:
            # For component interactions "@original" is the message the component is on.
            interaction.original_message_id = interaction.message_id
            target = self.messages.get(interaction.message_id)
            if target is None:
                raise ApiError(404, 10008, "Unknown Message")
            interaction.ephemeral = bool(target["flags"] & MessageFlag.EPHEMERAL)
            if kind == 7:
                self._apply_edit(target, data, parts)
                await self._dispatch_message("MESSAGE_UPDATE", target)
            return target
        if (kind == 8 and interaction.type == 4) or (kind == 9 and interaction.type in (2, 3)):
            return None  # autocomplete result / modal: recorded in response_data
        raise ApiError(400, 50035, f"Invalid Form Body (type: {kind!r} not valid here)")

    def _interaction_message(self, interaction: FakeInteraction, ref: str) -> JSON:
        if ref == "@original":
            message_id = interaction.original_message_id
        else:
            try:
                message_id = int(ref)
            except ValueError:
                raise ApiError(404, 10008, "Unknown Message") from None
            if message_id not in (interaction.original_message_id, *interaction.followup_ids):
                message_id = None
        message = self.messages.get(message_id) if message_id is not None else None
        if message is None:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    async def _post_followup(self, ctx: _Ctx) -> web.Response:
        interaction = self._interaction_by_token(ctx.params["application_id"], ctx.params["token"])
        if interaction.response_type is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        if "thread_id" in ctx.query:
            raise ApiError(
                400, 50035, "Invalid Form Body (interaction follow-ups cannot target a thread)"
            )
        body = ctx.json()
        original = self.messages.get(interaction.original_message_id or 0)
        if original is not None and original["flags"] & MessageFlag.LOADING:
            # After a "thinking" defer the first follow-up fills the deferred message (same id,
            # same visibility as the defer, whatever flags the follow-up asks for).
            self._apply_edit(original, body, ctx.files)
            message = original
            await self._dispatch_message("MESSAGE_UPDATE", message)
        else:
            ephemeral = bool(int(body.get("flags") or 0) & MessageFlag.EPHEMERAL)
            message = self._create_message(
                interaction.channel_id,
                self.bot_user,
                body,
                ctx.files,
                interaction=interaction,
                ephemeral=ephemeral,
            )
            interaction.followup_ids.append(int(message["id"]))
            await self._dispatch_message("MESSAGE_CREATE", message)
        if ctx.query.get("wait") not in ("1", "true", "True"):
            return web.Response(status=204)
        return _json_response(200, self.render(message))

    async def _get_wh_message(self, ctx: _Ctx) -> web.Response:
        interaction = self._interaction_by_token(ctx.params["application_id"], ctx.params["token"])
        return _json_response(
            200, self.render(self._interaction_message(interaction, ctx.params["message_id"]))
        )

    async def _edit_wh_message(self, ctx: _Ctx) -> web.Response:
        interaction = self._interaction_by_token(ctx.params["application_id"], ctx.params["token"])
        message = self._interaction_message(interaction, ctx.params["message_id"])
        self._apply_edit(message, ctx.json(), ctx.files)
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return _json_response(200, self.render(message))

    async def _del_wh_message(self, ctx: _Ctx) -> web.Response:
        interaction = self._interaction_by_token(ctx.params["application_id"], ctx.params["token"])
        message = self._interaction_message(interaction, ctx.params["message_id"])
        self._delete(int(message["id"]))
        await self._dispatch_delete(message)
        return web.Response(status=204)

    # ------------------------------------------------------------------ reading state

    def message(self, message_id: int) -> JSON:
        return self.messages[message_id]

    def channel_messages(self, channel_id: int, *, include_ephemeral: bool = False) -> list[JSON]:
        """Messages in a channel or thread, oldest first."""
        return [
            m
            for m in self.messages.values()
            if int(m["channel_id"]) == channel_id
            and (include_ephemeral or not m["flags"] & MessageFlag.EPHEMERAL)
        ]

    def interaction_messages(self, interaction_id: int) -> list[JSON]:
        """What the user saw for an interaction: its original response, then follow-ups."""
        interaction = self.interactions[interaction_id]
        ids = [interaction.original_message_id, *interaction.followup_ids]
        return [self.messages[i] for i in ids if i is not None and i in self.messages]

    @property
    def threads(self) -> dict[int, JSON]:
        return {i: c for i, c in self.channels.items() if c["type"] in (10, 11, 12)}

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.gateway_refused:
            return web.Response(status=503, text="the gateway is down")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.gateway_queries.append(dict(request.query))
        connection = _Connection(ws, zlib_stream=request.query.get("compress") == "zlib-stream")
        self._connections.add(connection)
        try:
            await connection.send(
                {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_gateway_op(connection, json.loads(msg.data))
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._connections.discard(connection)
            if connection.session is not None and connection.session.connection is connection:
                connection.session.connection = None
            self._notify()
        return ws

    async def _on_gateway_op(self, connection: _Connection, frame: JSON) -> None:
        op, data = frame.get("op"), frame.get("d")
        logged = copy.deepcopy(frame)
        if isinstance(logged.get("d"), dict) and "token" in logged["d"]:
            logged["d"]["token"] = "<redacted>"
        self.gateway_received.append(logged)
        self._notify()
        if op == 1:
            await connection.send({"op": 11})
        elif op == 2 and isinstance(data, dict):
            await self._identify(connection, data)
        elif op == 6 and isinstance(data, dict):
            await self._resume(connection, data)
        elif op == 8 and isinstance(data, dict):
            await self._request_members(connection, data)

    async def _identify(self, connection: _Connection, data: JSON) -> None:
        if connection.session is not None:
            await connection.ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents") or 0)
        if intents & Intent.PRIVILEGED & ~self.allowed_privileged_intents:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        # A fresh IDENTIFY ends every session that is not connected any more.
        self._sessions = {k: s for k, s in self._sessions.items() if s.connection is not None}
        session = _Session(id=secrets.token_hex(16), intents=intents, connection=connection)
        self._sessions[session.id] = session
        connection.session = session
        self.identify_count += 1
        ready: JSON = {
            "v": 10,
            "user": self._me_payload(),
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-discord"],
        }
        if isinstance(data.get("shard"), list):
            ready["shard"] = data["shard"]
        await self._send_dispatch(session, "READY", ready)
        await self._send_dispatch(session, "GUILD_CREATE", self._guild_create_payload())
        session.ready = True

    async def _resume(self, connection: _Connection, data: JSON) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await connection.send({"op": 9, "d": False})
            return
        if session.connection is not None and session.connection is not connection:
            await session.connection.ws.close(code=4000, message=b"Session resumed elsewhere.")
        session.connection = None
        connection.session = session
        # Replay until caught up, then attach with no await in between: an event dispatched
        # meanwhile is either replayed here or sent live, never out of order.
        sent = int(data.get("seq") or 0)
        while pending := [(seq, text) for seq, text in session.buffer if seq > sent]:
            for seq, text in pending:
                await connection.send(text)
                sent = seq
        session.connection = connection
        self.resume_count += 1
        await self._send_dispatch(session, "RESUMED", {"_trace": ["fake-discord"]})

    async def _request_members(self, connection: _Connection, data: JSON) -> None:
        session = connection.session
        if session is None:
            return
        wanted = data.get("user_ids")
        not_found: list[str] = []
        if wanted is not None:
            ids = [int(i) for i in (wanted if isinstance(wanted, list) else [wanted])]
            members = [self.member_payload(self.users[i]) for i in ids if i in self.users]
            not_found = [str(i) for i in ids if i not in self.users]
        elif session.intents & Intent.GUILD_MEMBERS:
            query = str(data.get("query") or "").lower()
            limit = int(data.get("limit") or 0) or len(self.users)
            found = [u for u in self.users.values() if u.username.lower().startswith(query)]
            members = [self.member_payload(u) for u in found[:limit]]
        else:
            members = []  # listing members needs the privileged GUILD_MEMBERS intent
        chunk: JSON = {
            "guild_id": str(self.guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": not_found,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send_dispatch(self, session: _Session, event: str, data: JSON) -> None:
        session.seq += 1
        text = json.dumps({"op": 0, "t": event, "s": session.seq, "d": data}, separators=(",", ":"))
        session.buffer.append((session.seq, text))
        del session.buffer[:-1000]  # enough to RESUME after a short drop
        if session.connection is not None:
            await session.connection.send(text)
        self._notify()

    async def _dispatch(
        self,
        event: str,
        data: JSON,
        intent: int | None,
        shape: Callable[[_Session, JSON], JSON] | None = None,
    ) -> None:
        for session in list(self._sessions.values()):
            if intent is None or session.intents & intent:
                await self._send_dispatch(session, event, shape(session, data) if shape else data)

    def _for_bot(self, session: _Session, message: JSON) -> JSON:
        """What a session may see of a message: no content without the intent (Discord's rule)."""
        if (
            session.intents & Intent.MESSAGE_CONTENT
            or int(message["author"]["id"]) == self.bot_user.id
        ):
            return message
        if any(int(m["id"]) == self.bot_user.id for m in message.get("mentions", [])):
            return message
        return message | {"content": "", "embeds": [], "attachments": [], "components": []}

    async def _dispatch_message(self, event: str, message: JSON) -> None:
        if message["flags"] & MessageFlag.EPHEMERAL:
            return  # ephemeral messages are never sent over the gateway
        if int(message["channel_id"]) in self.dm_channels:
            await self._dispatch(event, self.render(message), Intent.DIRECT_MESSAGES)
            return
        payload = self.render(message) | {"guild_id": str(self.guild_id)}
        author = self.users.get(int(message["author"]["id"]))
        if author is not None and "webhook_id" not in message:
            payload["member"] = self.member_payload(author, with_user=False)
        await self._dispatch(event, payload, Intent.GUILD_MESSAGES, self._for_bot)

    async def _dispatch_delete(self, message: JSON) -> None:
        if message["flags"] & MessageFlag.EPHEMERAL:
            return
        data = {"id": message["id"], "channel_id": message["channel_id"]}
        if int(message["channel_id"]) in self.dm_channels:
            await self._dispatch("MESSAGE_DELETE", data, Intent.DIRECT_MESSAGES)
            return
        data["guild_id"] = str(self.guild_id)
        await self._dispatch("MESSAGE_DELETE", data, Intent.GUILD_MESSAGES)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close every gateway connection with ``code`` (4000 lets discord.py RESUME)."""
        for connection in list(self._connections):
            await connection.ws.close(code=code, message=b"fake Discord dropped the connection")

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT on every connection."""
        for connection in list(self._connections):
            await connection.send({"op": 7, "d": None})

    async def invalidate_sessions(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; without ``resumable`` the sessions are forgotten."""
        for connection in list(self._connections):
            await connection.send({"op": 9, "d": resumable})
        if not resumable:
            self._sessions.clear()

    # ------------------------------------------------------------------ injection

    def _require_bot(self) -> None:
        if not self._sessions:
            raise RuntimeError("no bot has identified with the fake gateway yet")

    def _new_interaction(
        self,
        kind: int,
        user: FakeUser,
        channel_id: int,
        name: str,
        data: JSON,
        message: JSON | None,
    ) -> FakeInteraction:
        channel = self.channel(channel_id)
        interaction_id = self._snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        permissions = self.permissions_of(user)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": channel | {"permissions": str(permissions)},
            "member": self.member_payload(user) | {"permissions": str(permissions)},
            "token": token,
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(self.permissions_of(self.bot_user)),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.upload_limit,
        }
        if message is not None:
            payload["message"] = self.render(message)
        interaction = FakeInteraction(
            id=interaction_id,
            token=token,
            type=kind,
            user_id=user.id,
            channel_id=channel_id,
            guild_id=self.guild_id,
            name=name,
            payload=payload,
            created_at=self.now(),
            message_id=int(message["id"]) if message is not None else None,
        )
        self.interactions[interaction_id] = interaction
        self._interactions_by_token[token] = interaction
        return interaction

    async def dispatch_slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser | None = None,
        channel_id: int | None = None,
    ) -> int:
        """Send INTERACTION_CREATE for ``/name`` and return the interaction id.

        ``name`` may be a subcommand path (``"admin quota set"``). Option types come from the
        synced command; values: str/int/float/bool, a ``FakeUser`` or user id for user
        options, an attachment payload from :meth:`register_file` for attachment options, an
        id for channel/role options. An unsynced command is sent as a global one with types
        guessed from the values.
        """
        self._require_bot()
        user = user or self.member
        path = name.split()
        options = dict(options or {})
        command = self.find_command(path[0])
        definitions: list[JSON] | None = None  # None: unsynced, so nothing to check against
        if command is not None:
            definitions = command.get("options", [])
            for segment in path[1:]:
                parent = next((o for o in definitions if o["name"] == segment), None)
                if parent is None or parent["type"] not in (1, 2):
                    raise ValueError(f"/{name}: no subcommand {segment!r}")
                definitions = parent.get("options", [])
            missing = [
                o["name"] for o in definitions if o.get("required") and o["name"] not in options
            ]
            if missing:
                raise ValueError(f"/{name}: required options missing: {missing}")
        resolved: dict[str, dict[str, JSON]] = {}
        options_payload = [
            self._option(key, value, definitions, resolved) for key, value in options.items()
        ]
        # Wrap the leaf options in their subcommand / group, innermost first.
        for depth in range(len(path) - 1, 0, -1):
            kind = 1 if depth == len(path) - 1 else 2
            options_payload = [{"name": path[depth], "type": kind, "options": options_payload}]
        data: JSON = {
            "id": command["id"] if command else str(self._snowflake()),
            "name": path[0],
            "type": 1,
            "options": options_payload,
        }
        if resolved:
            data["resolved"] = resolved
        if command is not None and "guild_id" in command:
            data["guild_id"] = command["guild_id"]  # discord.py looks guild commands up by it
        interaction = self._new_interaction(
            2, user, channel_id or self.channel_id, " ".join(path), data, None
        )
        await self._dispatch("INTERACTION_CREATE", interaction.payload, None)
        return interaction.id

    def _option(
        self,
        key: str,
        value: Any,
        definitions: list[JSON] | None,
        resolved: dict[str, dict[str, JSON]],
    ) -> JSON:
        """One option as Discord sends it; entities go into ``resolved``."""
        if definitions is None:
            kind = _guess_option_type(value)
        else:
            definition = next((o for o in definitions if o["name"] == key), None)
            if definition is None:
                raise ValueError(f"the command has no option {key!r}")
            kind = int(definition["type"])
        option: JSON = {"name": key, "type": kind}
        if kind == 11:
            attachment = value if isinstance(value, dict) else self.attachment_payload(int(value))
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            option["value"] = attachment["id"]
        elif kind in (6, 9) and (isinstance(value, FakeUser) or int(value) in self.users):
            member = value if isinstance(value, FakeUser) else self.users[int(value)]
            resolved.setdefault("users", {})[str(member.id)] = self.user_payload(member)
            member_data = self.member_payload(member, with_user=False)
            member_data["permissions"] = str(self.permissions_of(member))
            resolved.setdefault("members", {})[str(member.id)] = member_data
            option["value"] = str(member.id)
        elif kind in (8, 9):
            role = self.roles[int(value)]
            resolved.setdefault("roles", {})[role["id"]] = role
            option["value"] = role["id"]
        elif kind == 7:
            channel = self.channel(int(value))
            permissions = str(self.permissions_of(self.bot_user))
            resolved.setdefault("channels", {})[channel["id"]] = channel | {
                "permissions": permissions
            }
            option["value"] = channel["id"]
        else:
            option["value"] = value
        return option

    async def click_button(
        self,
        message: int | JSON,
        custom_id: str,
        *,
        user: FakeUser | None = None,
        values: Sequence[str] | None = None,
    ) -> int:
        """Press a button (or pick ``values`` in a select) on a stored message; returns the id.

        The message may have been deleted already: a member whose client has not caught up
        yet can still press its buttons (a double click, two people at once).
        """
        self._require_bot()
        message_id = int(message["id"]) if isinstance(message, dict) else int(message)
        stored = self.messages.get(message_id) or self.deleted_messages.get(message_id)
        if stored is None:
            raise LookupError(f"no message {message_id}")
        component = next(
            (c for c in iter_components(stored["components"]) if c.get("custom_id") == custom_id),
            None,
        )
        if component is None:
            raise LookupError(f"message {message_id} has no component {custom_id!r}")
        data: JSON = {"custom_id": custom_id, "component_type": component["type"]}
        if "id" in component:
            data["id"] = component["id"]
        if values is not None:
            data["values"] = list(values)
        interaction = self._new_interaction(
            3, user or self.member, int(stored["channel_id"]), custom_id, data, stored
        )
        await self._dispatch("INTERACTION_CREATE", interaction.payload, None)
        return interaction.id

    async def post_message(
        self,
        channel_id: int,
        content: str = "",
        *,
        author: FakeUser | None = None,
        attachments: Sequence[JSON] = (),
        message_reference: int | None = None,
        mentions: Sequence[FakeUser] = (),
        reply_ping: bool = True,
    ) -> JSON:
        """A user posts a message (MESSAGE_CREATE). ``attachments`` come from
        ``register_file(..., ephemeral=False, channel_id=...)``; a reply pings its target's
        author unless ``reply_ping`` is False."""
        self._require_bot()
        author = author or self.member
        body: JSON = {"content": content}
        if message_reference is not None:
            body["message_reference"] = {"message_id": message_reference}
        if not reply_ping:
            body["allowed_mentions"] = {"parse": ["users"], "replied_user": False}
        unarchives = self._check_postable(self.channel(channel_id))
        message = self._create_message(
            channel_id, author, body, [], uploaded=attachments, mentions=mentions
        )
        await self._dispatch_message("MESSAGE_CREATE", message)
        if unarchives:
            await self._unarchive(self.channel(channel_id))
        return message

    def dm_messages(self, user: FakeUser) -> list[JSON]:
        """What the bot sent ``user`` in DMs, oldest first."""
        return [
            message
            for channel_id, channel in self.dm_channels.items()
            if int(channel["recipients"][0]["id"]) == user.id
            for message in self.channel_messages(channel_id)
        ]

    # ------------------------------------------------------------------ menus, autocomplete, modals
    # A message context menu is an application command of type 3 run on a message (the
    # interaction's data carries ``target_id`` and the message under ``resolved.messages``). A
    # modal is an interaction answered with type 9; the member's values come back as a
    # MODAL_SUBMIT interaction (type 5) whose components mirror the modal's, each text input
    # with its ``value``. Autocomplete is an interaction of type 4 with one option ``focused``,
    # answered with type 8 and ``choices``.

    def find_message_command(self, name: str) -> JSON | None:
        """A synced message context menu by name: guild commands first, then global."""
        for scope in (self.guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name and command["type"] == 3:
                    return command
        return None

    async def dispatch_message_command(
        self, name: str, message: int | JSON, *, user: FakeUser | None = None
    ) -> int:
        """Run the message context menu ``name`` on a stored message; returns the id."""
        self._require_bot()
        message_id = int(message["id"]) if isinstance(message, dict) else int(message)
        stored = self.messages.get(message_id)
        if stored is None or stored["flags"] & MessageFlag.EPHEMERAL:
            raise LookupError(f"no visible message {message_id}")
        command = self.find_message_command(name)
        if command is None:
            raise LookupError(f"no message context menu {name!r} was synced")
        data: JSON = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): self.render(stored)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        interaction = self._new_interaction(
            2, user or self.member, int(stored["channel_id"]), name, data, None
        )
        await self._dispatch("INTERACTION_CREATE", interaction.payload, None)
        return interaction.id

    async def dispatch_autocomplete(
        self,
        name: str,
        focused: str,
        options: Mapping[str, str | int | float | bool],
        *,
        user: FakeUser | None = None,
        channel_id: int | None = None,
    ) -> int:
        """Ask for suggestions for option ``focused`` of ``/name`` (a subcommand path works)
        while the member has typed ``options`` (scalars); the answer's choices are in
        ``interactions[id].response_data["choices"]``."""
        self._require_bot()
        path = name.split()
        command = self.find_command(path[0])
        if command is None:
            raise LookupError(f"/{path[0]} was not synced")
        if focused not in options:
            raise ValueError(f"the focused option {focused!r} needs a value (what was typed)")
        leaf: list[JSON] = [
            {"name": key, "type": 4 if isinstance(value, int) else 3, "value": value}
            | ({"focused": True} if key == focused else {})
            for key, value in options.items()
        ]
        for depth in range(len(path) - 1, 0, -1):
            kind = 1 if depth == len(path) - 1 else 2
            leaf = [{"name": path[depth], "type": kind, "options": leaf}]
        data: JSON = {"id": command["id"], "name": path[0], "type": 1, "options": leaf}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        interaction = self._new_interaction(
            4, user or self.member, channel_id or self.channel_id, name, data, None
        )
        await self._dispatch("INTERACTION_CREATE", interaction.payload, None)
        return interaction.id

    def modal_of(self, interaction_id: int) -> JSON | None:
        """The modal the bot opened in answer to an interaction (None until it did)."""
        interaction = self.interactions[interaction_id]
        return interaction.response_data if interaction.response_type == 9 else None

    async def submit_modal(
        self, interaction_id: int, values: Mapping[str, str], *, user: FakeUser | None = None
    ) -> int:
        """Fill in and submit the modal opened for ``interaction_id``; returns the new id.

        ``values`` are by text input ``custom_id``. Like Discord's client, refuses to submit
        a required input left empty or a value outside its length limits.
        """
        self._require_bot()
        opened = self.interactions[interaction_id]
        modal = self.modal_of(interaction_id)
        if modal is None:
            raise LookupError(f"interaction {interaction_id} was not answered with a modal")
        unknown = set(values) - {
            c["custom_id"] for c in iter_components(modal["components"]) if c.get("type") == 4
        }
        if unknown:
            raise ValueError(f"the modal has no text inputs {sorted(unknown)}")
        data: JSON = {
            "custom_id": modal["custom_id"],
            "components": [_filled(component, values) for component in modal["components"]],
        }
        interaction = self._new_interaction(
            5,
            user or self.users[opened.user_id],
            opened.channel_id,
            str(modal["custom_id"]),
            data,
            None,
        )
        await self._dispatch("INTERACTION_CREATE", interaction.payload, None)
        return interaction.id


def _filled(component: JSON, values: Mapping[str, str]) -> JSON:
    """A modal component as submitted: rows and labels kept, each text input with its value."""
    kind = component.get("type")
    if kind == 1:
        return {"type": 1, "components": [_filled(c, values) for c in component["components"]]}
    if kind == 18:
        return {"type": 18, "component": _filled(component["component"], values)}
    if kind != 4:
        raise ValueError(f"the fake cannot submit modal components of type {kind}")
    value = values.get(component["custom_id"], component.get("value") or "")
    if component.get("required", True) and not value:
        raise ValueError(f"the text input {component['custom_id']!r} is required")
    low, high = component.get("min_length", 0), component.get("max_length", 4000)
    if value and not low <= len(value) <= high:
        raise ValueError(f"{component['custom_id']!r} must be {low}-{high} characters")
    return {"type": 4, "custom_id": component["custom_id"], "value": value}


def _guess_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, FakeUser):
        return 6
    if isinstance(value, dict) and "url" in value:
        return 11
    return 3


async def _read_body(request: web.Request) -> tuple[Any, list[_Part]]:
    """JSON body, or a multipart's ``payload_json`` plus its ``files[N]`` parts."""
    try:
        if request.content_type != "multipart/form-data":
            raw = await request.read()
            return (json.loads(raw) if raw else None), []
        payload: Any = None
        parts: list[_Part] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            elif part.filename is not None:
                data = bytes(await part.read(decode=False))
                kind = part.headers.get("Content-Type")
                parts.append(_Part(part.name or "", part.filename, data, kind))
        return payload, parts
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


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
