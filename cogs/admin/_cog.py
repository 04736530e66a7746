"""``/admin``: the moderators' tools.

The group carries ``default_permissions`` (Manage Server) and ``guild_only`` itself, because
Discord ignores both on subcommands. Those only hide the commands, so every subcommand also
carries :func:`cogs.permissions.moderator_only`, checked when it runs.

Every change goes through one store call that writes the change and its audit row in one
transaction. Arguments are checked before anything is written: a bad one is a
:class:`core.errors.UserError` (shown ephemerally by the tree's error policy) and changes nothing.
All replies are ephemeral. Settings are read fresh by every request, so changes apply at once.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Literal

import discord
from discord import app_commands
from discord.ext import commands

from cogs.account import format_age, guild_member, job_link, role_ids, short_state
from cogs.limits import fit_content, fit_embed
from cogs.permissions import (
    BotServices,
    has_manage_server,
    is_moderator,
    moderator_only,
    services,
)
from cogs.presenter import shorten
from core.errors import UserError
from core.jobs import FINISHED_STATES, UNFINISHED_STATES, Job, JobState
from core.quota import quota_status
from core.request import DURATION_MAX, DURATION_MIN, RESOLUTIONS
from core.store import AuditEntry, AuditRecord, GuildSettings, UsageRow, UserOverride, utc_day

log = logging.getLogger(__name__)

DAY_SECONDS: Final = 86_400
MAX_DAILY_SECONDS: Final = 86_400  # a whole day of video: far above any sensible allowance
MAX_CONCURRENT: Final = 50
MAX_GRANT_SECONDS: Final = 86_400
MAX_USAGE_DAYS: Final = 90
MAX_REASON_CHARS: Final = 200
MAX_JOB_ID_CHARS: Final = 64
MAX_AUDIT_SHOWN: Final = 25
JOBS_SHOWN: Final = 20
RECENT_FINISHED_SHOWN: Final = 10
TOP_USERS_SHOWN: Final = 10
USAGE_CSV_FIELDS: Final = ("user_id", "member", "seconds", "jobs", "failed")

# Discord enforces these ranges in its UI; the callbacks check them again (see _check_range).
DailySeconds = app_commands.Range[int, 1, MAX_DAILY_SECONDS]
Concurrency = app_commands.Range[int, 1, MAX_CONCURRENT]
GrantSeconds = app_commands.Range[int, 1, MAX_GRANT_SECONDS]
MaxDuration = app_commands.Range[int, DURATION_MIN, DURATION_MAX]
UsageDays = app_commands.Range[int, 1, MAX_USAGE_DAYS]
AuditLimit = app_commands.Range[int, 1, MAX_AUDIT_SHOWN]
Reason = app_commands.Range[str, 1, MAX_REASON_CHARS]
JobId = app_commands.Range[str, 1, MAX_JOB_ID_CHARS]
Resolution = Literal["720P", "1080P"]
ChannelOption = discord.TextChannel | discord.VoiceChannel
DefaultField = Literal[
    "daily_seconds",
    "max_concurrent",
    "max_duration",
    "max_resolution",
    "exempt_role",
    "moderator_role",
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
_DEFAULT_FIELDS: Final = {
    "daily_seconds": "daily_seconds",
    "max_concurrent": "max_concurrent",
    "max_duration": "max_duration",
    "max_resolution": "max_resolution",
    "exempt_role": "exempt_role_id",
    "moderator_role": "moderator_role_id",
}
# Characters that make a spreadsheet treat a cell as a formula (member names are user input).
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "\n")


# ----------------------------------------------------------------- validation


def _check_range(name: str, value: int | None, low: int, high: int) -> None:
    # Discord enforces min/max for slash commands, but a changed or stale command registration
    # must not write a negative quota, so the callback checks too.
    if value is not None and not low <= value <= high:
        raise UserError(
            f"`{name}` must be a whole number from {low} to {high} (you gave {value}). "
            "Nothing was changed."
        )


def _clean_text(name: str, value: str | None, limit: int = MAX_REASON_CHARS) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise UserError(f"`{name}` can be at most {limit} characters. Nothing was changed.")
    return value or None


# ----------------------------------------------------------------- formatting


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


def audit_line(entry: AuditEntry) -> str:
    return shorten(
        f"`#{entry.id}` <t:{int(entry.created_at)}:R> <@{entry.actor_id}> **{entry.action}**"
        f" {_mention_target(entry.target)}: {_compact(entry.before)} → {_compact(entry.after)}",
        300,
    )


def job_line(job: Job, now: float) -> str:
    request = job.request
    return shorten(
        f"`{job.id}` {short_state(job)} · <@{job.user_id}> · {request.duration} s"
        f" {request.resolution} · age {format_age(now - job.created_at)}"
        f" · [open]({job_link(job)})",
        300,
    )


def _role(role_id: int | None) -> str:
    return "none" if role_id is None else f"<@&{role_id}>"


def _defaults_embed(guild: GuildSettings, bot_daily: int, bot_concurrent: int) -> discord.Embed:
    def source(value: object, fallback: object, unit: str = "") -> str:
        if value is None:
            return f"{fallback}{unit} (bot default)"
        return f"{value}{unit}"

    embed = discord.Embed(title="Server defaults", colour=discord.Colour.blurple())
    embed.description = "\n".join(
        [
            f"Daily seconds per member: {source(guild.daily_seconds, bot_daily, ' s')}",
            f"Videos at once per member: {source(guild.max_concurrent, bot_concurrent)}",
            f"Max duration: {source(guild.max_duration, DURATION_MAX, ' s')}",
            f"Max resolution: {source(guild.max_resolution, RESOLUTIONS[-1])}",
            f"Quota-exempt role: {_role(guild.exempt_role_id)}",
            f"Moderator role: {_role(guild.moderator_role_id)} (Manage Server always counts)",
            f"Paused: {'yes' if guild.paused else 'no'}"
            + (f" ({guild.pause_reason})" if guild.paused and guild.pause_reason else ""),
            f"Age-restricted channels only: {'yes' if guild.nsfw_only else 'no'}",
        ]
    )
    embed.set_footer(text="Member overrides: /admin quota set")
    return embed


def _override_dict(override: UserOverride) -> dict[str, int | None]:
    return {"daily_seconds": override.daily_seconds, "max_concurrent": override.max_concurrent}


def spreadsheet_safe(cell: str | int) -> str | int:
    """Text a spreadsheet shows as text: a leading ``'`` defuses a would-be formula."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def usage_csv(rows: Sequence[UsageRow], names: dict[int, str]) -> bytes:
    """One row per member; ``seconds`` are quota seconds of delivered videos.

    ``names`` are current display names (from the member cache, when it has them); otherwise
    the name recorded with the member's latest job is used.
    """
    buffer = io.StringIO()
    # CRLF, as RFC 4180 has it: a CR or LF inside a cell is then quoted, not a new row.
    writer = csv.DictWriter(buffer, fieldnames=USAGE_CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        cells: dict[str, str | int] = {
            "user_id": row.user_id,
            "member": names.get(row.user_id) or row.name or "",
            "seconds": row.seconds,
            "jobs": row.jobs,
            "failed": row.failed,
        }
        writer.writerow({key: spreadsheet_safe(value) for key, value in cells.items()})
    return buffer.getvalue().encode("utf-8")


def usage_embed(rows: Sequence[UsageRow], days: int, since_day: str) -> discord.Embed:
    seconds = sum(row.seconds for row in rows)
    jobs = sum(row.jobs for row in rows)
    failed = sum(row.failed for row in rows)
    embed = discord.Embed(
        title=f"Usage, last {days} day(s)",
        colour=discord.Colour.blurple(),
        description=(
            f"Since {since_day} (UTC): **{seconds} s** of video delivered, {jobs} job(s)"
            f" by {len(rows)} member(s), {failed} failed."
        ),
    )
    top = sorted(rows, key=lambda row: (-row.seconds, -row.jobs, row.user_id))[:TOP_USERS_SHOWN]
    if top:
        lines = [
            f"{rank}. <@{row.user_id}>: {row.seconds} s ({row.jobs} job(s), {row.failed} failed)"
            for rank, row in enumerate(top, start=1)
        ]
        embed.add_field(name="Top members", value=shorten("\n".join(lines), 1024), inline=False)
    embed.set_footer(text="Seconds as charged to quotas, for delivered videos. Full table: CSV.")
    return embed


# ----------------------------------------------------------------- the cog


class AdminCog(commands.Cog, name="Admin"):
    """The ``/admin`` group."""

    admin = app_commands.Group(
        name="admin",
        description="Moderator tools for the video bot",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
        # guild_only sets the legacy dm_permission; contexts is what current clients read.
        allowed_contexts=app_commands.AppCommandContext(guild=True),
    )
    quota = app_commands.Group(
        name="quota", description="A member's quota: see, change, reset, grant", parent=admin
    )
    channels = app_commands.Group(
        name="channels", description="Where videos may be made", parent=admin
    )

    def __init__(self, bot: BotServices, *, clock: Callable[[], float] = time.time) -> None:
        self.bot = bot
        self._clock = clock

    # ------------------------------------------------------------- helpers

    async def _begin(self, interaction: discord.Interaction) -> discord.Member:
        """The acting moderator; acknowledges the interaction (ephemeral) before any I/O."""
        actor = guild_member(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        return actor

    @staticmethod
    async def _reply(
        interaction: discord.Interaction,
        content: str | None = None,
        *,
        embed: discord.Embed | None = None,
        file: discord.File | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"ephemeral": True}
        if content is not None:
            kwargs["content"] = fit_content(content)
        if embed is not None:
            kwargs["embed"] = fit_embed(embed)
        if file is not None:
            kwargs["file"] = file
        await interaction.followup.send(**kwargs)

    @staticmethod
    def _record(
        actor: discord.Member, action: str, target: str | None, before: Any, after: Any
    ) -> AuditRecord:
        return AuditRecord(actor.guild.id, actor.id, action, target, before, after)

    @staticmethod
    def _done(audit: AuditRecord) -> None:
        """Log a change once the store has written it (with its audit row)."""
        log.info(
            "guild %s: %s %s by %s: %s -> %s",
            audit.guild_id,
            audit.action,
            audit.target or "server",
            audit.actor_id,
            audit.before,
            audit.after,
        )

    async def _save_settings(
        self,
        actor: discord.Member,
        before: GuildSettings,
        after: GuildSettings,
        action: str,
        reason: str | None = None,
    ) -> None:
        changed = [
            field.name
            for field in dataclasses.fields(GuildSettings)
            if getattr(before, field.name) != getattr(after, field.name)
        ]
        after_values: dict[str, Any] = {name: getattr(after, name) for name in changed}
        if reason is not None:
            after_values["reason"] = reason
        audit = self._record(
            actor, action, None, {name: getattr(before, name) for name in changed}, after_values
        )
        await self.bot.store.save_guild_settings(after, self._clock(), audit)
        self._done(audit)

    # ------------------------------------------------------------- /admin quota

    @quota.command(name="show", description="A member's limits, usage today and unfinished jobs")
    @app_commands.describe(user="The member to look at")
    @moderator_only()
    async def quota_show(self, interaction: discord.Interaction, user: discord.Member) -> None:
        actor = await self._begin(interaction)
        guild_id = actor.guild.id
        store = self.bot.store
        now = self._clock()
        status = await quota_status(
            store, self.bot.settings, guild_id, user.id, role_ids(user), now
        )
        override = await store.user_override(guild_id, user.id)
        guild = await store.guild_settings(guild_id)
        ban = await store.get_ban(guild_id, user.id)
        today = utc_day(now)
        granted = sum(
            -entry.seconds
            for entry in await store.ledger_entries(guild_id, since_day=today, user_id=user.id)
            if entry.kind == "grant" and entry.day == today
        )

        def source(member_value: int | None, server_value: int | None) -> str:
            if member_value is not None:
                return "member override"
            return "server default" if server_value is not None else "bot default"

        limits = status.limits
        lines = [
            f"Daily allowance: {limits.daily_seconds} s"
            f" ({source(override.daily_seconds, guild.daily_seconds)})",
            f"Videos at once: {limits.max_concurrent}"
            f" ({source(override.max_concurrent, guild.max_concurrent)})",
            f"Used today: {status.used} s"
            + (f" (net of {granted} s granted today)" if granted else "")
            + f"; left: {status.remaining} s; resets <t:{int(status.resets_at.timestamp())}:R>",
            f"Unfinished jobs: {status.unfinished}",
        ]
        if limits.exempt:
            lines.append("Quota-exempt through their role: no limits are enforced.")
        if ban is not None:
            lines.append(f"⛔ Banned{': ' + ban.reason if ban.reason else ''}")
        embed = discord.Embed(
            title=f"Quota of {user.display_name}",
            description="\n".join(lines),
            colour=discord.Colour.blurple(),
        )
        await self._reply(interaction, embed=embed)

    @quota.command(
        name="set", description="Change a member's daily seconds or videos at once (an override)"
    )
    @app_commands.describe(
        user="The member",
        daily_seconds="Seconds of video per day (UTC) for this member",
        max_concurrent="How many of their videos may be in progress at once",
        use_server_defaults="Remove this member's overrides: back to the server's defaults",
    )
    @moderator_only()
    async def quota_set(
        self,
        interaction: discord.Interaction,
        user: discord.Member,
        daily_seconds: DailySeconds | None = None,
        max_concurrent: Concurrency | None = None,
        use_server_defaults: bool = False,
    ) -> None:
        _check_range("daily_seconds", daily_seconds, 1, MAX_DAILY_SECONDS)
        _check_range("max_concurrent", max_concurrent, 1, MAX_CONCURRENT)
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
        actor = await self._begin(interaction)
        store = self.bot.store
        before = await store.user_override(actor.guild.id, user.id)
        if use_server_defaults:
            after = dataclasses.replace(before, daily_seconds=None, max_concurrent=None)
        else:
            after = dataclasses.replace(
                before,
                daily_seconds=before.daily_seconds if daily_seconds is None else daily_seconds,
                max_concurrent=before.max_concurrent if max_concurrent is None else max_concurrent,
            )
        if after == before:
            await self._reply(interaction, f"{user.mention} already has that. Nothing changed.")
            return
        audit = self._record(
            actor, "quota.set", f"user:{user.id}", _override_dict(before), _override_dict(after)
        )
        await store.save_user_override(after, self._clock(), audit)
        self._done(audit)

        def shown(value: int | None, unit: str = "") -> str:
            return "default" if value is None else f"{value}{unit}"

        await self._reply(
            interaction,
            f"Quota of {user.mention} updated: daily {shown(after.daily_seconds, ' s')},"
            f" at once {shown(after.max_concurrent)}"
            f" (was daily {shown(before.daily_seconds, ' s')},"
            f" at once {shown(before.max_concurrent)}). It applies to their next request.",
        )

    @quota.command(name="reset", description="Give a member back the seconds they used today")
    @app_commands.describe(user="The member")
    @moderator_only()
    async def quota_reset(self, interaction: discord.Interaction, user: discord.Member) -> None:
        actor = await self._begin(interaction)
        store = self.bot.store
        now = self._clock()
        used = await store.usage(actor.guild.id, user.id, utc_day(now))
        if used <= 0:
            # Resetting would also take back today's grants: leave them alone.
            await self._reply(
                interaction, f"{user.mention} has used nothing today. Nothing changed."
            )
            return
        audit = self._record(
            actor, "quota.reset", f"user:{user.id}", {"used_seconds": used}, {"used_seconds": 0}
        )
        returned = await store.reset_usage(actor.guild.id, user.id, actor.id, now, audit)
        self._done(audit)
        await self._reply(
            interaction, f"Gave {user.mention} back the {returned} s they used today."
        )

    @quota.command(name="grant", description="Give a member extra seconds for today")
    @app_commands.describe(
        user="The member",
        seconds="Extra seconds of video, for today (UTC) only",
        note="Why (kept in the ledger)",
    )
    @moderator_only()
    async def quota_grant(
        self,
        interaction: discord.Interaction,
        user: discord.Member,
        seconds: GrantSeconds,
        note: Reason | None = None,
    ) -> None:
        _check_range("seconds", seconds, 1, MAX_GRANT_SECONDS)
        note = _clean_text("note", note)
        actor = await self._begin(interaction)
        store = self.bot.store
        now = self._clock()
        used = await store.usage(actor.guild.id, user.id, utc_day(now))
        audit = self._record(
            actor,
            "quota.grant",
            f"user:{user.id}",
            {"used_seconds": used},
            {"used_seconds": used - seconds, "granted": seconds, "note": note},
        )
        await store.grant(actor.guild.id, user.id, seconds, actor.id, now, note, audit)
        self._done(audit)
        status = await quota_status(
            store, self.bot.settings, actor.guild.id, user.id, role_ids(user), now
        )
        await self._reply(
            interaction,
            f"Granted {user.mention} {seconds} extra s for today; they now have"
            f" {status.remaining} s left until <t:{int(status.resets_at.timestamp())}:R>.",
        )

    # ------------------------------------------------------------- /admin defaults

    @admin.command(
        name="defaults", description="See or change this server's defaults (no options: show)"
    )
    @app_commands.describe(
        daily_seconds="Seconds of video per member per day (UTC)",
        max_concurrent="Videos per member in progress at once",
        max_duration=f"Longest video allowed, {DURATION_MIN}-{DURATION_MAX} s",
        max_resolution="Highest resolution allowed",
        exempt_role="Members with this role have no quota",
        moderator_role="Members with this role may use /admin (needs Manage Server to change)",
        unset="Put one setting back to the bot's default (or remove a role)",
    )
    @moderator_only()
    async def defaults(
        self,
        interaction: discord.Interaction,
        daily_seconds: DailySeconds | None = None,
        max_concurrent: Concurrency | None = None,
        max_duration: MaxDuration | None = None,
        max_resolution: Resolution | None = None,
        exempt_role: discord.Role | None = None,
        moderator_role: discord.Role | None = None,
        unset: DefaultField | None = None,
    ) -> None:
        _check_range("daily_seconds", daily_seconds, 1, MAX_DAILY_SECONDS)
        _check_range("max_concurrent", max_concurrent, 1, MAX_CONCURRENT)
        _check_range("max_duration", max_duration, DURATION_MIN, DURATION_MAX)
        if max_resolution is not None and max_resolution not in RESOLUTIONS:
            raise UserError(f"`max_resolution` must be one of {', '.join(RESOLUTIONS)}.")
        for name, role in (("exempt_role", exempt_role), ("moderator_role", moderator_role)):
            if role is not None and role.is_default():
                raise UserError(f"`{name}` can't be @everyone. Nothing was changed.")
        changes: dict[str, Any] = {
            field: value
            for field, value in (
                ("daily_seconds", daily_seconds),
                ("max_concurrent", max_concurrent),
                ("max_duration", max_duration),
                ("max_resolution", max_resolution),
                ("exempt_role_id", exempt_role.id if exempt_role else None),
                ("moderator_role_id", moderator_role.id if moderator_role else None),
            )
            if value is not None
        }
        if unset is not None:
            field = _DEFAULT_FIELDS[unset]
            if field in changes:
                raise UserError(f"You both set and unset `{unset}`. Nothing was changed.")
            changes[field] = None
        actor = guild_member(interaction)
        if "moderator_role_id" in changes and not has_manage_server(actor):
            # Otherwise a moderator-by-role could hand moderation to any role they like.
            raise UserError(
                "Only members with the Manage Server permission can change the moderator role."
                " Nothing was changed."
            )
        await self._begin(interaction)
        store = self.bot.store
        before = await store.guild_settings(actor.guild.id)
        after = dataclasses.replace(before, **changes)
        settings = self.bot.settings
        if after == before:
            note = "Nothing changed." if changes else None
            embed = _defaults_embed(before, settings.daily_seconds, settings.max_concurrent)
            await self._reply(interaction, note, embed=embed)
            return
        await self._save_settings(actor, before, after, "defaults")
        embed = _defaults_embed(after, settings.daily_seconds, settings.max_concurrent)
        await self._reply(interaction, "Saved; new requests use these now.", embed=embed)

    # ------------------------------------------------------------- /admin ban, unban

    @admin.command(name="ban", description="Stop a member from making videos in this server")
    @app_commands.describe(user="The member", reason="Shown to them when they try")
    @moderator_only()
    async def ban(
        self,
        interaction: discord.Interaction,
        user: discord.Member | discord.User,
        reason: Reason | None = None,
    ) -> None:
        reason = _clean_text("reason", reason)
        actor = await self._begin(interaction)
        store = self.bot.store
        guild_id = actor.guild.id
        existing = await store.get_ban(guild_id, user.id)
        if existing is not None and existing.reason == reason:
            await self._reply(interaction, f"{user.mention} is already banned. Nothing changed.")
            return
        audit = self._record(
            actor,
            "ban",
            f"user:{user.id}",
            {"banned": existing is not None, "reason": existing.reason if existing else None},
            {"banned": True, "reason": reason},
        )
        await store.ban(guild_id, user.id, reason, actor.id, self._clock(), audit)
        self._done(audit)
        text = f"{user.mention} can no longer make videos here."
        if existing is not None:
            text = f"{user.mention} was already banned; the reason is updated."
        unfinished = await store.unfinished_count(guild_id, user.id)
        if unfinished:
            text += (
                f" Their {unfinished} video(s) in progress will still finish;"
                " stop them with `/admin cancel`."
            )
        await self._reply(interaction, text)

    @admin.command(name="unban", description="Let a member make videos again")
    @app_commands.describe(user="The member", reason="Why (kept in the audit log)")
    @moderator_only()
    async def unban(
        self,
        interaction: discord.Interaction,
        user: discord.Member | discord.User,
        reason: Reason | None = None,
    ) -> None:
        reason = _clean_text("reason", reason)
        actor = await self._begin(interaction)
        store = self.bot.store
        existing = await store.get_ban(actor.guild.id, user.id)
        if existing is None:
            raise UserError(f"{user.mention} is not banned here. Nothing was changed.")
        audit = self._record(
            actor,
            "unban",
            f"user:{user.id}",
            {"banned": True, "reason": existing.reason},
            {"banned": False, "reason": reason},
        )
        if not await store.unban(actor.guild.id, user.id, self._clock(), audit):
            raise UserError(f"{user.mention} is not banned here. Nothing was changed.")
        self._done(audit)
        await self._reply(interaction, f"{user.mention} can make videos here again.")

    # ------------------------------------------------------------- /admin pause, resume

    @admin.command(name="pause", description="Stop new video requests in this server")
    @app_commands.describe(reason="Shown to members who try")
    @moderator_only()
    async def pause(self, interaction: discord.Interaction, reason: Reason | None = None) -> None:
        reason = _clean_text("reason", reason)
        actor = await self._begin(interaction)
        before = await self.bot.store.guild_settings(actor.guild.id)
        if before.paused:
            raise UserError("Video requests are already paused. Nothing was changed.")
        after = dataclasses.replace(before, paused=True, pause_reason=reason)
        await self._save_settings(actor, before, after, "pause")
        await self._reply(
            interaction,
            "Paused: new video requests are refused. Videos in progress will still finish."
            " `/admin resume` to undo.",
        )

    @admin.command(name="resume", description="Accept video requests again")
    @app_commands.describe(reason="Why (kept in the audit log)")
    @moderator_only()
    async def resume(self, interaction: discord.Interaction, reason: Reason | None = None) -> None:
        reason = _clean_text("reason", reason)
        actor = await self._begin(interaction)
        before = await self.bot.store.guild_settings(actor.guild.id)
        if not before.paused:
            raise UserError("Video requests are not paused. Nothing was changed.")
        after = dataclasses.replace(before, paused=False, pause_reason=None)
        await self._save_settings(actor, before, after, "resume", reason)
        await self._reply(interaction, "Resumed: video requests are accepted again.")

    # ------------------------------------------------------------- /admin channels

    async def _set_rule(
        self, interaction: discord.Interaction, channel: ChannelOption, rule: str | None
    ) -> None:
        actor = await self._begin(interaction)
        store = self.bot.store
        rules = await store.channel_rules(actor.guild.id)
        current = rules.get(channel.id)
        if current == rule:
            state = f"is already {rule}ed" if rule else "has no rule"
            raise UserError(f"{channel.mention} {state}. Nothing was changed.")
        action = f"channel.{rule or 'clear'}"
        audit = self._record(
            actor, action, f"channel:{channel.id}", {"rule": current}, {"rule": rule}
        )
        await store.set_channel_rule(actor.guild.id, channel.id, rule, self._clock(), audit)
        self._done(audit)
        if rule is None:
            rules.pop(channel.id, None)
        else:
            rules[channel.id] = rule
        await self._reply(interaction, f"Done. {_rules_text(rules)}")

    @channels.command(name="allow", description="Allow videos in a channel (then only there)")
    @app_commands.describe(channel="The channel; its threads follow it")
    @moderator_only()
    async def channels_allow(
        self, interaction: discord.Interaction, channel: ChannelOption
    ) -> None:
        await self._set_rule(interaction, channel, "allow")

    @channels.command(name="deny", description="Refuse videos in a channel")
    @app_commands.describe(channel="The channel; its threads follow it")
    @moderator_only()
    async def channels_deny(self, interaction: discord.Interaction, channel: ChannelOption) -> None:
        await self._set_rule(interaction, channel, "deny")

    @channels.command(name="clear", description="Remove a channel's allow/deny rule")
    @app_commands.describe(channel="The channel")
    @moderator_only()
    async def channels_clear(
        self, interaction: discord.Interaction, channel: ChannelOption
    ) -> None:
        await self._set_rule(interaction, channel, None)

    @channels.command(name="list", description="Where videos may be made")
    @moderator_only()
    async def channels_list(self, interaction: discord.Interaction) -> None:
        actor = await self._begin(interaction)
        rules = await self.bot.store.channel_rules(actor.guild.id)
        guild = await self.bot.store.guild_settings(actor.guild.id)
        text = _rules_text(rules)
        if guild.nsfw_only:
            text += "\nOnly in age-restricted (NSFW) channels."
        await self._reply(interaction, text)

    @channels.command(name="nsfw-only", description="Allow videos only in age-restricted channels")
    @app_commands.describe(enabled="True: only age-restricted (NSFW) channels")
    @moderator_only()
    async def channels_nsfw_only(self, interaction: discord.Interaction, enabled: bool) -> None:
        actor = await self._begin(interaction)
        before = await self.bot.store.guild_settings(actor.guild.id)
        if before.nsfw_only == enabled:
            raise UserError(f"Age-restricted-only is already {'on' if enabled else 'off'}.")
        after = dataclasses.replace(before, nsfw_only=enabled)
        await self._save_settings(actor, before, after, "nsfw_only")
        where = "only in age-restricted channels" if enabled else "in any allowed channel"
        await self._reply(interaction, f"Videos can now be made {where}.")

    # ------------------------------------------------------------- /admin jobs, cancel

    @admin.command(name="jobs", description="Unfinished and recent jobs, with ids and ages")
    @app_commands.describe(user="Only this member's jobs", state="Only jobs in this state")
    @moderator_only()
    async def jobs(
        self,
        interaction: discord.Interaction,
        user: discord.Member | discord.User | None = None,
        state: JobFilter | None = None,
    ) -> None:
        actor = await self._begin(interaction)
        store = self.bot.store
        user_id = None if user is None else user.id
        now = self._clock()
        sections: list[tuple[str, Iterable[JobState], int]]
        if state is None:
            sections = [
                ("Unfinished", UNFINISHED_STATES, JOBS_SHOWN),
                ("Recently finished", FINISHED_STATES, RECENT_FINISHED_SHOWN),
            ]
        elif state == "unfinished":
            sections = [("Unfinished", UNFINISHED_STATES, JOBS_SHOWN)]
        elif state == "finished":
            sections = [("Finished", FINISHED_STATES, JOBS_SHOWN)]
        else:
            sections = [(state.capitalize(), {JobState(state)}, JOBS_SHOWN)]
        title = "Jobs" + (f" of {user.display_name}" if user is not None else "")
        embed = discord.Embed(title=title, colour=discord.Colour.blurple())
        for name, states, limit in sections:
            found = await store.jobs_in_guild(
                actor.guild.id, user_id=user_id, states=states, limit=limit
            )
            lines = [job_line(job, now) for job in found] or ["none"]
            # Embed fields hold 1024 characters: keep whole lines.
            value = ""
            for line in lines:
                if len(value) + len(line) + 1 > 1024:
                    break
                value += line + "\n"
            embed.add_field(name=name, value=value, inline=False)
        embed.set_footer(text="Stop one with /admin cancel job_id")
        await self._reply(interaction, embed=embed)

    @admin.command(name="cancel", description="Cancel a job and refund its seconds")
    @app_commands.describe(job_id="The job's id (see /admin jobs)", reason="Told to the member")
    @moderator_only()
    async def cancel(
        self, interaction: discord.Interaction, job_id: JobId, reason: Reason | None = None
    ) -> None:
        job_id = job_id.strip()
        if not job_id or len(job_id) > MAX_JOB_ID_CHARS:
            raise UserError("Give the job's id, as shown by `/admin jobs`.")
        reason = _clean_text("reason", reason)
        actor = await self._begin(interaction)
        told = "Cancelled by a moderator" + (f": {reason}" if reason else "")
        # The service refunds exactly once and the tracker's job_changed tells the member.
        job = await self.bot.service.cancel(job_id, actor.guild.id, actor.id, told)
        await self._reply(
            interaction,
            f"Cancelled job `{job.id}` of <@{job.user_id}>; {job.cost_seconds} s refunded."
            " The video service has no cancel: a task already sent there may still run.",
        )

    @cancel.autocomplete("job_id")
    async def _cancel_job_ids(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        member = interaction.user
        # Autocomplete runs no checks: show nothing to non-moderators.
        if not isinstance(member, discord.Member) or not await is_moderator(self.bot, member):
            return []
        jobs = await self.bot.store.jobs_in_guild(
            member.guild.id, states=UNFINISHED_STATES, limit=25
        )
        current = current.strip().lower()
        return [
            app_commands.Choice(
                name=shorten(f"{job.id} · {job.state.value} · {job.request.prompt}", 100),
                value=job.id,
            )
            for job in jobs
            if current in job.id or current in job.request.prompt.lower()
        ]

    # ------------------------------------------------------------- /admin usage, audit

    @admin.command(name="usage", description="Seconds made per member, as a table and a CSV file")
    @app_commands.describe(days=f"How many days back, today included (1-{MAX_USAGE_DAYS})")
    @moderator_only()
    async def usage(self, interaction: discord.Interaction, days: UsageDays = 7) -> None:
        _check_range("days", days, 1, MAX_USAGE_DAYS)
        actor = await self._begin(interaction)
        since_day = utc_day(self._clock() - (days - 1) * DAY_SECONDS)
        rows = await self.bot.store.usage_report(actor.guild.id, since_day)
        embed = usage_embed(rows, days, since_day)
        if not rows:
            await self._reply(interaction, embed=embed)
            return
        names = {}
        for row in rows:
            member = actor.guild.get_member(row.user_id)
            if member is not None:
                names[row.user_id] = member.display_name
        data = usage_csv(rows, names)
        file = discord.File(io.BytesIO(data), filename=f"usage-since-{since_day}.csv")
        await self._reply(interaction, embed=embed, file=file)

    @admin.command(name="audit", description="The latest moderator actions")
    @app_commands.describe(limit=f"How many entries (1-{MAX_AUDIT_SHOWN})")
    @moderator_only()
    async def audit(self, interaction: discord.Interaction, limit: AuditLimit = 10) -> None:
        _check_range("limit", limit, 1, MAX_AUDIT_SHOWN)
        actor = await self._begin(interaction)
        entries = await self.bot.store.audit_entries(actor.guild.id, limit)
        if not entries:
            await self._reply(interaction, "No moderator actions recorded yet.")
            return
        text = ""
        for entry in entries:
            line = audit_line(entry) + "\n"
            if len(text) + len(line) > 4000:
                break
            text += line
        embed = discord.Embed(
            title="Audit log", description=text, colour=discord.Colour.dark_grey()
        )
        await self._reply(interaction, embed=embed)


def _rules_text(rules: dict[int, str]) -> str:
    allowed = sorted(channel for channel, rule in rules.items() if rule == "allow")
    denied = sorted(channel for channel, rule in rules.items() if rule == "deny")
    if allowed:
        text = "Videos only in: " + ", ".join(f"<#{channel}>" for channel in allowed) + "."
    else:
        text = "Videos in any channel."
    if denied:
        text += " Never in: " + ", ".join(f"<#{channel}>" for channel in denied) + "."
    return text + " Threads follow their channel."


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(AdminCog(services(bot)))
