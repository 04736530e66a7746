"""The options of ``/admin``'s commands: ranges Discord enforces in its UI, and choices.

The ranges come from the moderation service's limits, which checks them again
(:func:`core.moderation.check_range`): a stale command registration must not get past them.
"""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands

from core.moderation import (
    MAX_AUDIT_SHOWN,
    MAX_CONCURRENT,
    MAX_DAILY_SECONDS,
    MAX_GRANT_SECONDS,
    MAX_JOB_ID_CHARS,
    MAX_REASON_CHARS,
    MAX_SERVER_DAILY_SECONDS,
    MAX_USAGE_DAYS,
    DefaultField,
    JobFilter,
)
from core.request import DURATION_MAX, DURATION_MIN

DailySeconds = app_commands.Range[int, 1, MAX_DAILY_SECONDS]
Concurrency = app_commands.Range[int, 1, MAX_CONCURRENT]
# The operator's SERVER_DAILY_SECONDS_MAX may be lower: the moderation service says so.
ServerDailySeconds = app_commands.Range[int, 1, MAX_SERVER_DAILY_SECONDS]
GrantSeconds = app_commands.Range[int, 1, MAX_GRANT_SECONDS]
MaxDuration = app_commands.Range[int, DURATION_MIN, DURATION_MAX]
UsageDays = app_commands.Range[int, 1, MAX_USAGE_DAYS]
AuditLimit = app_commands.Range[int, 1, MAX_AUDIT_SHOWN]
Reason = app_commands.Range[str, 1, MAX_REASON_CHARS]
JobId = app_commands.Range[str, 1, MAX_JOB_ID_CHARS]
Resolution = Literal["720P", "1080P"]
ChannelOption = discord.TextChannel | discord.VoiceChannel

__all__ = [
    "AuditLimit",
    "ChannelOption",
    "Concurrency",
    "DailySeconds",
    "DefaultField",
    "GrantSeconds",
    "JobFilter",
    "JobId",
    "MaxDuration",
    "Reason",
    "Resolution",
    "ServerDailySeconds",
    "UsageDays",
]
