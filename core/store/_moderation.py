"""Moderators' settings: server defaults, per-member overrides, bans and channel rules.

Each write commits together with its audit row (see :mod:`core.store._audit`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, select

from core.store._audit import write_audit
from core.store._db import Queries
from core.store._tables import bans, channel_rules, guild_settings, user_overrides
from core.store.types import AuditRecord, Ban, GuildSettings, UserOverride

_SETTINGS = (
    "guild_id",
    "daily_seconds",
    "max_concurrent",
    "max_duration",
    "max_resolution",
    "exempt_role_id",
    "moderator_role_id",
    "paused",
    "pause_reason",
    "nsfw_only",
    "server_daily_seconds",
)
_BOOLEANS = ("paused", "nsfw_only")  # kept as 0/1 integers
_OVERRIDE = ("guild_id", "user_id", "daily_seconds", "max_concurrent")
_BAN = ("guild_id", "user_id", "reason", "actor_id", "created_at")


def _columns(table: Table, names: tuple[str, ...]) -> list[Any]:
    return [table.c[name] for name in names]


class ModerationQueries(Queries):
    async def guild_settings(self, guild_id: int) -> GuildSettings:
        row = await self._db.fetchone(
            select(*_columns(guild_settings, _SETTINGS)).where(
                guild_settings.c.guild_id == guild_id
            )
        )
        if row is None:
            return GuildSettings(guild_id)
        values = dict(row._mapping)
        for name in _BOOLEANS:
            values[name] = bool(values[name])
        return GuildSettings(**values)

    async def save_guild_settings(
        self, settings: GuildSettings, now: float, audit: AuditRecord | None = None
    ) -> None:
        values: dict[str, Any] = {name: getattr(settings, name) for name in _SETTINGS}
        for name in _BOOLEANS:
            values[name] = int(values[name])
        statement = self._db.upsert(guild_settings, {**values, "updated_at": now}, ("guild_id",))
        async with self._db.transaction() as conn:
            await conn.execute(statement)
            await write_audit(conn, audit, now)

    async def user_override(self, guild_id: int, user_id: int) -> UserOverride:
        row = await self._db.fetchone(
            select(*_columns(user_overrides, _OVERRIDE)).where(
                user_overrides.c.guild_id == guild_id, user_overrides.c.user_id == user_id
            )
        )
        return UserOverride(*row) if row else UserOverride(guild_id, user_id)

    async def save_user_override(
        self, override: UserOverride, now: float, audit: AuditRecord | None = None
    ) -> None:
        values = {name: getattr(override, name) for name in _OVERRIDE}
        statement = self._db.upsert(
            user_overrides, {**values, "updated_at": now}, ("guild_id", "user_id")
        )
        async with self._db.transaction() as conn:
            await conn.execute(statement)
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
        insert = self._db.insert(bans).values(
            guild_id=guild_id, user_id=user_id, reason=reason, actor_id=actor_id, created_at=now
        )
        statement = insert.on_conflict_do_update(  # a new ban's reason; the first ban's time
            index_elements=[bans.c.guild_id, bans.c.user_id],
            set_={"reason": insert.excluded.reason, "actor_id": insert.excluded.actor_id},
        )
        async with self._db.transaction() as conn:
            await conn.execute(statement)
            await write_audit(conn, audit, now)

    async def unban(
        self, guild_id: int, user_id: int, now: float, audit: AuditRecord | None = None
    ) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(bans).where(bans.c.guild_id == guild_id, bans.c.user_id == user_id)
            )
            if result.rowcount != 1:
                return False
            await write_audit(conn, audit, now)
            return True

    async def get_ban(self, guild_id: int, user_id: int) -> Ban | None:
        row = await self._db.fetchone(
            select(*_columns(bans, _BAN)).where(
                bans.c.guild_id == guild_id, bans.c.user_id == user_id
            )
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
        if rule is None:
            statement: Any = delete(channel_rules).where(
                channel_rules.c.guild_id == guild_id, channel_rules.c.channel_id == channel_id
            )
        else:
            statement = self._db.upsert(
                channel_rules,
                {"guild_id": guild_id, "channel_id": channel_id, "rule": rule},
                ("guild_id", "channel_id"),
            )
        async with self._db.transaction() as conn:
            await conn.execute(statement)
            await write_audit(conn, audit, now)

    async def channel_rules(self, guild_id: int) -> dict[int, str]:
        rows = await self._db.fetchall(
            select(channel_rules.c.channel_id, channel_rules.c.rule).where(
                channel_rules.c.guild_id == guild_id
            )
        )
        return {int(row[0]): str(row[1]) for row in rows}
