"""The Discord side of a job's life: its status message, its thread, and the delivered video.

``_delivery`` posts (the tracker's :class:`core.tracker.JobEvents`), ``_status_edits`` throttles
the status message's edits, ``_where`` says where a job's messages live.
"""

from discord_side.delivery._delivery import DiscordDelivery, NowhereToPost
from discord_side.delivery._status_edits import StatusEdits
from discord_side.delivery._where import NO_THREAD_NOTE, status_channel_id, status_link

__all__ = [
    "NO_THREAD_NOTE",
    "DiscordDelivery",
    "NowhereToPost",
    "StatusEdits",
    "status_channel_id",
    "status_link",
]
