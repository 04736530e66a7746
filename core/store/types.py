"""The store's domain types and errors: what its methods take and return.

Plain frozen dataclasses, nothing tied to an engine: SQLite and PostgreSQL return the same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from core.attachments import Kind
from core.characters import Scope, braced, name_key
from core.errors import Refused, UserError
from core.jobs import JobOrigin, JobState
from core.references import Attachment, LabelledReference
from core.request import DURATION_MIN, GenerationRequest


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def day_end(day: str) -> datetime:
    """00:00 UTC after ``day`` (YYYY-MM-DD): when that day's quotas and caps reset."""
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)


def next_utc_midnight(now: float) -> datetime:
    """The next 00:00 UTC, when daily usage (a member's, a server's, the bot's) starts again."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)


class QuotaExceeded(UserError):
    """The member has not enough seconds left today."""

    def __init__(
        self, needed: int, remaining: int, request: GenerationRequest | None = None
    ) -> None:
        self.needed = needed
        self.remaining = remaining
        super().__init__(
            f"This video costs {needed} s of your daily quota but you have {remaining} s left"
            f" today. {quota_advice(needed, remaining, request)}"
        )


def quota_advice(needed: int, remaining: int, request: GenerationRequest | None) -> str:
    """What could fit instead: only what really costs less (720P only when it is cheaper)."""
    tries = []
    # The shortest video at this resolution costs about this much (cost per second × minimum).
    per_second = needed / request.duration if request is not None and request.duration else 1.0
    shortest = math.ceil(DURATION_MIN * per_second)
    if shortest <= remaining and (request is None or request.duration > DURATION_MIN):
        tries.append("a shorter duration")
    # At 720P a job costs its duration (core.quota.job_cost): cheaper only if 1080P costs more.
    if request is not None and request.resolution != "720P" and request.duration < needed:
        tries.append(f"720P (it costs {request.duration} s)")
    wait = "wait for the daily reset (00:00 UTC)"
    if not tries:
        return wait[0].upper() + wait[1:] + "."
    return f"Try {' or '.join(tries)}, or {wait}."


class TooManyJobs(UserError):
    """The member already has as many unfinished jobs as allowed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"You already have {limit} video(s) being made here, the most allowed at once."
            " Wait for one to finish."
        )


Cap = Literal["budget", "server"]


class CapExceeded(UserError):
    """The bot's daily budget or the server's daily cap has not room for this video."""

    def __init__(self, cap: Cap, needed: int, remaining: int, day: str) -> None:
        self.cap = cap
        self.needed = needed
        self.remaining = remaining
        self.resets_at = day_end(day)  # the end of the day the reservation counts in
        what = "The bot's daily budget" if cap == "budget" else "This server's daily cap"
        whose = "for all servers" if cap == "budget" else "for this server"
        left = f"only {remaining} s are left today {whose}" if remaining else "it is used up"
        super().__init__(
            f"{what} has no room for this video: it costs {needed} s and {left}."
            f" It resets <t:{int(self.resets_at.timestamp())}:R> (00:00 UTC)."
            " Nothing was charged."
        )


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """What a reservation must fit in: the member's limits (unless exempt), and the caps on a
    whole day's spending of the server and of the bot (None: no cap)."""

    daily_seconds: int
    max_concurrent: int
    exempt: bool = False  # exempt from the member's limits only, never from the caps
    server_daily_seconds: int | None = None
    budget_daily_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    guild_id: int
    channel_id: int
    user_id: int
    origin: JobOrigin
    request: GenerationRequest
    references: tuple[LabelledReference, ...]
    cost_seconds: int
    deadline_at: float
    webhook_token_hash: str | None = None
    parent_job_id: str | None = None
    thread_id: int | None = None
    reference_copies: dict[str, list[int]] = field(default_factory=dict)
    user_name: str | None = None  # the requester's display name, for reports


@dataclass(frozen=True, slots=True)
class Lease:
    """A job claimed by this process: its state at the claim, and the fence every later write
    of the claim must pass (``fence=``)."""

    job_id: str
    state: JobState
    fence: int


@dataclass(frozen=True, slots=True)
class GuildSettings:
    guild_id: int
    daily_seconds: int | None = None
    max_concurrent: int | None = None
    max_duration: int | None = None
    max_resolution: str | None = None
    exempt_role_id: int | None = None
    moderator_role_id: int | None = None
    paused: bool = False
    pause_reason: str | None = None
    nsfw_only: bool = False
    server_daily_seconds: int | None = None  # the server's own daily cap (moderators)


@dataclass(frozen=True, slots=True)
class UserOverride:
    guild_id: int
    user_id: int
    daily_seconds: int | None = None
    max_concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class Ban:
    guild_id: int
    user_id: int
    reason: str | None
    actor_id: int
    created_at: float


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    guild_id: int
    user_id: int
    job_id: str | None
    kind: str
    seconds: int
    day: str
    actor_id: int | None
    note: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An admin action to log in the same transaction as the change it describes."""

    guild_id: int
    actor_id: int
    action: str
    target: str | None = None
    before: Any = None
    after: Any = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    guild_id: int
    actor_id: int
    action: str
    target: str | None
    before: Any
    after: Any
    created_at: float


@dataclass(frozen=True, slots=True)
class DaySpend:
    """Seconds reserved minus refunded on one UTC day: what the day cost (and is costing)."""

    day: str
    seconds: int
    guild_id: int | None = None  # None: every server together


@dataclass(frozen=True, slots=True)
class UsageRow:
    user_id: int
    seconds: int
    jobs: int
    failed: int
    name: str | None = None  # the display name on the member's latest job


# ----------------------------------------------------------------- characters

Files = dict[str, list[int]]  # "media" / "voice" → [channel id, message id, attachment position]


@dataclass(frozen=True, slots=True)
class NewCharacter:
    guild_id: int
    owner_id: int
    scope: Scope
    name: str
    kind: Kind
    media: Attachment
    voice: Attachment | None
    files: Files


@dataclass(frozen=True, slots=True)
class Character:
    id: int
    guild_id: int
    owner_id: int
    scope: Scope
    name: str
    kind: Kind
    media: Attachment  # as saved; its URL is refreshed from ``files`` before use
    voice: Attachment | None
    files: Files
    created_at: float

    @property
    def key(self) -> str:
        return name_key(self.name)


class NameTaken(Refused):
    def __init__(self, name: str, scope: Scope) -> None:
        where = "You already have" if scope == "me" else "This server already has"
        super().__init__(
            f"{where} a character named {braced(name)}. Pick another name, or rename or"
            " delete the old one first."
        )
