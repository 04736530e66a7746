"""Buttons on a delivered video that keep working after a restart.

They are ``DynamicItem``s (discord.py's ``examples/views/persistent.py``): the job id travels in
the ``custom_id`` (``wan:reroll:<job id>``), each button parses its own id back, so no view has
to be re-created per message at start-up; the bot's ``add_dynamic_items`` is enough. A press
calls the bot's typed handler (:class:`JobButtonActions`, the bot's video actions); errors go
through the same policy as app commands (:func:`discord_side.errors.report_error`).
"""

from __future__ import annotations

import re
from typing import Any, Protocol, Self, runtime_checkable

import discord

from core.jobs import Job
from discord_side.errors import report_error

JOB_ID = r"(?P<job_id>[0-9a-f]{6,32})"


class JobButtonActions(Protocol):
    """What the buttons do (:class:`discord_side.actions.VideoActions` does it)."""

    async def reroll(self, interaction: discord.Interaction, job_id: str) -> None: ...
    async def delete(self, interaction: discord.Interaction, job_id: str) -> None: ...


@runtime_checkable
class HasJobButtonActions(Protocol):
    @property
    def actions(self) -> JobButtonActions: ...


def button_actions(client: object) -> JobButtonActions:
    """The handler of a press, from ``interaction.client`` (the bot)."""
    if not isinstance(client, HasJobButtonActions):
        raise TypeError(f"{type(client).__name__} has no video actions for the buttons")
    return client.actions


def _button(custom_id: str, label: str, emoji: str, style: discord.ButtonStyle) -> Any:
    return discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id)


class RerollButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"wan:reroll:{JOB_ID}"
):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            _button(f"wan:reroll:{job_id}", "Reroll", "🎲", discord.ButtonStyle.primary)
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await button_actions(interaction.client).reroll(interaction, self.job_id)
        except Exception as exc:
            await report_error(interaction, exc)


class DeleteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"wan:delete:{JOB_ID}"
):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            _button(f"wan:delete:{job_id}", "Delete", "🗑️", discord.ButtonStyle.secondary)
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await button_actions(interaction.client).delete(interaction, self.job_id)
        except Exception as exc:
            await report_error(interaction, exc)


def delivery_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job.id))
    view.add_item(DeleteButton(job.id))
    return view
