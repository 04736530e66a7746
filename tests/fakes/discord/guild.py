"""The REST routes that read the world (the bot user, the application, the guilds, their channels
and members), open DMs and leave a guild; the first guild's own events (a new boost tier)."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.protocol import THREAD_TYPES, ApiError, Intent, json_response
from tests.fakes.discord.rest import Ctx, Route
from tests.fakes.discord.state import State


class Guild:
    def __init__(self, state: State, gateway: Gateway) -> None:
        self.state = state
        self.gateway = gateway

    async def set_premium_tier(self, tier: int) -> None:
        """Change the boost tier (and with it the upload limit) and tell the bot (GUILD_UPDATE)."""
        self.state.premium_tier = tier
        await self.gateway.dispatch("GUILD_UPDATE", self.state.guild_payload(), Intent.GUILDS)

    def routes(self) -> list[Route]:
        guild = "/guilds/{guild_id}"
        return [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/users/{user_id}", self._get_user),
            ("POST", "/users/@me/channels", self._open_dm),
            ("DELETE", "/users/@me/guilds/{guild_id}", self._leave_guild),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/applications/@me", self._get_application),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("GET", guild, self._get_guild),
            ("GET", guild + "/channels", self._get_guild_channels),
            ("GET", guild + "/members/{user_id}", self._get_member),
        ]

    async def _get_me(self, ctx: Ctx) -> web.Response:
        return json_response(200, self.state.me_payload())

    async def _get_user(self, ctx: Ctx) -> web.Response:
        user = self.state.users.get(ctx.id("user_id"))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return json_response(200, self.state.user_payload(user))

    async def _leave_guild(self, ctx: Ctx) -> web.Response:
        """The bot leaves a guild: recorded in ``left_guilds``, then GUILD_DELETE."""
        guild_id = self._check_guild(ctx)
        if guild_id not in self.state.left_guilds:
            self.state.left_guilds.append(guild_id)
            await self.gateway.dispatch("GUILD_DELETE", {"id": str(guild_id)}, Intent.GUILDS)
            self.state.notify()
        return web.Response(status=204)

    async def _get_application(self, ctx: Ctx) -> web.Response:
        return json_response(200, self.state.application_payload())

    async def _open_dm(self, ctx: Ctx) -> web.Response:
        state = self.state
        try:
            user = state.users[int(ctx.json().get("recipient_id") or 0)]
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, 50033, "Invalid Recipient(s)") from None
        found = next(
            (c for c in state.dm_channels.values() if int(c["recipients"][0]["id"]) == user.id),
            None,
        )
        if found is None:
            channel_id = state.snowflake()
            found = {
                "id": str(channel_id),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [state.user_payload(user)],
            }
            state.dm_channels[channel_id] = found
        return json_response(200, found)

    async def _get_channel(self, ctx: Ctx) -> web.Response:
        return json_response(200, self.state.channel(ctx.id("channel_id")))

    def _check_guild(self, ctx: Ctx) -> int:
        return self.state.guild(ctx.id("guild_id")).id  # 404 Unknown Guild if not one of ours

    async def _get_guild(self, ctx: Ctx) -> web.Response:
        return json_response(200, self.state.guild_payload(self._check_guild(ctx)))

    async def _get_guild_channels(self, ctx: Ctx) -> web.Response:
        channels = self.state.guild_channels(self._check_guild(ctx))
        return json_response(200, [c for c in channels if c["type"] not in THREAD_TYPES])

    async def _get_member(self, ctx: Ctx) -> web.Response:
        user = self.state.users.get(ctx.id("user_id"))
        guild_id = self._check_guild(ctx)
        if user is None:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(200, self.state.member_payload(user, guild_id=guild_id))
