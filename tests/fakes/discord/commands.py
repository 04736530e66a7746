"""Application commands as Discord stores them (global and per guild), their REST routes, and
finding a synced one by name. Re-syncing a command keeps its id; ``creations`` counts new ones."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.discord.protocol import JSON, ApiError, json_response
from tests.fakes.discord.rest import Ctx, Route
from tests.fakes.discord.state import State


class Commands:
    def __init__(self, state: State) -> None:
        self.state = state
        # Key None is global, else a guild id.
        self.synced: dict[int | None, list[JSON]] = {}
        self.creations: dict[int | None, int] = {}

    def find(self, name: str, *, kind: int = 1, guild_id: int | None = None) -> JSON | None:
        """A synced command by top-level name and type (1 slash, 3 message context menu):
        the guild's commands first (None: the first guild's), then global ones."""
        for scope in (guild_id or self.state.guild_id, None):
            for command in self.synced.get(scope, []):
                if command["name"] == name and command["type"] == kind:
                    return command
        return None

    def routes(self) -> list[Route]:
        app = "/applications/{application_id}"
        guild = app + "/guilds/{guild_id}"
        return [
            ("GET", app + "/commands", self._get),
            ("PUT", app + "/commands", self._put),
            ("POST", app + "/commands", self._post),
            ("GET", guild + "/commands", self._get),
            ("PUT", guild + "/commands", self._put),
            ("POST", guild + "/commands", self._post),
        ]

    def _scope(self, ctx: Ctx) -> int | None:
        if ctx.id("application_id") != self.state.application_id:
            raise ApiError(403, 50001, "Missing Access")
        if "guild_id" not in ctx.params:
            return None
        guild_id = ctx.id("guild_id")
        if guild_id not in self.state.guilds:
            raise ApiError(403, 50001, "Missing Access")
        return guild_id

    def _store(self, scope: int | None, spec: JSON, existing: list[JSON]) -> JSON:
        kind = spec.get("type", 1)
        old = next((c for c in existing if c["name"] == spec["name"] and c["type"] == kind), None)
        if old is None:
            self.creations[scope] = self.creations.get(scope, 0) + 1
        command: JSON = {
            "default_member_permissions": None,
            "nsfw": False,
            "contexts": None,
            "integration_types": [0],
            "options": [],
        } | spec
        command |= {
            "id": old["id"] if old else str(self.state.snowflake()),
            "application_id": str(self.state.application_id),
            "type": kind,
            "version": str(self.state.snowflake()),
            "description": spec.get("description", ""),
        }
        if scope is not None:
            command["guild_id"] = str(scope)
        return command

    async def _get(self, ctx: Ctx) -> web.Response:
        return json_response(200, self.synced.get(self._scope(ctx), []))

    async def _put(self, ctx: Ctx) -> web.Response:
        scope = self._scope(ctx)
        if not isinstance(ctx.body, list):
            raise ApiError(400, 50035, "Invalid Form Body")
        existing = self.synced.get(scope, [])
        self.synced[scope] = [self._store(scope, spec, existing) for spec in ctx.body]
        return json_response(200, self.synced[scope])

    async def _post(self, ctx: Ctx) -> web.Response:
        scope = self._scope(ctx)
        existing = self.synced.setdefault(scope, [])
        command = self._store(scope, ctx.json(), existing)
        existing[:] = [c for c in existing if c["id"] != command["id"]] + [command]
        return json_response(201, command)
