"""Jobs as moderators see them: listing, cancelling, the usage report and the audit log."""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import UserError
from core.jobs import FINISHED_STATES, UNFINISHED_STATES, Job, JobState
from core.moderation._base import ModerationBase
from core.moderation._limits import (
    CANCEL_CHOICES,
    DAY_SECONDS,
    JOBS_SHOWN,
    MAX_AUDIT_SHOWN,
    MAX_JOB_ID_CHARS,
    MAX_USAGE_DAYS,
    RECENT_FINISHED_SHOWN,
    JobFilter,
    check_range,
    clean_text,
)
from core.moderation._results import Actor, JobListing, JobSection
from core.moderation._usage import SpendToday, UsageReport
from core.quota import server_cap
from core.store import AuditEntry, utc_day


class JobActions(ModerationBase):
    async def jobs(
        self, guild_id: int, *, user_id: int | None = None, state: JobFilter | None = None
    ) -> JobListing:
        """Unfinished and recently finished jobs (or only those in ``state``), newest first."""
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
            try:
                only = JobState(state)
            except ValueError:
                raise UserError(f"There is no job state `{state}`.") from None
            sections = [(state.capitalize(), {only}, JOBS_SHOWN)]
        now = self._clock()
        found = []
        for name, states, limit in sections:
            jobs = await self.store.jobs_in_guild(
                guild_id, user_id=user_id, states=states, limit=limit
            )
            found.append(JobSection(name, tuple(jobs)))
        return JobListing(tuple(found), now)

    async def cancel(self, actor: Actor, job_id: str, reason: str | None = None) -> Job:
        """Stop tracking a job and refund it once; the member is told (the tracker's
        ``job_changed``). The API has no cancel: a task already sent may still run."""
        job_id = job_id.strip()
        if not job_id or len(job_id) > MAX_JOB_ID_CHARS:
            raise UserError("Give the job's id, as shown by `/admin jobs`.")
        reason = clean_text("reason", reason)
        told = "Cancelled by a moderator" + (f": {reason}" if reason else "")
        # The service refunds exactly once and writes the audit row with the cancellation.
        return await self.service.cancel(job_id, actor.guild_id, actor.user_id, told)

    async def cancel_candidates(self, guild_id: int, typed: str) -> list[Job]:
        """Unfinished jobs whose id or prompt contains what was typed (for autocomplete)."""
        jobs = await self.store.jobs_in_guild(
            guild_id, states=UNFINISHED_STATES, limit=CANCEL_CHOICES
        )
        typed = typed.strip().lower()
        return [job for job in jobs if typed in job.id or typed in job.request.prompt.lower()]

    async def usage(self, guild_id: int, days: int) -> UsageReport:
        """Per member: seconds of delivered video, jobs and failures over ``days`` (today too)."""
        check_range("days", days, 1, MAX_USAGE_DAYS)
        now = self._clock()
        since_day = utc_day(now - (days - 1) * DAY_SECONDS)
        rows = await self.store.usage_report(guild_id, since_day)
        return UsageReport(days, since_day, tuple(rows), await self.spend_today(guild_id, now))

    async def spend_today(self, guild_id: int, now: float) -> SpendToday:
        """The server's spending today against its cap, and what is left of the bot's budget."""
        day = utc_day(now)
        guild = await self.store.guild_settings(guild_id)
        budget = self.settings.budget_daily_seconds
        budget_left = None
        if budget is not None:
            budget_left = max(budget - await self.store.day_spend(day), 0)
        return SpendToday(
            day,
            await self.store.day_spend(day, guild_id),
            server_cap(self.settings, guild),
            budget_left,
        )

    async def audit(self, guild_id: int, limit: int) -> list[AuditEntry]:
        """The latest moderator actions, newest first."""
        check_range("limit", limit, 1, MAX_AUDIT_SHOWN)
        return await self.store.audit_entries(guild_id, limit)
