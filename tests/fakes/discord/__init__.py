"""A local stand-in for Discord that the real discord.py client can run against, offline.

One guild (more with ``add_guild``), a handful of channels and users, REST under ``/api/v10``, a
gateway websocket at ``/gateway`` and a CDN for attachments, all on 127.0.0.1. Built from
Discord's documented API and from what discord.py 2.7 actually sends and parses. Runs inside the
test's event loop::

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
``refuse_thread_creation_at_limit``, ``fail_uploads`` and ``hold_uploads`` (an upload waits,
posted or not, until the test releases it); the upload limit follows the guild's
boost tier. Threads can be archived or locked (``archive_thread``) and
deleted (``delete_thread``); members can close their DMs to the bot (``close_dms``).
Time-based rules (3 s to answer an interaction, 15 min token life, URL expiry, nonce window) use a
fake clock that ``advance_clock`` moves, so expiry is tested without sleeping.
``on_interaction_response`` takes callbacks called as each answer to an interaction arrives.

Shards: ``FakeDiscord(shard_count=4, max_concurrency=2)`` is what ``GET /gateway/bot``
recommends; each gateway session IDENTIFYs as one shard and gets only its guilds' events
(``add_guild(name, shard=(1, 4))`` makes a guild that lands on shard 1 of 4). Each IDENTIFY is
in ``identifies`` (time, shard, bucket); ``identify_rate_violations()`` lists two of a bucket
within 5 s, and ``connected_shards`` says which shards are ready.

:class:`FakeDiscord` is the facade; each part of Discord is its own module: ``state`` (the
world), ``rest`` (routing, recording, auth), ``faults``, ``gateway``, ``cdn``, ``messages``,
``threads``, ``guild``, ``commands``, ``interactions`` (what members do) and ``responses``
(how the bot answers them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from tests.fakes.discord.cdn import Cdn, image_size
from tests.fakes.discord.commands import Commands
from tests.fakes.discord.faults import Faults, UploadHold
from tests.fakes.discord.gateway import Gateway, Identify
from tests.fakes.discord.guild import Guild
from tests.fakes.discord.interactions import Interactions
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.protocol import (
    API_PREFIX,
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    JSON,
    MIB,
    MODERATOR_PERMISSIONS,
    TIER_UPLOAD_LIMITS,
    ApiError,
    Intent,
    MessageFlag,
    Perm,
    iter_components,
)
from tests.fakes.discord.responses import ResponseKind, ResponseListener, Responses
from tests.fakes.discord.rest import RecordedCall, Rest, UploadedFile
from tests.fakes.discord.state import FakeGuild, FakeInteraction, FakeUser, State, shard_of
from tests.fakes.discord.threads import Threads

__all__ = [
    "API_PREFIX",
    "BOT_PERMISSIONS",
    "EVERYONE_PERMISSIONS",
    "JSON",
    "MIB",
    "MODERATOR_PERMISSIONS",
    "TIER_UPLOAD_LIMITS",
    "ApiError",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeUser",
    "Identify",
    "Intent",
    "MessageFlag",
    "Perm",
    "RecordedCall",
    "ResponseKind",
    "ResponseListener",
    "UploadHold",
    "UploadedFile",
    "image_size",
    "iter_components",
    "shard_of",
]

T = TypeVar("T")


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
        shard_count: int = 1,
        max_concurrency: int = 1,
    ) -> None:
        state = State(token=token, premium_tier=premium_tier, upload_limit=upload_limit)
        self._state = state
        self._faults = Faults(state)
        self._rest = Rest(state, self._faults)
        self._cdn = Cdn(state, url_ttl=url_ttl)
        self._gateway = Gateway(
            state,
            heartbeat_interval_ms=heartbeat_interval_ms,
            allowed_privileged_intents=allowed_privileged_intents,
            shard_count=shard_count,
            max_concurrency=max_concurrency,
        )
        self._messages = Messages(state, self._cdn, self._gateway, nonce_window=nonce_window)
        self._threads = Threads(state, self._messages, self._gateway)
        self._guild = Guild(state, self._gateway)
        self._commands = Commands(state)
        self._responses = Responses(
            state, self._messages, response_window=response_window, token_lifetime=token_lifetime
        )
        self._interactions = Interactions(
            state, self._cdn, self._commands, self._messages, self._gateway
        )
        self._runner: web.AppRunner | None = None

        # The world: the same objects the parts keep, so reading them reads the fake's state.
        self.token = state.token
        self.guild_id = state.guild_id  # the first guild; ``guilds`` has every one
        self.guilds = state.guilds
        self.moderator_role_id = state.moderator_role_id
        self.bot_role_id = state.bot_role_id
        self.bot_user = state.bot_user
        self.application_id = state.application_id
        self.owner, self.member, self.moderator = state.owner, state.member, state.moderator
        self.users = state.users
        self.roles = state.roles
        self.channels = state.channels  # guild channels and threads
        self.dm_channels = state.dm_channels  # the bot's DMs (type 1), by channel id
        self.dms_closed = state.dms_closed  # members who do not take DMs from the bot
        self.category_id = state.category_id
        self.channel_id = state.channel_id
        self.other_channel_id = state.other_channel_id
        self.voice_channel_id = state.voice_channel_id
        self.messages = state.messages
        self.deleted_messages = state.deleted_messages
        self.interactions = state.interactions
        self.left_guilds = state.left_guilds  # guilds the bot left, in order
        # Application commands as Discord stores them: key None is global, else a guild id.
        self.commands = self._commands.synced
        self.command_creations = self._commands.creations

        # What the bot did.
        self.calls = self._rest.calls
        self.unhandled = self._rest.unhandled
        self.server_errors = self._rest.server_errors
        self.dropped = self._rest.dropped  # the client left while sending them
        self.cdn_requests = self._cdn.requests  # (path, status)
        self.gateway_received = self._gateway.received  # IDENTIFY/RESUME token redacted
        self.gateway_queries = self._gateway.queries  # ?v=10&encoding=json&compress=...
        self.identifies = self._gateway.identifies  # (time, shard, bucket) of each IDENTIFY
        self.identify_rate_violations = self._gateway.identify_rate_violations
        # Called as each answer to an interaction arrives (callback, follow-up, edit, delete),
        # before the fake checks it; benchmarks timestamp answers here.
        self.on_interaction_response: list[ResponseListener] = self._responses.listeners

        # Reading the world.
        self.now = state.now
        self.channel = state.channel
        self.channel_messages = state.channel_messages
        self.dm_messages = state.dm_messages
        self.interaction_messages = state.interaction_messages
        self.render = self._messages.render
        self.user_payload = state.user_payload
        self.member_payload = state.member_payload
        self.guild_payload = state.guild_payload
        self.permissions_of = state.permissions_of
        self.calls_to = self._rest.calls_to
        self.modal_of = self._interactions.modal_of

        # Changing the world.
        self.add_user = state.add_user
        self.add_guild = state.add_guild
        self.set_premium_tier = self._guild.set_premium_tier
        self.register_file = self._cdn.register_file
        self.attachment_payload = self._cdn.attachment_payload
        self.attachment_bytes = self._cdn.attachment_bytes
        self.remove_attachment = self._cdn.remove_attachment
        self.expire_ephemeral_attachments = self._cdn.expire_ephemeral_attachments
        self.archive_thread = self._threads.archive
        self.delete_thread = self._threads.delete

        # Faults.
        self.rate_limit_next = self._faults.rate_limit_next
        self.fail_next = self._faults.fail_next
        self.forbid_thread_creation = self._faults.forbid_thread_creation
        self.refuse_thread_creation_at_limit = self._faults.refuse_thread_creation_at_limit
        self.fail_uploads = self._faults.fail_uploads
        self.hold_uploads = self._faults.hold_uploads
        self.clear_faults = self._faults.clear
        self.drop_gateway = self._gateway.drop
        self.request_reconnect = self._gateway.request_reconnect
        self.invalidate_sessions = self._gateway.invalidate_sessions

        # What members do.
        self.dispatch_slash_command = self._interactions.dispatch_slash_command
        self.click_button = self._interactions.click_button
        self.dispatch_message_command = self._interactions.dispatch_message_command
        self.dispatch_autocomplete = self._interactions.dispatch_autocomplete
        self.submit_modal = self._interactions.submit_modal
        self.post_message = self._messages.post_as

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=256 * MIB)
        parts = (
            self._gateway,
            self._guild,
            self._commands,
            self._responses,
            self._messages,
            self._threads,
            self._cdn,
        )
        self._rest.add_routes(app, [route for part in parts for route in part.routes()])
        self._gateway.add_to(app)
        self._cdn.add_to(app)
        self._rest.add_fallback(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._state.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving. Close the bot first, or discord.py will keep trying to reconnect."""
        await self._gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        return self._state.port

    @property
    def base_url(self) -> str:
        return self._state.base_url

    @property
    def api_base(self) -> str:
        return self._state.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self._state.gateway_url

    # ------------------------------------------------------------------ settings and switches

    @property
    def premium_tier(self) -> int:
        return self._state.premium_tier

    @premium_tier.setter
    def premium_tier(self, tier: int) -> None:
        self._state.premium_tier = tier  # set_premium_tier also tells the bot

    @property
    def upload_limit(self) -> int:
        """Per-file limit: the boost tier's, unless set (None goes back to the tier's)."""
        return self._state.upload_limit

    @upload_limit.setter
    def upload_limit(self, value: int | None) -> None:
        self._state.upload_limit_override = value

    @property
    def gateway_refused(self) -> bool:
        """True: new gateway connections get HTTP 503 (an outage)."""
        return self._gateway.refused

    @gateway_refused.setter
    def gateway_refused(self, refused: bool) -> None:
        self._gateway.refused = refused

    @property
    def response_window(self) -> float:
        return self._responses.response_window

    @property
    def token_lifetime(self) -> float:
        return self._responses.token_lifetime

    @property
    def url_ttl(self) -> float:
        return self._cdn.url_ttl

    @property
    def nonce_window(self) -> float:
        return self._messages.nonce_window

    @property
    def heartbeat_interval_ms(self) -> int:
        return self._gateway.heartbeat_interval_ms

    @property
    def allowed_privileged_intents(self) -> int:
        return self._gateway.allowed_privileged_intents

    @property
    def shard_count(self) -> int:
        """The shard count ``GET /gateway/bot`` recommends."""
        return self._gateway.shard_count

    @property
    def max_concurrency(self) -> int:
        return self._gateway.max_concurrency

    @property
    def connected_shards(self) -> frozenset[tuple[int, int]]:
        """``(shard_id, shard_count)`` of every ready, connected gateway session."""
        return self._gateway.connected_shards

    @property
    def identify_count(self) -> int:
        return self._gateway.identify_count

    @property
    def resume_count(self) -> int:
        return self._gateway.resume_count

    @property
    def connected(self) -> bool:
        return self._gateway.connected

    @property
    def threads(self) -> dict[int, JSON]:
        return self._state.threads

    # ------------------------------------------------------------------ reading, waiting

    def message(self, message_id: int) -> JSON:
        return self.messages[message_id]

    def find_command(self, name: str) -> JSON | None:
        """A synced slash command by top-level name: guild commands first, then global."""
        return self._commands.find(name)

    def find_message_command(self, name: str) -> JSON | None:
        """A synced message context menu by name: guild commands first, then global."""
        return self._commands.find(name, kind=3)

    def close_dms(self, user: FakeUser) -> None:
        """``user`` takes no DMs from the bot: sending one fails with 403, code 50007."""
        self.dms_closed.add(user.id)

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock (interaction windows, token life, URL expiry, nonces)."""
        self._state.advance_clock(seconds)

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
            changed = self._state.changed
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

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Wait for a bot that has IDENTIFYed and been sent every GUILD_CREATE."""
        await self.wait_for(lambda: self.connected, timeout, "a connected, ready bot")

    async def wait_for_shards(self, shard_count: int, timeout: float = 10.0) -> None:
        """Wait until every one of ``shard_count`` shards has a ready, connected session."""
        wanted = {(shard_id, shard_count) for shard_id in range(shard_count)}
        await self.wait_for(
            lambda: wanted <= self.connected_shards, timeout, f"all {shard_count} shards ready"
        )
