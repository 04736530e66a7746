"""What members do that reaches the bot as an interaction: slash commands (options typed from
the synced command, entities resolved), button and select clicks, message context menus,
autocomplete, and submitting the modal the bot opened.

A message context menu is an application command of type 3 run on a message (the
interaction's data carries ``target_id`` and the message under ``resolved.messages``). A modal
is an interaction answered with type 9; the member's values come back as a MODAL_SUBMIT
interaction (type 5) whose components mirror the modal's, each text input with its ``value``.
Autocomplete is an interaction of type 4 with one option ``focused``, answered with type 8 and
``choices``. How the bot answers is in :mod:`responses`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes.discord.cdn import Cdn
from tests.fakes.discord.commands import Commands
from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.protocol import JSON, MessageFlag, iter_components
from tests.fakes.discord.state import FakeInteraction, FakeUser, State


class Interactions:
    def __init__(
        self, state: State, cdn: Cdn, commands: Commands, messages: Messages, gateway: Gateway
    ) -> None:
        self.state = state
        self.cdn = cdn
        self.commands = commands
        self.messages = messages
        self.gateway = gateway

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
        options, an attachment payload from ``register_file`` for attachment options, an
        id for channel/role options. An unsynced command is sent as a global one with types
        guessed from the values.
        """
        self.gateway.require_bot()
        user = user or self.state.member
        path = name.split()
        options = dict(options or {})
        channel = channel_id or self.state.channel_id
        guild_id = self.state.guild_of_channel(channel) or self.state.guild_id
        command = self.commands.find(path[0], guild_id=guild_id)
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
            self._option(key, value, definitions, resolved, guild_id)
            for key, value in options.items()
        ]
        data: JSON = {
            "id": command["id"] if command else str(self.state.snowflake()),
            "name": path[0],
            "type": 1,
            "options": _nested(path, options_payload),
        }
        if resolved:
            data["resolved"] = resolved
        if command is not None and "guild_id" in command:
            data["guild_id"] = command["guild_id"]  # discord.py looks guild commands up by it
        return await self._dispatch(2, user, channel, " ".join(path), data, None)

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
        self.gateway.require_bot()
        message_id = int(message["id"]) if isinstance(message, dict) else int(message)
        stored = self.state.messages.get(message_id) or self.state.deleted_messages.get(message_id)
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
        user = user or self.state.member
        return await self._dispatch(3, user, int(stored["channel_id"]), custom_id, data, stored)

    async def dispatch_message_command(
        self, name: str, message: int | JSON, *, user: FakeUser | None = None
    ) -> int:
        """Run the message context menu ``name`` on a stored message; returns the id."""
        self.gateway.require_bot()
        message_id = int(message["id"]) if isinstance(message, dict) else int(message)
        stored = self.state.messages.get(message_id)
        if stored is None or stored["flags"] & MessageFlag.EPHEMERAL:
            raise LookupError(f"no visible message {message_id}")
        guild_id = self.state.guild_of_channel(int(stored["channel_id"]))
        command = self.commands.find(name, kind=3, guild_id=guild_id)
        if command is None:
            raise LookupError(f"no message context menu {name!r} was synced")
        data: JSON = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): self.messages.render(stored)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        user = user or self.state.member
        return await self._dispatch(2, user, int(stored["channel_id"]), name, data, None)

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
        self.gateway.require_bot()
        path = name.split()
        channel = channel_id or self.state.channel_id
        command = self.commands.find(path[0], guild_id=self.state.guild_of_channel(channel))
        if command is None:
            raise LookupError(f"/{path[0]} was not synced")
        if focused not in options:
            raise ValueError(f"the focused option {focused!r} needs a value (what was typed)")
        leaf: list[JSON] = [
            {"name": key, "type": 4 if isinstance(value, int) else 3, "value": value}
            | ({"focused": True} if key == focused else {})
            for key, value in options.items()
        ]
        data: JSON = {
            "id": command["id"],
            "name": path[0],
            "type": 1,
            "options": _nested(path, leaf),
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        user = user or self.state.member
        return await self._dispatch(4, user, channel, name, data, None)

    def modal_of(self, interaction_id: int) -> JSON | None:
        """The modal the bot opened in answer to an interaction (None until it did)."""
        interaction = self.state.interactions[interaction_id]
        return interaction.response_data if interaction.response_type == 9 else None

    async def submit_modal(
        self, interaction_id: int, values: Mapping[str, str], *, user: FakeUser | None = None
    ) -> int:
        """Fill in and submit the modal opened for ``interaction_id``; returns the new id.

        ``values`` are by text input ``custom_id``. Like Discord's client, refuses to submit
        a required input left empty or a value outside its length limits.
        """
        self.gateway.require_bot()
        opened = self.state.interactions[interaction_id]
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
        user = user or self.state.users[opened.user_id]
        custom_id = str(modal["custom_id"])
        return await self._dispatch(5, user, opened.channel_id, custom_id, data, None)

    # ------------------------------------------------------------------ building them

    async def _dispatch(
        self,
        kind: int,
        user: FakeUser,
        channel_id: int,
        name: str,
        data: JSON,
        message: JSON | None,
    ) -> int:
        """Record a new interaction, send its INTERACTION_CREATE, return its id."""
        interaction = self._new(kind, user, channel_id, name, data, message)
        await self.gateway.dispatch("INTERACTION_CREATE", interaction.payload, None)
        return interaction.id

    def _new(
        self,
        kind: int,
        user: FakeUser,
        channel_id: int,
        name: str,
        data: JSON,
        message: JSON | None,
    ) -> FakeInteraction:
        state = self.state
        channel = state.channel(channel_id)
        guild_id = state.guild_of_channel(channel_id) or state.guild_id
        interaction_id = state.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        permissions = state.permissions_of(user, guild_id)
        member = state.member_payload(user, guild_id=guild_id)
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(state.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": channel | {"permissions": str(permissions)},
            "member": member | {"permissions": str(permissions)},
            "token": token,
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(state.permissions_of(state.bot_user, guild_id)),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
            "attachment_size_limit": state.upload_limit,
        }
        if message is not None:
            payload["message"] = self.messages.render(message)
        interaction = FakeInteraction(
            id=interaction_id,
            token=token,
            type=kind,
            user_id=user.id,
            channel_id=channel_id,
            guild_id=guild_id,
            name=name,
            payload=payload,
            created_at=state.now(),
            message_id=int(message["id"]) if message is not None else None,
        )
        state.interactions[interaction_id] = interaction
        state.interactions_by_token[token] = interaction
        return interaction

    def _option(
        self,
        key: str,
        value: Any,
        definitions: list[JSON] | None,
        resolved: dict[str, dict[str, JSON]],
        guild_id: int,
    ) -> JSON:
        """One option as Discord sends it; entities go into ``resolved``."""
        state = self.state
        if definitions is None:
            kind = _guess_option_type(value)
        else:
            definition = next((o for o in definitions if o["name"] == key), None)
            if definition is None:
                raise ValueError(f"the command has no option {key!r}")
            kind = int(definition["type"])
        option: JSON = {"name": key, "type": kind}
        if kind == 11:
            attachment = (
                value if isinstance(value, dict) else self.cdn.attachment_payload(int(value))
            )
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            option["value"] = attachment["id"]
        elif kind in (6, 9) and (isinstance(value, FakeUser) or int(value) in state.users):
            member = value if isinstance(value, FakeUser) else state.users[int(value)]
            resolved.setdefault("users", {})[str(member.id)] = state.user_payload(member)
            member_data = state.member_payload(member, with_user=False, guild_id=guild_id)
            member_data["permissions"] = str(state.permissions_of(member, guild_id))
            resolved.setdefault("members", {})[str(member.id)] = member_data
            option["value"] = str(member.id)
        elif kind in (8, 9):
            role = state.roles[int(value)]
            resolved.setdefault("roles", {})[role["id"]] = role
            option["value"] = role["id"]
        elif kind == 7:
            channel = state.channel(int(value))
            permissions = str(state.permissions_of(state.bot_user, guild_id))
            resolved.setdefault("channels", {})[channel["id"]] = channel | {
                "permissions": permissions
            }
            option["value"] = channel["id"]
        else:
            option["value"] = value
        return option


def _nested(path: Sequence[str], leaf: list[JSON]) -> list[JSON]:
    """Wrap the leaf options in their subcommand / group, innermost first."""
    options = leaf
    for depth in range(len(path) - 1, 0, -1):
        kind = 1 if depth == len(path) - 1 else 2
        options = [{"name": path[depth], "type": kind, "options": options}]
    return options


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
