"""What moderators may set: the ranges and choices, and the checks every action runs first."""

from __future__ import annotations

from typing import Final, Literal

from core.errors import UserError

DAY_SECONDS: Final = 86_400
MAX_DAILY_SECONDS: Final = 86_400  # a whole day of video: far above any sensible allowance
# A server's daily cap, when the operator sets no SERVER_DAILY_SECONDS_MAX: about 11 days of video.
MAX_SERVER_DAILY_SECONDS: Final = 1_000_000
MAX_CONCURRENT: Final = 50
MAX_GRANT_SECONDS: Final = 86_400
MAX_USAGE_DAYS: Final = 90
MAX_REASON_CHARS: Final = 200
MAX_JOB_ID_CHARS: Final = 64
MAX_AUDIT_SHOWN: Final = 25
JOBS_SHOWN: Final = 20
RECENT_FINISHED_SHOWN: Final = 10
CANCEL_CHOICES: Final = 25  # Discord shows at most 25 autocomplete choices

ChannelRule = Literal["allow", "deny"]
# A server default that `unset` puts back.
DefaultField = Literal[
    "daily_seconds",
    "max_concurrent",
    "max_duration",
    "max_resolution",
    "exempt_role",
    "moderator_role",
    "server_daily_seconds",
]
JobFilter = Literal[
    "unfinished",
    "finished",
    "reserved",
    "submitting",
    "submitted",
    "running",
    "completed",
    "delivered",
    "failed",
    "cancelled",
]

# `unset` choice → GuildSettings field.
DEFAULT_FIELDS: Final[dict[str, str]] = {
    "daily_seconds": "daily_seconds",
    "max_concurrent": "max_concurrent",
    "max_duration": "max_duration",
    "max_resolution": "max_resolution",
    "exempt_role": "exempt_role_id",
    "moderator_role": "moderator_role_id",
    "server_daily_seconds": "server_daily_seconds",
}


def check_range(name: str, value: int | None, low: int, high: int) -> None:
    # Discord enforces min/max for slash commands, but a changed or stale command registration
    # must not write a negative quota, so the actions check too.
    if value is not None and not low <= value <= high:
        raise UserError(
            f"`{name}` must be a whole number from {low} to {high} (you gave {value}). "
            "Nothing was changed."
        )


def clean_text(name: str, value: str | None, limit: int = MAX_REASON_CHARS) -> str | None:
    """Stripped text, None when empty; longer than ``limit`` is refused."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise UserError(f"`{name}` can be at most {limit} characters. Nothing was changed.")
    return value or None
