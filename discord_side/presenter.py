"""How jobs look in Discord: status embeds, settings lines, delivery and failure texts.

Pure functions from core values to discord.py values; nothing here talks to Discord.
"""

from __future__ import annotations

import math
import re
import time
from urllib.parse import urlsplit

import discord

from core.jobs import Job, JobState
from core.notices import Progress
from core.references import render_label_map
from core.request import GenerationRequest
from core.timefmt import format_duration
from discord_side.limits import fit_content, fit_embed
from discord_side.limits import shorten as shorten  # used by other cogs through this module

_STATE_LINES: dict[JobState, str] = {
    JobState.RESERVED: "⏳ Queued",
    JobState.SUBMITTING: "⏳ Queued: sending to the video service",
    JobState.SUBMITTED: "⏳ Queued at the video service",
    JobState.RUNNING: "🎨 Generating",
    JobState.COMPLETED: "📦 Delivering",
    JobState.DELIVERED: "✅ Done",
    JobState.FAILED: "❌ Failed",
    JobState.CANCELLED: "🚫 Cancelled",
}
_STATE_COLOURS: dict[JobState, discord.Colour] = {
    JobState.DELIVERED: discord.Colour.green(),
    JobState.FAILED: discord.Colour.red(),
    JobState.CANCELLED: discord.Colour.dark_grey(),
}
_EXPIRY = re.compile(r"(?:^|[?&~=])(?:exp|ex)=([0-9a-fA-F]+)")
BAR_CELLS = 10


def settings_line(request: GenerationRequest) -> str:
    aspect = "from start frame" if request.start_image_url else request.aspect_ratio or "16:9"
    seed = "random" if request.seed is None else str(request.seed)
    extend = "on" if request.prompt_extend else "off"
    return (
        f"{request.resolution} · {aspect} · {request.duration} s · seed {seed}"
        f" · prompt extension {extend}"
    )


def failure_reason(job: Job) -> str | None:
    """Why the job ended, in the member's words; the refund is said once, elsewhere."""
    if not job.error:
        return None
    # The tracker's "not charged" means no paid task; the quota refund line says the rest.
    return job.error.removesuffix("; you were not charged")


# What to try after a failure, by the start of the tracker's reason (core/tracker.py).
_TRY_OTHER_INPUT = ("the video service could not generate", "the video service finished without")
_TRY_AGAIN = (
    "the video took too long",
    "the video service did not accept",
    "the video service lost",
    "the video service did not confirm",
    "the video was made but could not be posted",
)


def failure_advice(job: Job) -> str | None:
    """A next step for a failed job: try again, or change what the model was given."""
    if job.state is not JobState.FAILED or not job.error:
        return None
    again = (
        "mention me in this thread to make it again with a new seed"
        if job.thread_id is not None
        else "run /video again"
    )
    if job.error.startswith(_TRY_OTHER_INPUT):
        return f"What to try: {again}, or a simpler prompt, or other references."
    if job.error.startswith("the video service refused the request"):
        return "What to try: change what the reason names (the prompt or a reference file)."
    if job.error.startswith(_TRY_AGAIN):
        return f"What to try: {again}; this is usually temporary."
    return None


def state_line(job: Job, progress: Progress | None = None, now: float | None = None) -> str:
    """The state, then (while unfinished, given ``progress``) how long it has waited and, once
    the run-time model has earned it, a progress bar and an ETA. Elapsed time and the ETA are
    Discord's live relative timestamps, so they stay fresh between edits."""
    line = _STATE_LINES[job.state]
    reason = failure_reason(job)
    if job.state in (JobState.FAILED, JobState.CANCELLED) and reason:
        line += f": {reason}"
    if job.state in (JobState.FAILED, JobState.CANCELLED):
        line += f"\n↩️ Your {job.cost_seconds} s of quota were refunded."
    if progress is not None and not job.state.is_finished and job.state is not JobState.COMPLETED:
        line += "\n" + timing_text(progress, time.time() if now is None else now)
    return line


def timing_text(progress: Progress, now: float) -> str:
    since = f"⏱️ started <t:{int(progress.since)}:R>"
    if progress.waiting_until is not None:
        when = f"<t:{math.ceil(progress.waiting_until)}:R>"
        if progress.may_expire:
            return (
                f"{since}\n🚦 The video service asked us to slow down. If your job cannot be"
                f" sent by {when}, it is cancelled and your quota refunded."
            )
        return f"{since}\n🚦 The video service asked us to slow down: your job will be sent {when}."
    expected = progress.expected_seconds
    if expected is None:
        return since  # no ETA until the model has seen enough of this kind of video
    elapsed = max(now - progress.since, 0.0)
    share = min(elapsed / expected, 0.95) if expected > 0 else 0.95
    filled = int(share * BAR_CELLS)
    bar = "▰" * filled + "▱" * (BAR_CELLS - filled)
    left = expected - elapsed
    if left <= 0:
        return f"{since}\n{bar} taking longer than usual"
    ready = int(progress.since + expected)
    return f"{since} · {about_left(left)}\n{bar} {share:.0%} · ready <t:{ready}:R>"


def about_left(seconds: float) -> str:
    """``about 40 s left``, ``about 3 min left``: rounded up, never more precise than it is."""
    if seconds < 60:
        return f"about {max(5, math.ceil(seconds / 5) * 5)} s left"
    return f"about {math.ceil(seconds / 60)} min left"


def status_embed(
    job: Job,
    note: str | None = None,
    progress: Progress | None = None,
    *,
    now: float | None = None,
) -> discord.Embed:
    embed = discord.Embed(
        title=f"🎬 Video job {job.id}",
        description=shorten(job.request.prompt, 1500),
        colour=_STATE_COLOURS.get(job.state, discord.Colour.blurple()),
    )
    embed.add_field(name="State", value=shorten(state_line(job, progress, now), 1024), inline=False)
    embed.add_field(name="Settings", value=settings_line(job.request), inline=False)
    if job.request.negative_prompt:
        embed.add_field(
            name="Negative prompt", value=shorten(job.request.negative_prompt, 1024), inline=False
        )
    embed.add_field(
        name="References", value=shorten(render_label_map(job.references), 1024), inline=False
    )
    started = int(job.created_at)
    timing = f"Requested by <@{job.user_id}> <t:{started}:R>"
    if job.finished_at is not None:
        timing += f" · took {format_duration(job.finished_at - job.created_at)}"
    embed.add_field(name="Requester", value=timing, inline=False)
    if note:
        embed.add_field(name="Note", value=shorten(note, 1024), inline=False)
    thumbnail = next((ref.media.url for ref in job.references if ref.kind == "image"), None)
    if thumbnail:
        embed.set_thumbnail(url=thumbnail)
    embed.set_footer(text=f"job {job.id} · {job.origin.value}")
    return fit_embed(embed)


def accepted_text(job: Job, warnings: tuple[str, ...], label_map: str) -> str:
    lines = [
        f"✅ Accepted as job `{job.id}` ({job.cost_seconds} s of your daily quota).",
        "",
        "**Labels** (use these names in your prompt):",
        label_map,
    ]
    if warnings:
        lines += ["", "**Heads-up:**", *(f"- {warning}" for warning in warnings)]
    return fit_content("\n".join(lines))


def delivery_marker(job: Job) -> str:
    """Text every delivery of ``job`` contains, so an earlier one can be recognised."""
    return f"your video is ready! (job `{job.id}`)"


def delivery_text(job: Job) -> str:
    return f"<@{job.user_id}> {delivery_marker(job)}"


def link_text(job: Job, url: str, size: int | None, limit: int) -> str:
    size_part = f" ({size / 1_048_576:.1f} MB)" if size else ""
    expiry = link_expiry(url)
    lives = f"the link expires <t:{expiry}:R>" if expiry else "the link expires within about a day"
    return fit_content(
        f"<@{job.user_id}> {delivery_marker(job)}\n"
        f"It is too large to upload here{size_part}; this server's limit is"
        f" {limit / 1_048_576:.0f} MB. [Download it here]({url}) ({lives}, so save it soon)."
    )


def link_expiry(url: str) -> int | None:
    """The Unix expiry a signed URL carries (``exp=<unix>`` or Discord's hex ``ex=``)."""
    query = urlsplit(url).query
    match = _EXPIRY.search(query)
    if match is None:
        return None
    raw = match.group(1)
    try:
        return int(raw) if raw.isdigit() and len(raw) >= 9 else int(raw, 16)
    except ValueError:
        return None


def delivery_embed(job: Job) -> discord.Embed:
    embed = discord.Embed(description=shorten(job.request.prompt, 1000))
    embed.add_field(name="Settings", value=settings_line(job.request), inline=False)
    embed.set_footer(text=f"job {job.id}")
    return fit_embed(embed)


def failure_text(job: Job) -> str:
    if job.state is JobState.CANCELLED:
        head = f"<@{job.user_id}> your video (job `{job.id}`) was cancelled"
    else:
        head = f"<@{job.user_id}> your video (job `{job.id}`) could not be made"
    reason = failure_reason(job)
    lines = [f"{head}: {reason}" if reason else f"{head}."]
    lines.append(f"Your {job.cost_seconds} s of quota were refunded.")
    advice = failure_advice(job)
    if advice is not None:
        lines.append(advice)
    return fit_content("\n".join(lines))


DISCORD_MESSAGE_LINK = "https://discord.com/channels/{guild}/{channel}"


def job_link(job: Job) -> str:
    """Where the job lives in Discord: its thread, else its status message, else its channel."""
    if job.thread_id is not None:
        return DISCORD_MESSAGE_LINK.format(guild=job.guild_id, channel=job.thread_id)
    link = DISCORD_MESSAGE_LINK.format(guild=job.guild_id, channel=job.channel_id)
    if job.status_message_id is not None:
        link += f"/{job.status_message_id}"
    return link


def short_state(job: Job) -> str:
    """The first line of the status text ("✅ Done", "❌ Failed: reason")."""
    return shorten(state_line(job).splitlines()[0], 120)
