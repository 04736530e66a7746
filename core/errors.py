"""Errors the user caused and can fix: shown to them as-is, ephemeral, and never charged."""

from __future__ import annotations


class UserError(Exception):
    """Base for anything whose message is meant for the person who asked."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class Refused(UserError):
    """The request is not allowed here or now (banned, paused, channel rule, policy limit)."""
