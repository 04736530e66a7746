"""A server's rules: its defaults, bans, pause, and where videos may be made."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.errors import UserError
from core.moderation._base import ModerationBase
from core.moderation._limits import (
    DEFAULT_FIELDS,
    MAX_CONCURRENT,
    MAX_DAILY_SECONDS,
    MAX_SERVER_DAILY_SECONDS,
    ChannelRule,
    DefaultField,
    check_range,
    clean_text,
)
from core.moderation._results import (
    Actor,
    BanResult,
    Change,
    ChannelRules,
    DefaultsUpdate,
    RuleChange,
    ServerDefaults,
)
from core.quota import server_cap
from core.request import DURATION_MAX, DURATION_MIN, RESOLUTIONS
from core.store import Ban, GuildSettings


class ServerActions(ModerationBase):
    # ------------------------------------------------------------- defaults

    def _with_bot_defaults(self, guild: GuildSettings) -> ServerDefaults:
        settings = self.settings
        return ServerDefaults(
            guild,
            settings.daily_seconds,
            settings.max_concurrent,
            server_cap_max=settings.server_daily_seconds_max,
            server_cap=server_cap(settings, guild),
        )

    def _check_server_cap(self, value: int | None) -> None:
        bound = self.settings.server_daily_seconds_max
        if value is not None and bound is not None and value > bound:
            raise UserError(
                f"`server_daily_seconds` can be at most {bound}: the bot's operator caps every"
                f" server at {bound} s of video a day (you gave {value}). Nothing was changed."
            )
        check_range("server_daily_seconds", value, 1, bound or MAX_SERVER_DAILY_SECONDS)

    async def set_defaults(
        self,
        actor: Actor,
        *,
        daily_seconds: int | None = None,
        max_concurrent: int | None = None,
        max_duration: int | None = None,
        max_resolution: str | None = None,
        exempt_role_id: int | None = None,
        moderator_role_id: int | None = None,
        server_daily_seconds: int | None = None,
        unset: DefaultField | None = None,
    ) -> DefaultsUpdate:
        """Change the given defaults (and ``unset`` one); with nothing given, only read them.

        ``server_daily_seconds`` caps what the whole server spends a day (every member
        together, exempt ones too), within the operator's ``SERVER_DAILY_SECONDS_MAX``.
        """
        check_range("daily_seconds", daily_seconds, 1, MAX_DAILY_SECONDS)
        self._check_server_cap(server_daily_seconds)
        check_range("max_concurrent", max_concurrent, 1, MAX_CONCURRENT)
        check_range("max_duration", max_duration, DURATION_MIN, DURATION_MAX)
        if max_resolution is not None and max_resolution not in RESOLUTIONS:
            raise UserError(f"`max_resolution` must be one of {', '.join(RESOLUTIONS)}.")
        roles = (("exempt_role", exempt_role_id), ("moderator_role", moderator_role_id))
        for name, role_id in roles:
            if role_id == actor.guild_id:  # @everyone's id is the server's
                raise UserError(f"`{name}` can't be @everyone. Nothing was changed.")
        changes: dict[str, Any] = {
            field: value
            for field, value in (
                ("daily_seconds", daily_seconds),
                ("max_concurrent", max_concurrent),
                ("max_duration", max_duration),
                ("max_resolution", max_resolution),
                ("exempt_role_id", exempt_role_id),
                ("moderator_role_id", moderator_role_id),
                ("server_daily_seconds", server_daily_seconds),
            )
            if value is not None
        }
        if unset is not None:
            if unset not in DEFAULT_FIELDS:
                raise UserError(f"`unset` must be one of {', '.join(DEFAULT_FIELDS)}.")
            field = DEFAULT_FIELDS[unset]
            if field in changes:
                raise UserError(f"You both set and unset `{unset}`. Nothing was changed.")
            changes[field] = None
        if "moderator_role_id" in changes and not actor.manages_server:
            # Otherwise a moderator-by-role could hand moderation to any role they like.
            raise UserError(
                "Only members with the Manage Server permission can change the moderator role."
                " Nothing was changed."
            )
        before = await self.store.guild_settings(actor.guild_id)
        after = dataclasses.replace(before, **changes)
        if after != before:
            await self._save_settings(actor, before, after, "defaults")
        return DefaultsUpdate(
            self._with_bot_defaults(before), self._with_bot_defaults(after), asked=bool(changes)
        )

    # ------------------------------------------------------------- bans

    async def ban(self, actor: Actor, user_id: int, reason: str | None = None) -> BanResult:
        """Ban a member, or change the reason of their ban."""
        reason = clean_text("reason", reason)
        store = self.store
        guild_id = actor.guild_id
        existing = await store.get_ban(guild_id, user_id)
        if existing is not None and existing.reason == reason:
            return BanResult(existing, reason, changed=False, unfinished=0)
        now = self._clock()
        await self._change(
            actor,
            "ban",
            f"user:{user_id}",
            {"banned": existing is not None, "reason": existing.reason if existing else None},
            {"banned": True, "reason": reason},
            lambda audit: store.ban(guild_id, user_id, reason, actor.user_id, now, audit),
        )
        unfinished = await store.unfinished_count(guild_id, user_id)
        return BanResult(existing, reason, changed=True, unfinished=unfinished)

    async def unban(self, actor: Actor, user_id: int, reason: str | None = None) -> Ban:
        """Lift a member's ban; returns the ban that was lifted."""
        reason = clean_text("reason", reason)
        store = self.store
        not_banned = f"<@{user_id}> is not banned here. Nothing was changed."
        existing = await store.get_ban(actor.guild_id, user_id)
        if existing is None:
            raise UserError(not_banned)
        now = self._clock()
        lifted = await self._change(
            actor,
            "unban",
            f"user:{user_id}",
            {"banned": True, "reason": existing.reason},
            {"banned": False, "reason": reason},
            lambda audit: store.unban(actor.guild_id, user_id, now, audit),
        )
        if not lifted:  # lifted by someone else meanwhile: nothing was written
            raise UserError(not_banned)
        return existing

    # ------------------------------------------------------------- pause, resume

    async def pause(self, actor: Actor, reason: str | None = None) -> Change[GuildSettings]:
        reason = clean_text("reason", reason)
        before = await self.store.guild_settings(actor.guild_id)
        if before.paused:
            raise UserError("Video requests are already paused. Nothing was changed.")
        after = dataclasses.replace(before, paused=True, pause_reason=reason)
        return await self._save_settings(actor, before, after, "pause")

    async def resume(self, actor: Actor, reason: str | None = None) -> Change[GuildSettings]:
        reason = clean_text("reason", reason)
        before = await self.store.guild_settings(actor.guild_id)
        if not before.paused:
            raise UserError("Video requests are not paused. Nothing was changed.")
        after = dataclasses.replace(before, paused=False, pause_reason=None)
        return await self._save_settings(actor, before, after, "resume", reason)

    # ------------------------------------------------------------- channels

    async def set_channel_rule(
        self, actor: Actor, channel_id: int, rule: ChannelRule | None
    ) -> RuleChange:
        """Allow or deny videos in a channel (and its threads); None removes its rule."""
        if rule not in ("allow", "deny", None):
            raise UserError("A channel's rule is `allow`, `deny` or none. Nothing was changed.")
        store = self.store
        rules = await store.channel_rules(actor.guild_id)
        current = rules.get(channel_id)
        if current == rule:
            state = f"is already {rule}ed" if rule else "has no rule"
            raise UserError(f"<#{channel_id}> {state}. Nothing was changed.")
        now = self._clock()
        await self._change(
            actor,
            f"channel.{rule or 'clear'}",
            f"channel:{channel_id}",
            {"rule": current},
            {"rule": rule},
            lambda audit: store.set_channel_rule(actor.guild_id, channel_id, rule, now, audit),
        )
        if rule is None:
            rules.pop(channel_id, None)
        else:
            rules[channel_id] = rule
        return RuleChange(current, rule, channel_id=channel_id, rules=rules)

    async def channel_rules(self, guild_id: int) -> ChannelRules:
        rules = await self.store.channel_rules(guild_id)
        guild = await self.store.guild_settings(guild_id)
        return ChannelRules(rules, guild.nsfw_only)

    async def set_nsfw_only(self, actor: Actor, enabled: bool) -> Change[GuildSettings]:
        before = await self.store.guild_settings(actor.guild_id)
        if before.nsfw_only == enabled:
            raise UserError(f"Age-restricted-only is already {'on' if enabled else 'off'}.")
        after = dataclasses.replace(before, nsfw_only=enabled)
        return await self._save_settings(actor, before, after, "nsfw_only")
