"""What moderators do (``/admin``), apart from Discord: quotas, defaults, bans, pause, channel
rules, jobs, cancel, usage and the audit log.

:class:`Moderation` has one method per action. Its arguments are checked before anything is read
or written: a bad one is a :class:`core.errors.UserError` that says what is allowed, and nothing
changes. Every change is one store call that writes it together with its audit row in one
transaction (``ModerationBase._change``). Results are plain values (before/after) for a face to
render; settings are read fresh by every request, so a change applies to the next one at once.

Inside: ``_limits`` (ranges, choices, argument checks), ``_results`` (the values returned),
``_base`` (the shared write path), ``_quota``, ``_server``, ``_jobs`` (the actions by subject),
``_usage`` (the usage report and its CSV).
"""

from __future__ import annotations

from core.moderation._jobs import JobActions
from core.moderation._limits import (
    DAY_SECONDS,
    DEFAULT_FIELDS,
    JOBS_SHOWN,
    MAX_AUDIT_SHOWN,
    MAX_CONCURRENT,
    MAX_DAILY_SECONDS,
    MAX_GRANT_SECONDS,
    MAX_JOB_ID_CHARS,
    MAX_REASON_CHARS,
    MAX_SERVER_DAILY_SECONDS,
    MAX_USAGE_DAYS,
    RECENT_FINISHED_SHOWN,
    ChannelRule,
    DefaultField,
    JobFilter,
    check_range,
    clean_text,
)
from core.moderation._quota import QuotaActions
from core.moderation._results import (
    Actor,
    BanResult,
    Change,
    ChannelRules,
    DefaultsUpdate,
    JobListing,
    JobSection,
    LimitSource,
    MemberQuota,
    RuleChange,
    ServerDefaults,
)
from core.moderation._server import ServerActions
from core.moderation._usage import (
    TOP_USERS_SHOWN,
    USAGE_CSV_FIELDS,
    SpendToday,
    UsageReport,
    spreadsheet_safe,
    usage_csv,
)

__all__ = [
    "DAY_SECONDS",
    "DEFAULT_FIELDS",
    "JOBS_SHOWN",
    "MAX_AUDIT_SHOWN",
    "MAX_CONCURRENT",
    "MAX_DAILY_SECONDS",
    "MAX_GRANT_SECONDS",
    "MAX_JOB_ID_CHARS",
    "MAX_REASON_CHARS",
    "MAX_SERVER_DAILY_SECONDS",
    "MAX_USAGE_DAYS",
    "RECENT_FINISHED_SHOWN",
    "TOP_USERS_SHOWN",
    "USAGE_CSV_FIELDS",
    "Actor",
    "BanResult",
    "Change",
    "ChannelRule",
    "ChannelRules",
    "DefaultField",
    "DefaultsUpdate",
    "JobFilter",
    "JobListing",
    "JobSection",
    "LimitSource",
    "MemberQuota",
    "Moderation",
    "RuleChange",
    "ServerDefaults",
    "SpendToday",
    "UsageReport",
    "check_range",
    "clean_text",
    "spreadsheet_safe",
    "usage_csv",
]


class Moderation(QuotaActions, ServerActions, JobActions):
    """The moderators' actions, built from the settings, the store and the video service."""
