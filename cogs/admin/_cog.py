"""The ``/admin`` group: options in, :class:`core.moderation.Moderation` calls, answers out.

The group carries ``default_permissions`` (Manage Server) and ``guild_only`` itself, because Discord
ignores both on subcommands. Those only hide the commands, so the cog's ``interaction_check`` runs
the moderator check (:func:`discord_side.permissions.check_moderator`) before every one of its
commands: discord.py calls a cog's ``interaction_check`` for each app command bound to the cog, at
any depth, whereas a group's own ``interaction_check`` would only guard its direct subcommands
(``/admin quota show`` would skip ``admin``'s).

Each command acknowledges first (ephemeral), then calls the service, which checks the arguments
(a bad one is a :class:`core.errors.UserError`, shown by the tree's error policy) and writes each
change with its audit row. All replies are ephemeral.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from cogs.admin import _render as render
from cogs.admin._options import (
    AuditLimit,
    ChannelOption,
    Concurrency,
    DailySeconds,
    DefaultField,
    GrantSeconds,
    JobFilter,
    JobId,
    MaxDuration,
    Reason,
    Resolution,
    ServerDailySeconds,
    UsageDays,
)
from core.moderation import MAX_AUDIT_SHOWN, MAX_USAGE_DAYS, Actor, ChannelRule, Moderation
from core.request import DURATION_MAX, DURATION_MIN
from discord_side.limits import fit_content, fit_embed
from discord_side.members import guild_member, role_ids
from discord_side.permissions import (
    BotServices,
    check_moderator,
    has_manage_server,
    is_moderator,
)


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
        self.moderation = Moderation(bot.settings, bot.store, bot.service, clock=clock)

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        # Runs before every command of this cog, subcommands of subgroups included.
        return await check_moderator(interaction)

    # ------------------------------------------------------------- helpers

    @staticmethod
    async def _begin(interaction: discord.Interaction) -> Actor:
        """The acting moderator; acknowledges the interaction (ephemeral) before any I/O."""
        member = guild_member(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        return Actor(member.guild.id, member.id, manages_server=has_manage_server(member))

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

    # ------------------------------------------------------------- /admin quota

    @quota.command(name="show", description="A member's limits, usage today and unfinished jobs")
    @app_commands.describe(user="The member to look at")
    async def quota_show(self, interaction: discord.Interaction, user: discord.Member) -> None:
        actor = await self._begin(interaction)
        quota = await self.moderation.member_quota(actor.guild_id, user.id, role_ids(user))
        await self._reply(interaction, embed=render.member_quota_embed(quota, user.display_name))

    @quota.command(
        name="set", description="Change a member's daily seconds or videos at once (an override)"
    )
    @app_commands.describe(
        user="The member",
        daily_seconds="Seconds of video per day (UTC) for this member",
        max_concurrent="How many of their videos may be in progress at once",
        use_server_defaults="Remove this member's overrides: back to the server's defaults",
    )
    async def quota_set(
        self,
        interaction: discord.Interaction,
        user: discord.Member,
        daily_seconds: DailySeconds | None = None,
        max_concurrent: Concurrency | None = None,
        use_server_defaults: bool = False,
    ) -> None:
        actor = await self._begin(interaction)
        change = await self.moderation.set_quota(
            actor,
            user.id,
            daily_seconds=daily_seconds,
            max_concurrent=max_concurrent,
            use_server_defaults=use_server_defaults,
        )
        await self._reply(interaction, render.quota_set_text(change, user.mention))

    @quota.command(name="reset", description="Give a member back the seconds they used today")
    @app_commands.describe(user="The member")
    async def quota_reset(self, interaction: discord.Interaction, user: discord.Member) -> None:
        actor = await self._begin(interaction)
        returned = await self.moderation.reset_quota(actor, user.id)
        await self._reply(interaction, render.quota_reset_text(returned, user.mention))

    @quota.command(name="grant", description="Give a member extra seconds for today")
    @app_commands.describe(
        user="The member",
        seconds="Extra seconds of video, for today (UTC) only",
        note="Why (kept in the ledger)",
    )
    async def quota_grant(
        self,
        interaction: discord.Interaction,
        user: discord.Member,
        seconds: GrantSeconds,
        note: Reason | None = None,
    ) -> None:
        actor = await self._begin(interaction)
        status = await self.moderation.grant(
            actor, user.id, seconds, note=note, role_ids=role_ids(user)
        )
        await self._reply(interaction, render.grant_text(status, seconds, user.mention))

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
        server_daily_seconds="Seconds of video per day (UTC) for the whole server, all members",
        unset="Put one setting back to the bot's default (or remove a role)",
    )
    async def defaults(
        self,
        interaction: discord.Interaction,
        daily_seconds: DailySeconds | None = None,
        max_concurrent: Concurrency | None = None,
        max_duration: MaxDuration | None = None,
        max_resolution: Resolution | None = None,
        exempt_role: discord.Role | None = None,
        moderator_role: discord.Role | None = None,
        server_daily_seconds: ServerDailySeconds | None = None,
        unset: DefaultField | None = None,
    ) -> None:
        actor = await self._begin(interaction)
        update = await self.moderation.set_defaults(
            actor,
            daily_seconds=daily_seconds,
            max_concurrent=max_concurrent,
            max_duration=max_duration,
            max_resolution=max_resolution,
            exempt_role_id=None if exempt_role is None else exempt_role.id,
            moderator_role_id=None if moderator_role is None else moderator_role.id,
            server_daily_seconds=server_daily_seconds,
            unset=unset,
        )
        if update.changed:
            note: str | None = "Saved; new requests use these now."
        else:
            note = "Nothing changed." if update.asked else None
        await self._reply(interaction, note, embed=render.defaults_embed(update.after))

    # ------------------------------------------------------------- /admin ban, unban

    @admin.command(name="ban", description="Stop a member from making videos in this server")
    @app_commands.describe(user="The member", reason="Shown to them when they try")
    async def ban(
        self,
        interaction: discord.Interaction,
        user: discord.Member | discord.User,
        reason: Reason | None = None,
    ) -> None:
        actor = await self._begin(interaction)
        result = await self.moderation.ban(actor, user.id, reason)
        await self._reply(interaction, render.ban_text(result, user.mention))

    @admin.command(name="unban", description="Let a member make videos again")
    @app_commands.describe(user="The member", reason="Why (kept in the audit log)")
    async def unban(
        self,
        interaction: discord.Interaction,
        user: discord.Member | discord.User,
        reason: Reason | None = None,
    ) -> None:
        actor = await self._begin(interaction)
        await self.moderation.unban(actor, user.id, reason)
        await self._reply(interaction, f"{user.mention} can make videos here again.")

    # ------------------------------------------------------------- /admin pause, resume

    @admin.command(name="pause", description="Stop new video requests in this server")
    @app_commands.describe(reason="Shown to members who try")
    async def pause(self, interaction: discord.Interaction, reason: Reason | None = None) -> None:
        actor = await self._begin(interaction)
        await self.moderation.pause(actor, reason)
        await self._reply(
            interaction,
            "Paused: new video requests are refused. Videos in progress will still finish."
            " `/admin resume` to undo.",
        )

    @admin.command(name="resume", description="Accept video requests again")
    @app_commands.describe(reason="Why (kept in the audit log)")
    async def resume(self, interaction: discord.Interaction, reason: Reason | None = None) -> None:
        actor = await self._begin(interaction)
        await self.moderation.resume(actor, reason)
        await self._reply(interaction, "Resumed: video requests are accepted again.")

    # ------------------------------------------------------------- /admin channels

    async def _set_rule(
        self, interaction: discord.Interaction, channel: ChannelOption, rule: ChannelRule | None
    ) -> None:
        actor = await self._begin(interaction)
        change = await self.moderation.set_channel_rule(actor, channel.id, rule)
        await self._reply(interaction, f"Done. {render.rules_text(change.rules)}")

    @channels.command(name="allow", description="Allow videos in a channel (then only there)")
    @app_commands.describe(channel="The channel; its threads follow it")
    async def channels_allow(
        self, interaction: discord.Interaction, channel: ChannelOption
    ) -> None:
        await self._set_rule(interaction, channel, "allow")

    @channels.command(name="deny", description="Refuse videos in a channel")
    @app_commands.describe(channel="The channel; its threads follow it")
    async def channels_deny(self, interaction: discord.Interaction, channel: ChannelOption) -> None:
        await self._set_rule(interaction, channel, "deny")

    @channels.command(name="clear", description="Remove a channel's allow/deny rule")
    @app_commands.describe(channel="The channel")
    async def channels_clear(
        self, interaction: discord.Interaction, channel: ChannelOption
    ) -> None:
        await self._set_rule(interaction, channel, None)

    @channels.command(name="list", description="Where videos may be made")
    async def channels_list(self, interaction: discord.Interaction) -> None:
        actor = await self._begin(interaction)
        rules = await self.moderation.channel_rules(actor.guild_id)
        text = render.rules_text(rules.rules)
        if rules.nsfw_only:
            text += "\nOnly in age-restricted (NSFW) channels."
        await self._reply(interaction, text)

    @channels.command(name="nsfw-only", description="Allow videos only in age-restricted channels")
    @app_commands.describe(enabled="True: only age-restricted (NSFW) channels")
    async def channels_nsfw_only(self, interaction: discord.Interaction, enabled: bool) -> None:
        actor = await self._begin(interaction)
        await self.moderation.set_nsfw_only(actor, enabled)
        where = "only in age-restricted channels" if enabled else "in any allowed channel"
        await self._reply(interaction, f"Videos can now be made {where}.")

    # ------------------------------------------------------------- /admin jobs, cancel

    @admin.command(name="jobs", description="Unfinished and recent jobs, with ids and ages")
    @app_commands.describe(user="Only this member's jobs", state="Only jobs in this state")
    async def jobs(
        self,
        interaction: discord.Interaction,
        user: discord.Member | discord.User | None = None,
        state: JobFilter | None = None,
    ) -> None:
        actor = await self._begin(interaction)
        listing = await self.moderation.jobs(
            actor.guild_id, user_id=None if user is None else user.id, state=state
        )
        whose = None if user is None else user.display_name
        await self._reply(interaction, embed=render.jobs_embed(listing, whose))

    @admin.command(name="cancel", description="Cancel a job and refund its seconds")
    @app_commands.describe(job_id="The job's id (see /admin jobs)", reason="Told to the member")
    async def cancel(
        self, interaction: discord.Interaction, job_id: JobId, reason: Reason | None = None
    ) -> None:
        actor = await self._begin(interaction)
        job = await self.moderation.cancel(actor, job_id, reason)
        await self._reply(interaction, render.cancelled_text(job))

    @cancel.autocomplete("job_id")
    async def _cancel_job_ids(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        member = interaction.user
        # Autocomplete runs no checks (not even interaction_check): nothing for non-moderators.
        if not isinstance(member, discord.Member) or not await is_moderator(self.bot, member):
            return []
        jobs = await self.moderation.cancel_candidates(member.guild.id, current)
        return [
            app_commands.Choice(name=render.cancel_choice_name(job), value=job.id) for job in jobs
        ]

    # ------------------------------------------------------------- /admin usage, audit

    @admin.command(
        name="usage", description="Today's spending against the cap; seconds made per member (CSV)"
    )
    @app_commands.describe(days=f"How many days back, today included (1-{MAX_USAGE_DAYS})")
    async def usage(self, interaction: discord.Interaction, days: UsageDays = 7) -> None:
        actor = await self._begin(interaction)
        report = await self.moderation.usage(actor.guild_id, days)
        embed = render.usage_embed(report)
        if not report.rows:
            await self._reply(interaction, embed=embed)
            return
        guild = guild_member(interaction).guild
        names = {}
        for row in report.rows:
            member = guild.get_member(row.user_id)
            if member is not None:
                names[row.user_id] = member.display_name
        file = discord.File(io.BytesIO(report.csv(names)), filename=report.csv_filename)
        await self._reply(interaction, embed=embed, file=file)

    @admin.command(name="audit", description="The latest moderator actions")
    @app_commands.describe(limit=f"How many entries (1-{MAX_AUDIT_SHOWN})")
    async def audit(self, interaction: discord.Interaction, limit: AuditLimit = 10) -> None:
        actor = await self._begin(interaction)
        entries = await self.moderation.audit(actor.guild_id, limit)
        if not entries:
            await self._reply(interaction, "No moderator actions recorded yet.")
            return
        await self._reply(interaction, embed=render.audit_embed(entries))
