"""The Discord side of a job's life: its status message, its thread, and the delivered video."""

from discord_side.delivery._delivery import (
    NO_THREAD_NOTE,
    DiscordDelivery,
    NowhereToPost,
    status_channel_id,
    status_link,
)

__all__ = ["NO_THREAD_NOTE", "DiscordDelivery", "NowhereToPost", "status_channel_id", "status_link"]
