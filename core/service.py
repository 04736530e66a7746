"""Accepting requests: the rules a request must pass, then reserve + persist + enqueue.

The Discord side calls this with plain values; it raises :class:`core.errors.UserError`
subclasses for anything the user should be told, before anything is spent.

:meth:`VideoService.check_allowed` is the one door for every request (``/video``, replies,
buttons, characters): the operator's allow-list of servers first, then the server's own rules.
With a :class:`core.metrics.Metrics`, the service counts accepted and refused requests and every
committed ledger row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from core.config import Settings
from core.errors import Refused, UserError
from core.jobs import Job, JobOrigin, new_job_id
from core.metrics import Metrics
from core.quota import effective_limits, job_cost
from core.references import BuiltRequest, InvalidInput
from core.request import RESOLUTIONS
from core.store import (
    AuditRecord,
    CapExceeded,
    GuildSettings,
    NewJob,
    QuotaExceeded,
    Store,
    TooManyJobs,
)
from core.tracker import Tracker
from core.webhook_tokens import job_webhooks

log = logging.getLogger(__name__)

NOT_ENABLED_MESSAGE = (
    "This bot is not enabled in this server: its operator runs it for other servers only."
    " Nothing was charged."
)


class PolicyRefused(Refused):
    """A refusal by a rule of the server or the operator; ``reason`` is its metrics label."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class NotEnabledHere(PolicyRefused):
    """The server is not on the operator's allow-list (``ALLOWED_GUILD_IDS``)."""

    def __init__(self) -> None:
        super().__init__("not_allowed", NOT_ENABLED_MESSAGE)


def refusal_reason(error: UserError) -> str:
    """The bounded label a refusal is counted under (see core.metrics.REFUSAL_REASONS)."""
    if isinstance(error, PolicyRefused):
        return error.reason
    if isinstance(error, CapExceeded):
        return "budget" if error.cap == "budget" else "server_cap"
    if isinstance(error, QuotaExceeded):
        return "quota"
    if isinstance(error, TooManyJobs):
        return "concurrency"
    if isinstance(error, InvalidInput):
        return "invalid_input"
    return "other"


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, and where: what the rules need to know, in plain values."""

    guild_id: int
    channel_id: int  # where the request was made (a thread's id for replies)
    user_id: int
    role_ids: Collection[int] = ()
    parent_channel_id: int | None = None  # for a thread: its parent channel
    channel_is_nsfw: bool = False
    display_name: str | None = None  # recorded with the job, for moderators' reports


class VideoService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        tracker: Tracker,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.tracker = tracker
        self._clock = clock
        self.metrics = metrics
        if metrics is not None:
            store.observe_ledger(metrics.ledger)  # reserve, commit, refund, grant, reset

    def check_enabled(self, guild_id: int | None) -> None:
        """Refuse a server that is not on the operator's allow-list (:class:`NotEnabledHere`)."""
        if not self.settings.guild_allowed(guild_id):
            raise NotEnabledHere()

    async def check_allowed(self, who: Requester) -> GuildSettings:
        """Refuse servers the bot is not enabled in, banned members, paused servers and
        channels the server's rules exclude."""
        self.check_enabled(who.guild_id)
        ban = await self.store.get_ban(who.guild_id, who.user_id)
        if ban is not None:
            reason = f" Reason: {ban.reason}" if ban.reason else ""
            raise PolicyRefused(
                "banned", f"You are not allowed to make videos in this server.{reason}"
            )
        guild = await self.store.guild_settings(who.guild_id)
        if guild.paused:
            reason = f" ({guild.pause_reason})" if guild.pause_reason else ""
            raise PolicyRefused(
                "paused", f"Video requests are paused in this server{reason}. Try again later."
            )
        rules = await self.store.channel_rules(who.guild_id)
        channels = {who.channel_id} | ({who.parent_channel_id} if who.parent_channel_id else set())
        if any(rules.get(channel) == "deny" for channel in channels):
            raise PolicyRefused("channel", "Videos can't be made in this channel.")
        allowed = {channel for channel, rule in rules.items() if rule == "allow"}
        if allowed and not channels & allowed:
            where = ", ".join(f"<#{channel}>" for channel in sorted(allowed))
            raise PolicyRefused("channel", f"Videos can only be made in: {where}.")
        if guild.nsfw_only and not who.channel_is_nsfw:
            raise PolicyRefused(
                "channel", "This server allows videos only in age-restricted (NSFW) channels."
            )
        return guild

    async def accept(
        self,
        who: Requester,
        built: BuiltRequest,
        *,
        origin: JobOrigin = JobOrigin.COMMAND,
        parent_job_id: str | None = None,
        thread_id: int | None = None,
        reference_copies: dict[str, list[int]] | None = None,
    ) -> Job:
        """Check the rules, reserve the cost, persist the job and hand it to the tracker.

        The member's quota, the server's daily cap and the bot's budget are checked and reserved
        in one transaction (core.store._ledger.check_room): a refusal spends nothing.
        """
        try:
            job = await self._accept(
                who,
                built,
                origin=origin,
                parent_job_id=parent_job_id,
                thread_id=thread_id,
                reference_copies=reference_copies,
            )
        except UserError as exc:
            if self.metrics is not None:
                self.metrics.request_refused(refusal_reason(exc))
            raise
        if self.metrics is not None:
            self.metrics.request_accepted(origin.value)
        return job

    async def _accept(
        self,
        who: Requester,
        built: BuiltRequest,
        *,
        origin: JobOrigin,
        parent_job_id: str | None,
        thread_id: int | None,
        reference_copies: dict[str, list[int]] | None,
    ) -> Job:
        guild = await self.check_allowed(who)
        request = built.request
        if guild.max_duration is not None and request.duration > guild.max_duration:
            raise PolicyRefused(
                "invalid_input",
                f"This server allows videos of at most {guild.max_duration} s"
                f" (you asked for {request.duration} s).",
            )
        if guild.max_resolution is not None and RESOLUTIONS.index(
            request.resolution
        ) > RESOLUTIONS.index(guild.max_resolution):
            raise PolicyRefused(
                "invalid_input", f"This server allows at most {guild.max_resolution} videos."
            )
        override = await self.store.user_override(who.guild_id, who.user_id)
        limits = effective_limits(self.settings, guild, override, who.role_ids)
        job_id = new_job_id()
        # Only the digest of the job's webhook token is stored; the URL is derived at submit time.
        webhooks = job_webhooks(self.settings)
        now = self._clock()
        job = await self.store.create_job(
            NewJob(
                id=job_id,
                guild_id=who.guild_id,
                channel_id=who.parent_channel_id
                if thread_id is not None and who.parent_channel_id
                else who.channel_id,
                user_id=who.user_id,
                origin=origin,
                request=request,
                references=built.references,
                cost_seconds=job_cost(request, self.settings.hd_multiplier),
                deadline_at=now + self.settings.job_deadline_seconds,
                webhook_token_hash=None if webhooks is None else webhooks.digest(job_id),
                parent_job_id=parent_job_id,
                thread_id=thread_id,
                reference_copies=reference_copies or {},
                user_name=who.display_name,
            ),
            limits,
            now,
        )
        log.info(
            "job %s accepted for user %s in guild %s (%ss)",
            job.id,
            who.user_id,
            who.guild_id,
            job.cost_seconds,
        )
        self.tracker.enqueue(job)
        return job

    async def cancel(self, job_id: str, guild_id: int, actor_id: int, reason: str) -> Job:
        job = await self.store.get_job(job_id.strip())
        if job is None or job.guild_id != guild_id:
            raise Refused(f"There is no job `{job_id}` in this server.")
        if job.state.is_finished:
            raise Refused(f"Job `{job.id}` has already ended ({job.state.value}).")
        cancelled = await self.tracker.cancel(
            job.id,
            reason,
            audit=AuditRecord(
                guild_id, actor_id, "cancel", job.id, {"state": job.state.value}, {"reason": reason}
            ),
        )
        if cancelled is None:
            raise Refused(f"Job `{job.id}` ended before it could be cancelled.")
        return cancelled
