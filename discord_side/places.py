"""Where a job's messages go when its thread cannot take them, and what the member is told.

A video's messages belong in its thread. When Discord refuses the thread (deleted, locked,
archived, no permission), they go to the thread's channel as a reply to the thread's starter
message (the status message, for a ``/video``). When the channel refuses too, the member is
told where to find the video: on its status message and in ``/history``, and by DM.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import discord

from core.jobs import Job
from discord_side import presenter

UNKNOWN_CHANNEL = 10003
THREAD_ARCHIVED = 50083  # "Operation is not allowed on an archived thread" (locked ones too)
THREAD_LOCKED = 160005
THREAD_LIMITS = frozenset({160006, 160007})  # the server's active (announcement) threads at max


class Refusal(enum.Enum):
    """Why a channel or thread takes no message from the bot now (not a passing error)."""

    FORBIDDEN = "forbidden"
    GONE = "gone"
    LOCKED = "locked"


def refusal(exc: discord.HTTPException) -> Refusal | None:
    """What ``exc`` says about the place, or None when trying again later may work (5xx)."""
    if isinstance(exc, discord.NotFound):
        return Refusal.GONE
    if isinstance(exc, discord.Forbidden):
        return Refusal.FORBIDDEN
    if exc.code in (THREAD_ARCHIVED, THREAD_LOCKED):
        return Refusal.LOCKED
    return None


# Shown with a video (or a status message) posted in the channel instead of its thread.
MOVED_NOTES = {
    Refusal.FORBIDDEN: (
        "(Posted here because I can't post in the thread: I need Send Messages in Threads.)"
    ),
    Refusal.GONE: "(Posted here because the video's thread was deleted.)",
    Refusal.LOCKED: "(Posted here because the video's thread is locked or archived.)",
}
TOO_MANY_THREADS_NOTE = (
    "I can't start a thread here: this server has as many active threads as Discord allows."
    " The video will be posted in this channel."
)


@dataclass(frozen=True, slots=True)
class Place:
    """A channel or thread to try, and how a message there relates to the job."""

    channel_id: int
    in_thread: bool  # the job's own thread (else its channel)
    reply_to: int | None = None  # a message in this channel to answer (None: no reference)

    def reference(self) -> discord.MessageReference | None:
        if self.reply_to is None:
            return None
        # A deleted starter must not stop the post: then it is simply not a reply.
        return discord.MessageReference(
            message_id=self.reply_to, channel_id=self.channel_id, fail_if_not_exists=False
        )


def places(job: Job) -> list[Place]:
    """Where the job's messages may go, best first."""
    if job.thread_id is None:
        return [Place(job.channel_id, in_thread=False)]
    # A thread started from a message shares its id, and that message lives in the channel.
    return [
        Place(job.thread_id, in_thread=True),
        Place(job.channel_id, in_thread=False, reply_to=job.thread_id),
    ]


def unposted_note(url: str) -> str:
    """On the status message, when the video could be posted nowhere."""
    return (
        "I couldn't post the video here or in its thread (Discord refused)."
        f" [Download it here]({url}) ({_lifetime(url)}, so save it soon)."
    )


def unposted_dm(job: Job, url: str, status_link: str | None) -> str:
    """A DM to the requester, when the video could be posted nowhere in the server."""
    where = f"It is linked from its status message: {status_link}" if status_link else ""
    return presenter.shorten(
        f"🎬 {presenter.delivery_marker(job)}\n"
        f"I couldn't post it in <#{job.channel_id}>: Discord refused the thread and the"
        f" channel. [Download it here]({url}) ({_lifetime(url)}, so save it soon). {where}"
        "\n`/history` in the server lists your videos.",
        2000,
    )


def _lifetime(url: str) -> str:
    expiry = presenter.link_expiry(url)
    return f"the link expires <t:{expiry}:R>" if expiry else "the link expires within about a day"
