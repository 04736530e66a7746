"""Messages: creating, editing, deleting and rendering them as Discord does (limits, mentions,
replies, attachments, nonces, flags), the channel-message REST routes, and telling the gateway
(no ephemeral message is ever dispatched; without the Message Content intent a bot sees no
content of messages that do not mention it)."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from tests.fakes.discord.cdn import Cdn
from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.protocol import (
    JSON,
    THREAD_TYPES,
    ApiError,
    Intent,
    MessageFlag,
    iso,
    json_response,
)
from tests.fakes.discord.rest import Ctx, Part, Route
from tests.fakes.discord.state import FakeInteraction, FakeUser, State

_MENTION = re.compile(r"<@!?(\d+)>")


class Messages:
    def __init__(self, state: State, cdn: Cdn, gateway: Gateway, *, nonce_window: float) -> None:
        self.state = state
        self.cdn = cdn
        self.gateway = gateway
        self.nonce_window = nonce_window
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}  # → (message id, when)

    # ------------------------------------------------------------------ reading

    def render(self, message: JSON) -> JSON:
        """A message as Discord would return it now: attachment URLs freshly signed."""
        out = copy.deepcopy(message)
        for attachment in out.get("attachments", []):
            fresh = self.cdn.current_payload(int(attachment["id"]))
            if fresh is not None:
                attachment |= fresh
        referenced = out.get("referenced_message")
        if referenced:
            out["referenced_message"] = self.render(referenced)
        return out

    def visible(self, channel_id: int, message_id: int) -> JSON:
        """A message readable through the channel (ephemeral ones are not)."""
        message = self.state.messages.get(message_id)
        if (
            message is None
            or int(message["channel_id"]) != channel_id
            or message["flags"] & MessageFlag.EPHEMERAL
        ):
            raise ApiError(404, 10008, "Unknown Message")
        return message

    # ------------------------------------------------------------------ changing

    def create(
        self,
        channel_id: int,
        author: FakeUser,
        body: JSON,
        parts: list[Part],
        *,
        interaction: FakeInteraction | None = None,
        ephemeral: bool = False,
        loading: bool = False,
        uploaded: Sequence[JSON] = (),
        mentions: Sequence[FakeUser] = (),
    ) -> JSON:
        """Store a new message. ``uploaded`` are files already on the CDN (a user's post)."""
        state = self.state
        channel = state.channel(channel_id)
        if not loading:
            _validate_content(body, bool(parts) or bool(body.get("attachments") or uploaded))
        message_id = state.snowflake()
        flags = int(body.get("flags") or 0) & MessageFlag.CLIENT_SETTABLE
        flags |= (MessageFlag.EPHEMERAL if ephemeral else 0) | (
            MessageFlag.LOADING if loading else 0
        )
        message: JSON = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": 0,
            "author": state.user_payload(author),
            "content": body.get("content") or "",
            "timestamp": iso(state.now()),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mention_roles": [],
            "attachments": [
                *(self.cdn.attachment_payload(int(a["id"])) for a in uploaded),
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
            channel_id,
            message["content"],
            body.get("allowed_mentions"),
            replied_author,
            [u.id for u in mentions],
        )
        if interaction is not None:
            self._mark_interaction_message(message, interaction)
        if channel["type"] in THREAD_TYPES:
            message["position"] = channel["total_message_sent"]
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
        if not ephemeral and "last_message_id" in channel:
            channel["last_message_id"] = str(message_id)
        state.messages[message_id] = message
        return message

    def apply_edit(self, message: JSON, body: JSON, parts: list[Part]) -> None:
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
                int(message["channel_id"]), message["content"], body.get("allowed_mentions"), None
            )
        message["flags"] &= ~MessageFlag.LOADING
        # Filling a "thinking..." message is not an edit as far as users can tell.
        message["edited_timestamp"] = None if was_loading else iso(self.state.now())

    def delete(self, message_id: int) -> JSON:
        message = self.state.messages.pop(message_id)
        self.state.deleted_messages[message_id] = message
        for attachment in message["attachments"]:
            self.cdn.discard(int(attachment["id"]))
        return message

    def check_postable(self, channel: JSON) -> bool:
        """Refuse a post where Discord would; True when the post unarchives a thread."""
        if channel["type"] == 1:
            if int(channel["recipients"][0]["id"]) in self.state.dms_closed:
                raise ApiError(403, 50007, "Cannot send messages to this user")
            return False
        metadata = channel.get("thread_metadata")
        if metadata is None or not metadata["archived"]:
            return False
        if metadata["locked"]:
            raise ApiError(400, 50083, "Thread is archived")
        return True

    async def unarchive(self, channel: JSON) -> None:
        # Sent after the message that unarchived the thread: Discord promises no order, and a
        # bot must not need the thread in its cache to read the message.
        channel["thread_metadata"]["archived"] = False
        await self.gateway.dispatch("THREAD_UPDATE", channel, Intent.GUILDS)

    async def post_as(
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
        self.gateway.require_bot()
        author = author or self.state.member
        body: JSON = {"content": content}
        if message_reference is not None:
            body["message_reference"] = {"message_id": message_reference}
        if not reply_ping:
            body["allowed_mentions"] = {"parse": ["users"], "replied_user": False}
        unarchives = self.check_postable(self.state.channel(channel_id))
        message = self.create(channel_id, author, body, [], uploaded=attachments, mentions=mentions)
        await self.dispatch("MESSAGE_CREATE", message)
        if unarchives:
            await self.unarchive(self.state.channel(channel_id))
        return message

    # ------------------------------------------------------------------ the gateway

    async def dispatch(self, event: str, message: JSON) -> None:
        """MESSAGE_CREATE or MESSAGE_UPDATE to the sessions that may see it."""
        if message["flags"] & MessageFlag.EPHEMERAL:
            return  # ephemeral messages are never sent over the gateway
        if int(message["channel_id"]) in self.state.dm_channels:
            await self.gateway.dispatch(event, self.render(message), Intent.DIRECT_MESSAGES)
            return
        guild_id = self.state.guild_of_channel(int(message["channel_id"]))
        payload = self.render(message) | {"guild_id": str(guild_id)}
        author = self.state.users.get(int(message["author"]["id"]))
        if author is not None and "webhook_id" not in message:
            payload["member"] = self.state.member_payload(
                author, with_user=False, guild_id=guild_id
            )
        await self.gateway.dispatch(event, payload, Intent.GUILD_MESSAGES, self._as_seen_with)

    async def dispatch_delete(self, message: JSON) -> None:
        if message["flags"] & MessageFlag.EPHEMERAL:
            return
        data = {"id": message["id"], "channel_id": message["channel_id"]}
        if int(message["channel_id"]) in self.state.dm_channels:
            await self.gateway.dispatch("MESSAGE_DELETE", data, Intent.DIRECT_MESSAGES)
            return
        data["guild_id"] = str(self.state.guild_of_channel(int(message["channel_id"])))
        await self.gateway.dispatch("MESSAGE_DELETE", data, Intent.GUILD_MESSAGES)

    def _as_seen_with(self, intents: int, message: JSON) -> JSON:
        """What a session may see of a message: no content without the intent (Discord's rule)."""
        bot_id = self.state.bot_user.id
        if intents & Intent.MESSAGE_CONTENT or int(message["author"]["id"]) == bot_id:
            return message
        if any(int(m["id"]) == bot_id for m in message.get("mentions", [])):
            return message
        return message | {"content": "", "embeds": [], "attachments": [], "components": []}

    # ------------------------------------------------------------------ REST

    def routes(self) -> list[Route]:
        channel = "/channels/{channel_id}"
        message = channel + "/messages/{message_id}"
        return [
            ("GET", channel + "/messages", self._list),
            ("POST", channel + "/messages", self._post),
            ("GET", message, self._get),
            ("PATCH", message, self._edit),
            ("DELETE", message, self._delete),
            ("POST", channel + "/typing", self._typing),
        ]

    async def _post(self, ctx: Ctx) -> web.Response:
        state = self.state
        channel_id = ctx.id("channel_id")
        unarchives = self.check_postable(state.channel(channel_id))
        body = ctx.json()
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            raise ApiError(400, 50035, "Invalid Form Body (nonce: Must be 25 or fewer in length.)")
        key = (state.bot_user.id, str(nonce))
        if body.get("enforce_nonce") and nonce is not None:
            earlier = self._nonces.get(key)
            if (
                earlier
                and state.now() - earlier[1] <= self.nonce_window
                and earlier[0] in state.messages
            ):
                return json_response(200, self.render(state.messages[earlier[0]]))
        message = self.create(channel_id, state.bot_user, body, ctx.files)
        if nonce is not None:
            self._nonces[key] = (int(message["id"]), state.now())
        await self.dispatch("MESSAGE_CREATE", message)
        if unarchives:
            await self.unarchive(state.channel(channel_id))
        return json_response(200, self.render(message))

    async def _list(self, ctx: Ctx) -> web.Response:
        channel_id = ctx.id("channel_id")
        self.state.channel(channel_id)
        limit = max(1, min(100, ctx.query_int("limit", 50)))
        before, after = ctx.query_int("before", 1 << 63), ctx.query_int("after", 0)
        found = [
            self.render(m)
            for m in self.state.channel_messages(channel_id)
            if after < int(m["id"]) < before
        ]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        return json_response(200, found[:limit])

    async def _get(self, ctx: Ctx) -> web.Response:
        message = self.visible(ctx.id("channel_id"), ctx.id("message_id"))
        return json_response(200, self.render(message))

    async def _edit(self, ctx: Ctx) -> web.Response:
        message = self.visible(ctx.id("channel_id"), ctx.id("message_id"))
        if int(message["author"]["id"]) != self.state.bot_user.id or "webhook_id" in message:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        metadata = self.state.channel(int(message["channel_id"])).get("thread_metadata")
        if metadata is not None and metadata["archived"]:
            raise ApiError(400, 50083, "Thread is archived")
        self.apply_edit(message, ctx.json(), ctx.files)
        await self.dispatch("MESSAGE_UPDATE", message)
        return json_response(200, self.render(message))

    async def _delete(self, ctx: Ctx) -> web.Response:
        message = self.visible(ctx.id("channel_id"), ctx.id("message_id"))
        self.delete(int(message["id"]))
        await self.dispatch_delete(message)
        return web.Response(status=204)

    async def _typing(self, ctx: Ctx) -> web.Response:
        self.state.channel(ctx.id("channel_id"))
        return web.Response(status=204)

    # ------------------------------------------------------------------ parts of a message

    def _attachments(
        self, channel_id: int, spec: Any, parts: list[Part], existing: list[JSON]
    ) -> list[JSON]:
        """Resolve an ``attachments`` list: keep existing ids, upload ``files[N]`` parts."""
        by_index = {p.field.removeprefix("files[").removesuffix("]"): p for p in parts}
        wanted: list[tuple[Part, JSON]]
        if not isinstance(spec, list):
            kept, wanted = list(existing), [(part, {}) for part in parts]
        else:
            old = {a["id"]: a for a in existing}
            kept = [old[str(s["id"])] for s in spec if str(s.get("id")) in old]
            wanted = [(by_index[str(s["id"])], s) for s in spec if str(s.get("id")) in by_index]
            named = {id(part) for part, _ in wanted}
            wanted += [(part, {}) for part in parts if id(part) not in named]
        for part, meta in wanted:
            blob = self.cdn.store(
                channel_id,
                part.data,
                meta.get("filename") or part.filename,
                None,
                duration_secs=meta.get("duration_secs"),
                description=meta.get("description"),
            )
            kept.append(self.cdn.attachment_payload(blob.id))
        return kept

    def _mentions(
        self,
        channel_id: int,
        content: str,
        allowed: Any,
        replied_author: int | None,
        extra: Sequence[int] = (),
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
        guild_id = self.state.guild_of_channel(channel_id)  # None (a DM): the first guild's
        for user_id in dict.fromkeys(ids):
            user = self.state.users.get(user_id)
            if user is not None:
                member = self.state.member_payload(user, with_user=False, guild_id=guild_id)
                out.append(self.state.user_payload(user) | {"member": member})
        return out

    def _attach_reference(self, message: JSON, channel_id: int, reference: Any) -> int | None:
        if not isinstance(reference, dict) or reference.get("message_id") is None:
            return None
        target = self.state.messages.get(int(reference["message_id"]))
        if target is None or int(target["channel_id"]) != channel_id:
            if reference.get("fail_if_not_exists", True):
                raise ApiError(400, 50035, "Invalid Form Body (message_reference: Unknown message)")
            return None
        message["type"] = 19
        message["message_reference"] = {
            "type": 0,
            "message_id": target["id"],
            "channel_id": str(channel_id),
            "guild_id": str(self.state.guild_of_channel(channel_id) or self.state.guild_id),
        }
        referenced = copy.deepcopy(target)
        referenced.pop("referenced_message", None)
        message["referenced_message"] = referenced
        return int(target["author"]["id"])

    def _mark_interaction_message(self, message: JSON, interaction: FakeInteraction) -> None:
        state = self.state
        user = state.users[interaction.user_id]
        message["webhook_id"] = str(state.application_id)
        message["application_id"] = str(state.application_id)
        message["type"] = 20 if interaction.type == 2 else 0
        metadata: JSON = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": state.user_payload(user),
            "authorizing_integration_owners": {"0": str(interaction.guild_id)},
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
            "user": state.user_payload(user),
        }


def _validate_content(body: JSON, has_attachments: bool) -> None:
    content = body.get("content") or ""
    if len(content) > 2000:
        raise ApiError(400, 50035, "Invalid Form Body (content: Must be 2000 or fewer in length.)")
    if len(body.get("embeds") or []) > 10:
        raise ApiError(400, 50035, "Invalid Form Body (embeds: Must be 10 or fewer in length.)")
    if not (content or body.get("embeds") or body.get("components") or has_attachments):
        raise ApiError(400, 50006, "Cannot send an empty message")
