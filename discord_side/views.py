"""Buttons on a delivered video that keep working after a restart.

They are ``DynamicItem``s: the job id travels in the ``custom_id`` (``wan:reroll:<job id>``), so
no view has to be re-created per message at start-up; ``bot.add_dynamic_items`` is enough.
Errors go through the same policy as app commands (:func:`discord_side.errors.report_error`).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Protocol

import discord

from core.jobs import Job
from discord_side.errors import report_error

JOB_ID = r"(?P<job_id>[0-9a-f]{6,32})"


class ButtonHandler(Protocol):
    async def reroll(self, interaction: discord.Interaction, job_id: str) -> None: ...
    async def delete(self, interaction: discord.Interaction, job_id: str) -> None: ...


def _handler(interaction: discord.Interaction) -> ButtonHandler:
    cog = interaction.client.get_cog("Video")  # type: ignore[attr-defined]
    if cog is None:
        raise RuntimeError("the Video cog is not loaded")
    return cog  # type: ignore[no-any-return]


class _JobButton:
    """What both buttons share: the job id in the custom id, and one error policy.

    A mixin rather than a base class: discord.py needs each DynamicItem's ``template`` when the
    class is made.
    """

    action: ClassVar[str]
    job_id: str

    @classmethod
    def button(cls, job_id: str, label: str, emoji: str, style: discord.ButtonStyle) -> Any:
        return discord.ui.Button(
            label=label, emoji=emoji, style=style, custom_id=f"wan:{cls.action}:{job_id}"
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> Any:
        return cls(match["job_id"])  # type: ignore[call-arg]

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await getattr(_handler(interaction), self.action)(interaction, self.job_id)
        except Exception as exc:
            await report_error(interaction, exc)


class RerollButton(
    _JobButton, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"wan:reroll:{JOB_ID}"
):
    action = "reroll"

    def __init__(self, job_id: str) -> None:
        super().__init__(self.button(job_id, "Reroll", "🎲", discord.ButtonStyle.primary))
        self.job_id = job_id


class DeleteButton(
    _JobButton, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"wan:delete:{JOB_ID}"
):
    action = "delete"

    def __init__(self, job_id: str) -> None:
        super().__init__(self.button(job_id, "Delete", "🗑️", discord.ButtonStyle.secondary))
        self.job_id = job_id


def delivery_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job.id))
    view.add_item(DeleteButton(job.id))
    return view
