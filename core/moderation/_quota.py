"""A member's quota: look, override, reset today's usage, grant extra seconds."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from core.errors import UserError
from core.moderation._base import ModerationBase
from core.moderation._limits import (
    MAX_CONCURRENT,
    MAX_DAILY_SECONDS,
    MAX_GRANT_SECONDS,
    check_range,
    clean_text,
)
from core.moderation._results import Actor, Change, MemberQuota
from core.quota import QuotaStatus, quota_status
from core.store import UserOverride, utc_day


def _override_values(override: UserOverride) -> dict[str, int | None]:
    return {"daily_seconds": override.daily_seconds, "max_concurrent": override.max_concurrent}


class QuotaActions(ModerationBase):
    async def member_quota(
        self, guild_id: int, user_id: int, role_ids: Collection[int] = ()
    ) -> MemberQuota:
        store = self.store
        now = self._clock()
        status = await quota_status(store, self.settings, guild_id, user_id, role_ids, now)
        today = utc_day(now)
        granted = sum(
            -entry.seconds
            for entry in await store.ledger_entries(guild_id, since_day=today, user_id=user_id)
            if entry.kind == "grant" and entry.day == today
        )
        return MemberQuota(
            status=status,
            override=await store.user_override(guild_id, user_id),
            guild=await store.guild_settings(guild_id),
            ban=await store.get_ban(guild_id, user_id),
            granted_today=granted,
        )

    async def set_quota(
        self,
        actor: Actor,
        user_id: int,
        *,
        daily_seconds: int | None = None,
        max_concurrent: int | None = None,
        use_server_defaults: bool = False,
    ) -> Change[UserOverride]:
        """A member's override; unchanged (nothing written) when it already was that."""
        check_range("daily_seconds", daily_seconds, 1, MAX_DAILY_SECONDS)
        check_range("max_concurrent", max_concurrent, 1, MAX_CONCURRENT)
        given = daily_seconds is not None or max_concurrent is not None
        if use_server_defaults and given:
            raise UserError(
                "Either set values or use `use_server_defaults`, not both. Nothing was changed."
            )
        if not use_server_defaults and not given:
            raise UserError(
                "Give `daily_seconds`, `max_concurrent`, or `use_server_defaults: True`."
                " Nothing was changed."
            )
        before = await self.store.user_override(actor.guild_id, user_id)
        if use_server_defaults:
            after = dataclasses.replace(before, daily_seconds=None, max_concurrent=None)
        else:
            after = dataclasses.replace(
                before,
                daily_seconds=before.daily_seconds if daily_seconds is None else daily_seconds,
                max_concurrent=before.max_concurrent if max_concurrent is None else max_concurrent,
            )
        change = Change(before, after)
        if change.changed:
            now = self._clock()
            await self._change(
                actor,
                "quota.set",
                f"user:{user_id}",
                _override_values(before),
                _override_values(after),
                lambda audit: self.store.save_user_override(after, now, audit),
            )
        return change

    async def reset_quota(self, actor: Actor, user_id: int) -> int:
        """Give back the seconds a member used today; 0 (nothing written) when none were."""
        now = self._clock()
        used = await self.store.usage(actor.guild_id, user_id, utc_day(now))
        if used <= 0:
            # Resetting would also take back today's grants: leave them alone.
            return 0
        return await self._change(
            actor,
            "quota.reset",
            f"user:{user_id}",
            {"used_seconds": used},
            {"used_seconds": 0},
            lambda audit: self.store.reset_usage(
                actor.guild_id, user_id, actor.user_id, now, audit
            ),
        )

    async def grant(
        self,
        actor: Actor,
        user_id: int,
        seconds: int,
        *,
        note: str | None = None,
        role_ids: Collection[int] = (),
    ) -> QuotaStatus:
        """Extra seconds for today (a ``grant`` ledger row); the member's quota afterwards."""
        check_range("seconds", seconds, 1, MAX_GRANT_SECONDS)
        note = clean_text("note", note)
        store = self.store
        guild_id = actor.guild_id
        now = self._clock()
        used = await store.usage(guild_id, user_id, utc_day(now))
        await self._change(
            actor,
            "quota.grant",
            f"user:{user_id}",
            {"used_seconds": used},
            {"used_seconds": used - seconds, "granted": seconds, "note": note},
            lambda audit: store.grant(guild_id, user_id, seconds, actor.user_id, now, note, audit),
        )
        return await quota_status(store, self.settings, guild_id, user_id, role_ids, now)
