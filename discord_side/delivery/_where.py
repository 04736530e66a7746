"""Where a job's messages live, and the notes that say why they are not where expected."""

from __future__ import annotations

import discord

from core.jobs import Job

THREAD_ALREADY_CREATED = 160004  # Discord: "A thread has already been created for this message"
NONCE_TRUST_SECONDS = 240.0  # Discord dedupes a reused nonce for "a few minutes"
NO_THREAD_NOTE = (
    "I can't create a thread here (I need the Create Public Threads permission),"
    " so the video will be posted in this channel."
)
USERS_ONLY = discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False)
NO_PINGS = discord.AllowedMentions.none()
Target = discord.TextChannel | discord.Thread | discord.VoiceChannel | discord.StageChannel


def status_channel_id(job: Job) -> int:
    """Where the status message lives: the channel for a thread's starter, else the thread."""
    if job.thread_id is None or job.thread_id == job.status_message_id:
        return job.channel_id  # a thread started from a message shares that message's id
    return job.thread_id


def no_thread_note(job: Job, target: Target) -> str | None:
    """Why the video comes in the channel: kept on every edit, not only the first."""
    # A /video in a text channel always gets a thread unless Discord refused one.
    if job.thread_id is None and isinstance(target, discord.TextChannel):
        return NO_THREAD_NOTE
    return None


def status_link(job: Job) -> str | None:
    if job.status_message_id is None:
        return None
    return (
        f"https://discord.com/channels/{job.guild_id}/{status_channel_id(job)}"
        f"/{job.status_message_id}"
    )
