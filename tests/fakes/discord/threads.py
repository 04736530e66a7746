"""Threads: created from a message or on their own (REST), archived, locked or deleted as
their timer or a moderator does (events the tests cause)."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.protocol import (
    JSON,
    THREAD_TYPES,
    ApiError,
    Intent,
    MessageFlag,
    iso,
    json_response,
)
from tests.fakes.discord.rest import Ctx, Route
from tests.fakes.discord.state import State


class Threads:
    def __init__(self, state: State, messages: Messages, gateway: Gateway) -> None:
        self.state = state
        self.messages = messages
        self.gateway = gateway

    async def archive(self, thread_id: int, *, locked: bool = False) -> None:
        """Archive a thread (and lock it), as its auto-archive timer or a moderator does.

        The bot gets THREAD_UPDATE (discord.py then drops the thread from its cache) and the
        thread is left out of later GUILD_CREATEs. A post in an archived thread unarchives it;
        in a locked one every post and every edit is refused (400, 50083).
        """
        thread = self.state.threads[thread_id]
        thread["thread_metadata"] |= {
            "archived": True,
            "locked": locked,
            "archive_timestamp": iso(self.state.now()),
        }
        await self.gateway.dispatch("THREAD_UPDATE", thread, Intent.GUILDS)

    async def delete(self, thread_id: int) -> None:
        """Delete a thread and its messages (THREAD_DELETE); its starter message stays."""
        state = self.state
        thread = state.channels.pop(thread_id)
        for message in state.channel_messages(thread_id, include_ephemeral=True):
            self.messages.delete(int(message["id"]))
        starter = state.messages.get(thread_id)
        if starter is not None:
            starter.pop("thread", None)
            starter["flags"] &= ~MessageFlag.HAS_THREAD
        data = {
            "id": thread["id"],
            "guild_id": thread["guild_id"],
            "parent_id": thread["parent_id"],
            "type": thread["type"],
        }
        await self.gateway.dispatch("THREAD_DELETE", data, Intent.GUILDS)

    # ------------------------------------------------------------------ REST

    def routes(self) -> list[Route]:
        channel = "/channels/{channel_id}"
        return [
            ("POST", channel + "/messages/{message_id}/threads", self._from_message),
            ("POST", channel + "/threads", self._without_message),
        ]

    async def _from_message(self, ctx: Ctx) -> web.Response:
        parent = self._parent(ctx.id("channel_id"))
        message = self.messages.visible(int(parent["id"]), ctx.id("message_id"))
        message_id = int(message["id"])
        if message_id in self.state.channels:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        # A thread started from a message shares that message's id.
        thread = self._new(message_id, parent, ctx.json(), 10 if parent["type"] == 5 else 11)
        message["flags"] |= MessageFlag.HAS_THREAD
        message["thread"] = thread
        await self.gateway.dispatch(
            "THREAD_CREATE", thread | {"newly_created": True}, Intent.GUILDS
        )
        return json_response(201, thread)

    async def _without_message(self, ctx: Ctx) -> web.Response:
        parent = self._parent(ctx.id("channel_id"))
        body = ctx.json()
        kind = int(body.get("type") or 12)  # Discord's default is a *private* thread
        if kind not in THREAD_TYPES:
            raise ApiError(400, 50035, "Invalid Form Body (type)")
        thread = self._new(self.state.snowflake(), parent, body, kind)
        await self.gateway.dispatch(
            "THREAD_CREATE", thread | {"newly_created": True}, Intent.GUILDS
        )
        return json_response(201, thread)

    def _parent(self, channel_id: int) -> JSON:
        parent = self.state.channel(channel_id)
        if parent["type"] not in (0, 5):
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        return parent

    def _new(self, thread_id: int, parent: JSON, body: JSON, kind: int) -> JSON:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise ApiError(
                400, 50035, "Invalid Form Body (name: Must be between 1 and 100 in length.)"
            )
        bot_id = str(self.state.bot_user.id)
        now = iso(self.state.now())
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
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": bot_id,
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
                "user_id": bot_id,
                "join_timestamp": now,
                "flags": 0,
            },
        }
        self.state.channels[thread_id] = thread
        return thread
