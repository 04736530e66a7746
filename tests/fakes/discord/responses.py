"""The bot's answers to interactions: the callback (within the response window, once), then
follow-ups and edits of ``@original`` or a follow-up with the interaction's token (for the
token's lifetime), as Discord's interaction webhooks take them.

``listeners`` (``FakeDiscord.on_interaction_response``) are called as each such request
arrives, before the fake checks it: benchmarks timestamp answers there.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web

from tests.fakes.discord.messages import Messages
from tests.fakes.discord.protocol import JSON, ApiError, MessageFlag, json_response
from tests.fakes.discord.rest import Ctx, Part, Route
from tests.fakes.discord.state import FakeInteraction, State

ResponseKind = Literal["callback", "followup", "edit", "delete"]
ResponseListener = Callable[[FakeInteraction, ResponseKind], None]


class Responses:
    def __init__(
        self,
        state: State,
        messages: Messages,
        *,
        response_window: float,
        token_lifetime: float,
    ) -> None:
        self.state = state
        self.messages = messages
        self.response_window = response_window
        self.token_lifetime = token_lifetime
        self.listeners: list[ResponseListener] = []

    def routes(self) -> list[Route]:
        hook = "/webhooks/{application_id}/{token}"
        return [
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", hook, self._followup),
            ("GET", hook + "/messages/{message_id}", self._get_message),
            ("PATCH", hook + "/messages/{message_id}", self._edit_message),
            ("DELETE", hook + "/messages/{message_id}", self._delete_message),
        ]

    def _heard(self, interaction: FakeInteraction, kind: ResponseKind) -> None:
        for listener in list(self.listeners):
            listener(interaction, kind)

    # ------------------------------------------------------------------ the callback

    async def _callback(self, ctx: Ctx) -> web.Response:
        interaction = self.state.interactions.get(ctx.id("interaction_id"))
        if interaction is None or not hmac.compare_digest(interaction.token, ctx.params["token"]):
            raise ApiError(404, 10062, "Unknown interaction")
        self._heard(interaction, "callback")
        if interaction.response_type is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if self.state.now() - interaction.created_at > self.response_window:
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
            resource["message"] = self.messages.render(message)
        callback = {
            "id": str(interaction.id),
            "type": interaction.type,
            "response_message_id": message["id"] if message else None,
            "response_message_loading": interaction.loading,
            "response_message_ephemeral": interaction.ephemeral,
        }
        return json_response(200, {"interaction": callback, "resource": resource})

    async def _respond(
        self, interaction: FakeInteraction, kind: Any, data: JSON, parts: list[Part]
    ) -> JSON | None:
        messages = self.messages
        ephemeral = bool(int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)
        component = interaction.type == 3
        if kind == 4 or kind == 5:
            message = messages.create(
                interaction.channel_id,
                self.state.bot_user,
                data,
                parts,
                interaction=interaction,
                ephemeral=ephemeral,
                loading=kind == 5,
            )
            interaction.original_message_id = int(message["id"])
            interaction.ephemeral, interaction.loading = ephemeral, kind == 5
            await messages.dispatch("MESSAGE_CREATE", message)
            return message
        if kind in (6, 7) and component and interaction.message_id is not None:
            # For component interactions "@original" is the message the component is on.
            interaction.original_message_id = interaction.message_id
            target = self.state.messages.get(interaction.message_id)
            if target is None:
                raise ApiError(404, 10008, "Unknown Message")
            interaction.ephemeral = bool(target["flags"] & MessageFlag.EPHEMERAL)
            if kind == 7:
                messages.apply_edit(target, data, parts)
                await messages.dispatch("MESSAGE_UPDATE", target)
            return target
        if (kind == 8 and interaction.type == 4) or (kind == 9 and interaction.type in (2, 3)):
            return None  # autocomplete result / modal: recorded in response_data
        raise ApiError(400, 50035, f"Invalid Form Body (type: {kind!r} not valid here)")

    # ------------------------------------------------------------------ with the token

    def _by_token(self, ctx: Ctx, kind: ResponseKind | None) -> FakeInteraction:
        interaction = self.state.interactions_by_token.get(ctx.params["token"])
        if interaction is None or ctx.params["application_id"] != str(self.state.application_id):
            raise ApiError(404, 10015, "Unknown Webhook")
        if kind is not None:
            self._heard(interaction, kind)
        if self.state.now() - interaction.created_at > self.token_lifetime:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return interaction

    def _message(self, interaction: FakeInteraction, ref: str) -> JSON:
        if ref == "@original":
            message_id = interaction.original_message_id
        else:
            try:
                message_id = int(ref)
            except ValueError:
                raise ApiError(404, 10008, "Unknown Message") from None
            if message_id not in (interaction.original_message_id, *interaction.followup_ids):
                message_id = None
        message = self.state.messages.get(message_id) if message_id is not None else None
        if message is None:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    async def _followup(self, ctx: Ctx) -> web.Response:
        interaction = self._by_token(ctx, "followup")
        if interaction.response_type is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        if "thread_id" in ctx.query:
            raise ApiError(
                400, 50035, "Invalid Form Body (interaction follow-ups cannot target a thread)"
            )
        messages = self.messages
        body = ctx.json()
        original = self.state.messages.get(interaction.original_message_id or 0)
        if original is not None and original["flags"] & MessageFlag.LOADING:
            # After a "thinking" defer the first follow-up fills the deferred message (same id,
            # same visibility as the defer, whatever flags the follow-up asks for).
            messages.apply_edit(original, body, ctx.files)
            message = original
            await messages.dispatch("MESSAGE_UPDATE", message)
        else:
            ephemeral = bool(int(body.get("flags") or 0) & MessageFlag.EPHEMERAL)
            message = messages.create(
                interaction.channel_id,
                self.state.bot_user,
                body,
                ctx.files,
                interaction=interaction,
                ephemeral=ephemeral,
            )
            interaction.followup_ids.append(int(message["id"]))
            await messages.dispatch("MESSAGE_CREATE", message)
        if ctx.query.get("wait") not in ("1", "true", "True"):
            return web.Response(status=204)
        return json_response(200, messages.render(message))

    async def _get_message(self, ctx: Ctx) -> web.Response:
        interaction = self._by_token(ctx, None)
        message = self._message(interaction, ctx.params["message_id"])
        return json_response(200, self.messages.render(message))

    async def _edit_message(self, ctx: Ctx) -> web.Response:
        interaction = self._by_token(ctx, "edit")
        message = self._message(interaction, ctx.params["message_id"])
        self.messages.apply_edit(message, ctx.json(), ctx.files)
        await self.messages.dispatch("MESSAGE_UPDATE", message)
        return json_response(200, self.messages.render(message))

    async def _delete_message(self, ctx: Ctx) -> web.Response:
        interaction = self._by_token(ctx, "delete")
        message = self._message(interaction, ctx.params["message_id"])
        self.messages.delete(int(message["id"]))
        await self.messages.dispatch_delete(message)
        return web.Response(status=204)
