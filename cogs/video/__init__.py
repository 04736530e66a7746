"""``/video``, replies in a video thread, and the Reroll/Delete buttons."""

from cogs.video._command import setup

__all__ = ["setup"]
