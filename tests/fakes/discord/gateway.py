"""The gateway: websocket sessions (HELLO, IDENTIFY, RESUME with replay, heartbeats, member
requests), zlib-stream compression, and dispatching events to the sessions whose intents ask
for them. Tests can drop connections, ask for a reconnect or invalidate sessions.

Shards as Discord has them: a session IDENTIFYs as shard ``[id, count]`` (none: ``[0, 1]``) and
gets only the guilds with ``(guild_id >> 22) % count == id``, in READY and GUILD_CREATE and in
every later event about them; events with no guild (DMs) go to shard 0. ``GET /gateway/bot``
recommends ``shard_count`` shards and allows ``max_concurrency`` IDENTIFYs per 5 s, one per
bucket (``shard_id % max_concurrency``); every IDENTIFY is recorded in ``identifies`` so tests
can check that rule (the fake does not enforce it)."""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from tests.fakes.discord.protocol import JSON, Intent, json_response
from tests.fakes.discord.rest import Ctx, Route
from tests.fakes.discord.state import FakeUser, State, shard_of

IDENTIFY_WINDOW = 5.0  # seconds: at most one IDENTIFY per bucket in any such window

# Rewrites an event's data for one session, given that session's intents.
Shape = Callable[[int, JSON], JSON]


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


@dataclass(frozen=True)
class Identify:
    """One IDENTIFY the gateway accepted: when (``time.monotonic``), as which shard, its bucket."""

    at: float
    shard_id: int
    shard_count: int
    bucket: int


@dataclass
class _Session:
    id: str
    intents: int
    shard_id: int = 0
    shard_count: int = 1
    seq: int = 0
    buffer: list[tuple[int, str]] = field(default_factory=list)
    connection: _Connection | None = None
    ready: bool = False  # READY and every GUILD_CREATE sent

    def gets(self, guild_id: int | None) -> bool:
        """Whether this session is sent events about ``guild_id`` (None: no guild, a DM)."""
        if guild_id is None:
            return self.shard_id == 0
        return shard_of(guild_id, self.shard_count) == self.shard_id


class Gateway:
    """Sessions by id and the live connections; what the bot sent is in ``received``."""

    def __init__(
        self,
        state: State,
        *,
        heartbeat_interval_ms: int,
        allowed_privileged_intents: int,
        shard_count: int = 1,
        max_concurrency: int = 1,
    ) -> None:
        if shard_count < 1 or max_concurrency < 1:
            raise ValueError("shard_count and max_concurrency are at least 1")
        self.state = state
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.allowed_privileged_intents = allowed_privileged_intents
        self.shard_count = shard_count  # what GET /gateway/bot recommends
        self.max_concurrency = max_concurrency  # IDENTIFY buckets per 5 s
        self.refused = False  # True: new connections get HTTP 503 (an outage)
        self.received: list[JSON] = []  # ops from the bot; IDENTIFY/RESUME token redacted
        self.queries: list[dict[str, str]] = []  # ?v=10&encoding=json&compress=...
        self.identifies: list[Identify] = []
        self.identify_count = 0
        self.resume_count = 0
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()

    @property
    def connected(self) -> bool:
        """A bot has IDENTIFYed, been sent every GUILD_CREATE, and is connected now."""
        return any(s.ready and s.connection is not None for s in self._sessions.values())

    @property
    def connected_shards(self) -> frozenset[tuple[int, int]]:
        """``(shard_id, shard_count)`` of every ready, connected session."""
        return frozenset(
            (s.shard_id, s.shard_count)
            for s in self._sessions.values()
            if s.ready and s.connection is not None
        )

    def identify_rate_violations(self) -> list[tuple[Identify, Identify]]:
        """Pairs of IDENTIFYs of one bucket less than 5 s apart (Discord refuses the second)."""
        last: dict[int, Identify] = {}
        found: list[tuple[Identify, Identify]] = []
        for identify in sorted(self.identifies, key=lambda i: i.at):
            earlier = last.get(identify.bucket)
            if earlier is not None and identify.at - earlier.at < IDENTIFY_WINDOW:
                found.append((earlier, identify))
            last[identify.bucket] = identify
        return found

    def require_bot(self) -> None:
        if not self._sessions:
            raise RuntimeError("no bot has identified with the fake gateway yet")

    # ------------------------------------------------------------------ dispatching

    async def dispatch(
        self, event: str, data: JSON, intent: int | None, shape: Shape | None = None
    ) -> None:
        """Send ``event`` to every session with ``intent`` (None: to all) whose shard has the
        event's guild."""
        guild_id = _guild_of(event, data)
        for session in list(self._sessions.values()):
            if (intent is None or session.intents & intent) and session.gets(guild_id):
                payload = shape(session.intents, data) if shape else data
                await self._send_dispatch(session, event, payload)

    async def _send_dispatch(self, session: _Session, event: str, data: JSON) -> None:
        session.seq += 1
        text = json.dumps({"op": 0, "t": event, "s": session.seq, "d": data}, separators=(",", ":"))
        session.buffer.append((session.seq, text))
        del session.buffer[:-1000]  # enough to RESUME after a short drop
        if session.connection is not None:
            await session.connection.send(text)
        self.state.notify()

    # ------------------------------------------------------------------ what tests do to it

    async def drop(self, code: int = 4000) -> None:
        """Close every gateway connection with ``code`` (4000 lets discord.py RESUME)."""
        for connection in list(self._connections):
            await connection.ws.close(code=code, message=b"fake Discord dropped the connection")

    async def close(self) -> None:
        for connection in list(self._connections):
            await connection.ws.close(code=1001, message=b"fake Discord closing")

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

    # ------------------------------------------------------------------ serving

    def routes(self) -> list[Route]:
        return [("GET", "/gateway", self._get_gateway), ("GET", "/gateway/bot", self._get_bot)]

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/gateway", self._socket)

    async def _get_gateway(self, ctx: Ctx) -> web.Response:
        return json_response(200, {"url": self.state.gateway_url})

    async def _get_bot(self, ctx: Ctx) -> web.Response:
        limit = {
            "total": 1000,
            "remaining": max(0, 1000 - self.identify_count),
            "reset_after": 14_400_000,
            "max_concurrency": self.max_concurrency,
        }
        body = {"url": self.state.gateway_url, "shards": self.shard_count}
        return json_response(200, body | {"session_start_limit": limit})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if self.refused:
            return web.Response(status=503, text="the gateway is down")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.queries.append(dict(request.query))
        connection = _Connection(ws, zlib_stream=request.query.get("compress") == "zlib-stream")
        self._connections.add(connection)
        try:
            await connection.send(
                {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_op(connection, json.loads(msg.data))
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._connections.discard(connection)
            if connection.session is not None and connection.session.connection is connection:
                connection.session.connection = None
            self.state.notify()
        return ws

    async def _on_op(self, connection: _Connection, frame: JSON) -> None:
        op, data = frame.get("op"), frame.get("d")
        logged = copy.deepcopy(frame)
        if isinstance(logged.get("d"), dict) and "token" in logged["d"]:
            logged["d"]["token"] = "<redacted>"
        self.received.append(logged)
        self.state.notify()
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
        if data.get("token") != self.state.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = data.get("shard", [0, 1])
        if not _valid_shard(shard):
            await connection.ws.close(code=4010, message=b"Invalid shard.")
            return
        shard_id, shard_count = int(shard[0]), int(shard[1])
        self.identifies.append(
            Identify(time.monotonic(), shard_id, shard_count, shard_id % self.max_concurrency)
        )
        intents = int(data.get("intents") or 0)
        if intents & Intent.PRIVILEGED & ~self.allowed_privileged_intents:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        # A fresh IDENTIFY ends every session of its shard that is not connected any more (and
        # those of another shard count: the bot was resharded).
        for key, old in list(self._sessions.items()):
            if old.connection is None and (
                old.shard_id == shard_id or old.shard_count != shard_count
            ):
                del self._sessions[key]
        session = _Session(
            id=secrets.token_hex(16),
            intents=intents,
            shard_id=shard_id,
            shard_count=shard_count,
            connection=connection,
        )
        self._sessions[session.id] = session
        connection.session = session
        self.identify_count += 1
        state = self.state
        guild_ids = [g for g in state.guilds if g not in state.left_guilds and session.gets(g)]
        ready: JSON = {
            "v": 10,
            "user": state.me_payload(),
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": state.gateway_url,
            "application": {"id": str(state.application_id), "flags": 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-discord"],
        }
        if "shard" in data:
            ready["shard"] = [shard_id, shard_count]
        await self._send_dispatch(session, "READY", ready)
        for guild_id in guild_ids:
            await self._send_dispatch(session, "GUILD_CREATE", state.guild_create_payload(guild_id))
        session.ready = True

    async def _resume(self, connection: _Connection, data: JSON) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.state.token:
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
        users = self.state.users
        guild_id = int(data.get("guild_id") or self.state.guild_id)
        if guild_id not in self.state.guilds or not session.gets(guild_id):
            return  # not a guild of this shard: Discord sends nothing

        def member(user: FakeUser) -> JSON:
            return self.state.member_payload(user, guild_id=guild_id)

        wanted = data.get("user_ids")
        not_found: list[str] = []
        if wanted is not None:
            ids = [int(i) for i in (wanted if isinstance(wanted, list) else [wanted])]
            members = [member(users[i]) for i in ids if i in users]
            not_found = [str(i) for i in ids if i not in users]
        elif session.intents & Intent.GUILD_MEMBERS:
            query = str(data.get("query") or "").lower()
            limit = int(data.get("limit") or 0) or len(users)
            found = [u for u in users.values() if u.username.lower().startswith(query)]
            members = [member(u) for u in found[:limit]]
        else:
            members = []  # listing members needs the privileged GUILD_MEMBERS intent
        chunk: JSON = {
            "guild_id": str(guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": not_found,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)


def _guild_of(event: str, data: JSON) -> int | None:
    """The guild an event is about (its shard gets it); None for DMs and the like."""
    if event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"):
        raw = data.get("id")
    else:
        raw = data.get("guild_id")
    return int(raw) if raw is not None else None


def _valid_shard(shard: object) -> bool:
    return (
        isinstance(shard, list)
        and len(shard) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
        and 0 <= shard[0] < shard[1]
    )
