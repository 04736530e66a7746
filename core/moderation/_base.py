"""What every moderation action shares: the services, the clock, and one way to write a change."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from core.config import Settings
from core.moderation._results import Actor, Change
from core.service import VideoService
from core.store import AuditRecord, GuildSettings, Store

log = logging.getLogger(__name__)

R = TypeVar("R")


class ModerationBase:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        service: VideoService,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.service = service
        self._clock = clock

    async def _change(
        self,
        actor: Actor,
        action: str,
        target: str | None,
        before: Any,
        after: Any,
        write: Callable[[AuditRecord], Awaitable[R]],
    ) -> R:
        """Write a change and its audit row, then log it.

        ``write`` hands the audit record to the one store call that makes the change, which
        writes both in one transaction: there is no change without its row, nor a row without it.
        """
        audit = AuditRecord(actor.guild_id, actor.user_id, action, target, before, after)
        result = await write(audit)
        log.info(
            "guild %s: %s %s by %s: %s -> %s",
            audit.guild_id,
            audit.action,
            audit.target or "server",
            audit.actor_id,
            audit.before,
            audit.after,
        )
        return result

    async def _save_settings(
        self,
        actor: Actor,
        before: GuildSettings,
        after: GuildSettings,
        action: str,
        reason: str | None = None,
    ) -> Change[GuildSettings]:
        """Save a server's settings; the audit row holds the fields that changed."""
        changed = [
            field.name
            for field in dataclasses.fields(GuildSettings)
            if getattr(before, field.name) != getattr(after, field.name)
        ]
        after_values: dict[str, Any] = {name: getattr(after, name) for name in changed}
        if reason is not None:
            after_values["reason"] = reason
        now = self._clock()
        await self._change(
            actor,
            action,
            None,
            {name: getattr(before, name) for name in changed},
            after_values,
            lambda audit: self.store.save_guild_settings(after, now, audit),
        )
        return Change(before, after)
