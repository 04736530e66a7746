"""Quota policy on top of the ledger: what a job costs and what a member may spend.

Unit: seconds of generated video per member per UTC day. A job costs its duration, times
``QUOTA_1080P_MULTIPLIER`` at 1080P (default 1), rounded up. Limits come from, in order of
precedence: the member's override, the server's defaults, the bot's configuration.

Above every member, two caps on a whole day's spending: the server's (``/admin defaults
server_daily_seconds``, never above the operator's ``SERVER_DAILY_SECONDS_MAX``, which is also the
cap of a server that sets none) and the bot's (``BUDGET_DAILY_SECONDS``, all servers together).
The exempt role lifts the member's limits only, never the caps.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from core.config import Settings
from core.request import GenerationRequest
from core.store import (
    GuildSettings,
    QuotaLimits,
    Store,
    UserOverride,
    next_utc_midnight,
    utc_day,
)


def job_cost(request: GenerationRequest, hd_multiplier: float) -> int:
    factor = hd_multiplier if request.resolution == "1080P" else 1.0
    return math.ceil(request.duration * factor)


def effective_limits(
    settings: Settings,
    guild: GuildSettings,
    override: UserOverride,
    role_ids: Collection[int],
) -> QuotaLimits:
    daily = override.daily_seconds
    if daily is None:
        daily = guild.daily_seconds if guild.daily_seconds is not None else settings.daily_seconds
    concurrent = override.max_concurrent
    if concurrent is None:
        concurrent = (
            guild.max_concurrent if guild.max_concurrent is not None else settings.max_concurrent
        )
    exempt = guild.exempt_role_id is not None and guild.exempt_role_id in role_ids
    return QuotaLimits(
        daily_seconds=daily,
        max_concurrent=concurrent,
        exempt=exempt,
        server_daily_seconds=server_cap(settings, guild),
        budget_daily_seconds=settings.budget_daily_seconds,
    )


def server_cap(settings: Settings, guild: GuildSettings) -> int | None:
    """The server's daily cap: its own, bounded by the operator's maximum (None: no cap)."""
    bound = settings.server_daily_seconds_max
    own = guild.server_daily_seconds
    if own is None:
        return bound
    return own if bound is None else min(own, bound)


def next_reset(now: float) -> datetime:
    """The next 00:00 UTC, when daily usage starts again from zero."""
    return next_utc_midnight(now)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    limits: QuotaLimits
    used: int
    unfinished: int
    resets_at: datetime

    @property
    def remaining(self) -> int:
        return max(self.limits.daily_seconds - self.used, 0)


async def quota_status(
    store: Store,
    settings: Settings,
    guild_id: int,
    user_id: int,
    role_ids: Collection[int],
    now: float,
) -> QuotaStatus:
    guild = await store.guild_settings(guild_id)
    override = await store.user_override(guild_id, user_id)
    limits = effective_limits(settings, guild, override, role_ids)
    return QuotaStatus(
        limits=limits,
        used=await store.usage(guild_id, user_id, utc_day(now)),
        unfinished=await store.unfinished_count(guild_id, user_id),
        resets_at=next_reset(now),
    )
