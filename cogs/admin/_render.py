"""How ``/admin``'s answers look: the moderation service's results as embeds and lines.

Pure functions from core values to discord.py values; nothing here talks to Discord.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import discord

from core.jobs import Job
from core.moderation import (
    BanResult,
    Change,
    JobListing,
    MemberQuota,
    ServerDefaults,
    SpendToday,
    UsageReport,
)
from core.quota import QuotaStatus
from core.request import DURATION_MAX, RESOLUTIONS
from core.store import AuditEntry, UserOverride
from core.timefmt import format_duration
from discord_side.presenter import job_link, short_state, shorten

FIELD_MAX: Final = 1024  # characters in an embed field's value
DESCRIPTION_BUDGET: Final = 4000  # of an embed description's 4096, with room to spare


def _mention_target(target: str | None) -> str:
    if target is None:
        return "server"
    kind, _, ident = target.partition(":")
    if kind == "user" and ident.isdigit():
        return f"<@{ident}>"
    if kind == "channel" and ident.isdigit():
        return f"<#{ident}>"
    return f"`{target}`"


def _compact(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))


def _resets(status: QuotaStatus) -> str:
    return f"<t:{int(status.resets_at.timestamp())}:R>"


def _role(role_id: int | None) -> str:
    return "none" if role_id is None else f"<@&{role_id}>"


def _whole_lines(lines: list[str], budget: int) -> str:
    """The first lines that fit ``budget`` characters, each ending in a newline."""
    text = ""
    for line in lines:
        if len(text) + len(line) + 1 > budget:
            break
        text += line + "\n"
    return text


# ----------------------------------------------------------------- quota


def member_quota_embed(quota: MemberQuota, display_name: str) -> discord.Embed:
    status = quota.status
    limits = status.limits
    granted = quota.granted_today
    lines = [
        f"Daily allowance: {limits.daily_seconds} s ({quota.daily_source})",
        f"Videos at once: {limits.max_concurrent} ({quota.concurrent_source})",
        f"Used today: {status.used} s"
        + (f" (net of {granted} s granted today)" if granted else "")
        + f"; left: {status.remaining} s; resets {_resets(status)}",
        f"Unfinished jobs: {status.unfinished}",
    ]
    if limits.exempt:
        lines.append("Quota-exempt through their role: no limits are enforced.")
    if quota.ban is not None:
        lines.append(f"⛔ Banned{': ' + quota.ban.reason if quota.ban.reason else ''}")
    return discord.Embed(
        title=f"Quota of {display_name}",
        description="\n".join(lines),
        colour=discord.Colour.blurple(),
    )


def quota_set_text(change: Change[UserOverride], mention: str) -> str:
    if not change.changed:
        return f"{mention} already has that. Nothing changed."

    def shown(value: int | None, unit: str = "") -> str:
        return "default" if value is None else f"{value}{unit}"

    before, after = change.before, change.after
    return (
        f"Quota of {mention} updated: daily {shown(after.daily_seconds, ' s')},"
        f" at once {shown(after.max_concurrent)}"
        f" (was daily {shown(before.daily_seconds, ' s')},"
        f" at once {shown(before.max_concurrent)}). It applies to their next request."
    )


def quota_reset_text(returned: int, mention: str) -> str:
    if returned <= 0:
        return f"{mention} has used nothing today. Nothing changed."
    return f"Gave {mention} back the {returned} s they used today."


def grant_text(status: QuotaStatus, seconds: int, mention: str) -> str:
    return (
        f"Granted {mention} {seconds} extra s for today; they now have"
        f" {status.remaining} s left until {_resets(status)}."
    )


# ----------------------------------------------------------------- defaults, bans, channels


def defaults_embed(defaults: ServerDefaults) -> discord.Embed:
    guild = defaults.guild

    def source(value: object, fallback: object, unit: str = "") -> str:
        if value is None:
            return f"{fallback}{unit} (bot default)"
        return f"{value}{unit}"

    daily = source(guild.daily_seconds, defaults.bot_daily_seconds, " s")
    concurrent = source(guild.max_concurrent, defaults.bot_max_concurrent)
    embed = discord.Embed(title="Server defaults", colour=discord.Colour.blurple())
    embed.description = "\n".join(
        [
            f"Daily seconds per member: {daily}",
            f"Videos at once per member: {concurrent}",
            f"Max duration: {source(guild.max_duration, DURATION_MAX, ' s')}",
            f"Max resolution: {source(guild.max_resolution, RESOLUTIONS[-1])}",
            f"Quota-exempt role: {_role(guild.exempt_role_id)}",
            f"Moderator role: {_role(guild.moderator_role_id)} (Manage Server always counts)",
            f"Paused: {'yes' if guild.paused else 'no'}"
            + (f" ({guild.pause_reason})" if guild.paused and guild.pause_reason else ""),
            f"Age-restricted channels only: {'yes' if guild.nsfw_only else 'no'}",
            f"Server daily cap (all members): {server_cap_text(defaults)}",
        ]
    )
    embed.set_footer(text="Member overrides: /admin quota set")
    return embed


def server_cap_text(defaults: ServerDefaults) -> str:
    cap, bound = defaults.server_cap, defaults.server_cap_max
    if cap is None:
        return "none"
    if defaults.guild.server_daily_seconds is None:
        return f"{cap} s (the bot's limit for every server)"
    if bound is not None and defaults.guild.server_daily_seconds > bound:
        asked = defaults.guild.server_daily_seconds
        return f"{cap} s (the bot's limit; this server asked for {asked} s)"
    suffix = f", at most {bound} s allowed" if bound is not None else ""
    return f"{cap} s{suffix}"


def spend_today_text(today: SpendToday) -> str:
    resets = f"resets <t:{int(today.resets_at.timestamp())}:R>"
    if today.cap is None:
        text = f"**{today.spent} s** spent today (no server cap); {resets}."
    else:
        text = f"**{today.spent} s of {today.cap} s** spent today ({today.left} s left); {resets}."
    if today.budget_left is not None:
        text += f" The bot's daily budget for all servers has {today.budget_left} s left."
    return text


def ban_text(result: BanResult, mention: str) -> str:
    if not result.changed:
        return f"{mention} is already banned. Nothing changed."
    text = f"{mention} can no longer make videos here."
    if result.before is not None:
        text = f"{mention} was already banned; the reason is updated."
    if result.unfinished:
        text += (
            f" Their {result.unfinished} video(s) in progress will still finish;"
            " stop them with `/admin cancel`."
        )
    return text


def rules_text(rules: Mapping[int, str]) -> str:
    allowed = sorted(channel for channel, rule in rules.items() if rule == "allow")
    denied = sorted(channel for channel, rule in rules.items() if rule == "deny")
    if allowed:
        text = "Videos only in: " + ", ".join(f"<#{channel}>" for channel in allowed) + "."
    else:
        text = "Videos in any channel."
    if denied:
        text += " Never in: " + ", ".join(f"<#{channel}>" for channel in denied) + "."
    return text + " Threads follow their channel."


# ----------------------------------------------------------------- jobs, usage, audit


def job_line(job: Job, now: float) -> str:
    request = job.request
    return shorten(
        f"`{job.id}` {short_state(job)} · <@{job.user_id}> · {request.duration} s"
        f" {request.resolution} · age {format_duration(now - job.created_at)}"
        f" · [open]({job_link(job)})",
        300,
    )


def jobs_embed(listing: JobListing, whose: str | None) -> discord.Embed:
    title = "Jobs" + (f" of {whose}" if whose is not None else "")
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    for section in listing.sections:
        lines = [job_line(job, listing.now) for job in section.jobs] or ["none"]
        embed.add_field(name=section.name, value=_whole_lines(lines, FIELD_MAX), inline=False)
    embed.set_footer(text="Stop one with /admin cancel job_id")
    return embed


def cancel_choice_name(job: Job) -> str:
    return shorten(f"{job.id} · {job.state.value} · {job.request.prompt}", 100)


def cancelled_text(job: Job) -> str:
    return (
        f"Cancelled job `{job.id}` of <@{job.user_id}>; {job.cost_seconds} s refunded."
        " The video service has no cancel: a task already sent there may still run."
    )


def usage_embed(report: UsageReport) -> discord.Embed:
    embed = discord.Embed(
        title=f"Usage, last {report.days} day(s)",
        colour=discord.Colour.blurple(),
        description=(
            f"Since {report.since_day} (UTC): **{report.seconds} s** of video delivered,"
            f" {report.jobs} job(s) by {len(report.rows)} member(s), {report.failed} failed."
        ),
    )
    if report.today is not None:
        embed.description = f"Today: {spend_today_text(report.today)}\n{embed.description}"
    top = report.top()
    if top:
        lines = [
            f"{rank}. <@{row.user_id}>: {row.seconds} s ({row.jobs} job(s), {row.failed} failed)"
            for rank, row in enumerate(top, start=1)
        ]
        value = shorten("\n".join(lines), FIELD_MAX)
        embed.add_field(name="Top members", value=value, inline=False)
    embed.set_footer(text="Seconds as charged to quotas, for delivered videos. Full table: CSV.")
    return embed


def audit_line(entry: AuditEntry) -> str:
    return shorten(
        f"`#{entry.id}` <t:{int(entry.created_at)}:R> <@{entry.actor_id}> **{entry.action}**"
        f" {_mention_target(entry.target)}: {_compact(entry.before)} → {_compact(entry.after)}",
        300,
    )


def audit_embed(entries: list[AuditEntry]) -> discord.Embed:
    text = _whole_lines([audit_line(entry) for entry in entries], DESCRIPTION_BUDGET)
    return discord.Embed(title="Audit log", description=text, colour=discord.Colour.dark_grey())
