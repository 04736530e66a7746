"""Moderators' settings: server defaults, per-member overrides, bans and channel rules.

Each write commits together with its audit row (see :mod:`core.store._audit`).
"""

from __future__ import annotations

from core.store._audit import write_audit
from core.store._db import Queries
from core.store.types import AuditRecord, Ban, GuildSettings, UserOverride


class ModerationQueries(Queries):
    async def guild_settings(self, guild_id: int) -> GuildSettings:
        row = await self._db.fetchone(
            "SELECT guild_id, daily_seconds, max_concurrent, max_duration, max_resolution,"
            " exempt_role_id, moderator_role_id, paused, pause_reason, nsfw_only,"
            " server_daily_seconds FROM guild_settings WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return GuildSettings(guild_id)
        values = list(row)
        values[7] = bool(values[7])
        values[9] = bool(values[9])
        return GuildSettings(*values)

    async def save_guild_settings(
        self, settings: GuildSettings, now: float, audit: AuditRecord | None = None
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO guild_settings (guild_id, daily_seconds, max_concurrent, max_duration,"
                " max_resolution, exempt_role_id, moderator_role_id, paused, pause_reason,"
                " nsfw_only, server_daily_seconds, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id) DO UPDATE SET daily_seconds = excluded.daily_seconds,"
                " max_concurrent = excluded.max_concurrent, max_duration = excluded.max_duration,"
                " max_resolution = excluded.max_resolution,"
                " exempt_role_id = excluded.exempt_role_id,"
                " moderator_role_id = excluded.moderator_role_id, paused = excluded.paused,"
                " pause_reason = excluded.pause_reason, nsfw_only = excluded.nsfw_only,"
                " server_daily_seconds = excluded.server_daily_seconds,"
                " updated_at = excluded.updated_at",
                (
                    settings.guild_id,
                    settings.daily_seconds,
                    settings.max_concurrent,
                    settings.max_duration,
                    settings.max_resolution,
                    settings.exempt_role_id,
                    settings.moderator_role_id,
                    int(settings.paused),
                    settings.pause_reason,
                    int(settings.nsfw_only),
                    settings.server_daily_seconds,
                    now,
                ),
            )
            await write_audit(conn, audit, now)

    async def user_override(self, guild_id: int, user_id: int) -> UserOverride:
        row = await self._db.fetchone(
            "SELECT guild_id, user_id, daily_seconds, max_concurrent FROM user_overrides"
            " WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        return UserOverride(*row) if row else UserOverride(guild_id, user_id)

    async def save_user_override(
        self, override: UserOverride, now: float, audit: AuditRecord | None = None
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO user_overrides (guild_id, user_id, daily_seconds, max_concurrent,"
                " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE"
                " SET daily_seconds = excluded.daily_seconds,"
                " max_concurrent = excluded.max_concurrent, updated_at = excluded.updated_at",
                (
                    override.guild_id,
                    override.user_id,
                    override.daily_seconds,
                    override.max_concurrent,
                    now,
                ),
            )
            await write_audit(conn, audit, now)

    async def ban(
        self,
        guild_id: int,
        user_id: int,
        reason: str | None,
        actor_id: int,
        now: float,
        audit: AuditRecord | None = None,
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO bans (guild_id, user_id, reason, actor_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE"
                " SET reason = excluded.reason, actor_id = excluded.actor_id",
                (guild_id, user_id, reason, actor_id, now),
            )
            await write_audit(conn, audit, now)

    async def unban(
        self, guild_id: int, user_id: int, now: float, audit: AuditRecord | None = None
    ) -> bool:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM bans WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            if cur.rowcount != 1:
                return False
            await write_audit(conn, audit, now)
            return True

    async def get_ban(self, guild_id: int, user_id: int) -> Ban | None:
        row = await self._db.fetchone(
            "SELECT guild_id, user_id, reason, actor_id, created_at FROM bans"
            " WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        return Ban(*row) if row else None

    async def set_channel_rule(
        self,
        guild_id: int,
        channel_id: int,
        rule: str | None,
        now: float,
        audit: AuditRecord | None = None,
    ) -> None:
        """``rule`` is 'allow', 'deny', or None to remove the channel's rule."""
        async with self._db.transaction() as conn:
            if rule is None:
                await conn.execute(
                    "DELETE FROM channel_rules WHERE guild_id = ? AND channel_id = ?",
                    (guild_id, channel_id),
                )
            else:
                await conn.execute(
                    "INSERT INTO channel_rules (guild_id, channel_id, rule) VALUES (?, ?, ?)"
                    " ON CONFLICT (guild_id, channel_id) DO UPDATE SET rule = excluded.rule",
                    (guild_id, channel_id, rule),
                )
            await write_audit(conn, audit, now)

    async def channel_rules(self, guild_id: int) -> dict[int, str]:
        rows = await self._db.fetchall(
            "SELECT channel_id, rule FROM channel_rules WHERE guild_id = ?", (guild_id,)
        )
        return {int(row[0]): str(row[1]) for row in rows}
