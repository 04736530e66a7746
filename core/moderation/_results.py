"""What the moderation actions take and give back: plain values, before and after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from core.jobs import Job
from core.quota import QuotaStatus
from core.store import Ban, GuildSettings, UserOverride

T = TypeVar("T")

LimitSource = Literal["member override", "server default", "bot default"]


@dataclass(frozen=True, slots=True)
class Actor:
    """The moderator acting (the face has checked that they are one)."""

    guild_id: int
    user_id: int
    manages_server: bool = False  # only they may change the moderator role


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    before: T
    after: T

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True, slots=True)
class MemberQuota:
    """A member's limits, today's usage and where each limit comes from."""

    status: QuotaStatus
    override: UserOverride
    guild: GuildSettings
    ban: Ban | None
    granted_today: int  # seconds granted for today, already netted in ``status.used``

    @property
    def daily_source(self) -> LimitSource:
        return _source(self.override.daily_seconds, self.guild.daily_seconds)

    @property
    def concurrent_source(self) -> LimitSource:
        return _source(self.override.max_concurrent, self.guild.max_concurrent)


def _source(member_value: int | None, server_value: int | None) -> LimitSource:
    if member_value is not None:
        return "member override"
    return "server default" if server_value is not None else "bot default"


@dataclass(frozen=True, slots=True)
class ServerDefaults:
    """A server's settings, with the bot's defaults that apply where it sets none."""

    guild: GuildSettings
    bot_daily_seconds: int
    bot_max_concurrent: int
    server_cap_max: int | None = None  # the operator's SERVER_DAILY_SECONDS_MAX
    server_cap: int | None = None  # the cap in force: the server's own, bounded by the max


@dataclass(frozen=True, slots=True)
class DefaultsUpdate(Change[ServerDefaults]):
    asked: bool  # some setting was given; False: the defaults were only read


@dataclass(frozen=True, slots=True)
class BanResult:
    before: Ban | None
    reason: str | None
    changed: bool  # False: already banned for that reason, nothing written
    unfinished: int  # the member's videos still in progress (they finish)


@dataclass(frozen=True, slots=True)
class RuleChange(Change[str | None]):
    channel_id: int
    rules: dict[int, str]  # every channel rule of the server, after the change


@dataclass(frozen=True, slots=True)
class ChannelRules:
    rules: dict[int, str]  # channel id → "allow" | "deny"
    nsfw_only: bool


@dataclass(frozen=True, slots=True)
class JobSection:
    name: str
    jobs: tuple[Job, ...]


@dataclass(frozen=True, slots=True)
class JobListing:
    sections: tuple[JobSection, ...]
    now: float  # when the listing was read, for the jobs' ages
