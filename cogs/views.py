"""Buttons on a delivered video that keep working after a restart.

They are ``DynamicItem``s: the job id travels in the ``custom_id`` (``wan:reroll:<job id>``), so
no view has to be re-created per message at start-up; ``bot.add_dynamic_items`` is enough.
Errors go through the same policy as app commands (:func:`cogs.errors.report_error`).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from cogs.errors import report_error
from core.jobs import Job

JOB_ID = r"(?P<job_id>[0-9a-f]{6,32})"


class ButtonHandler(Protocol):
    async def reroll(self, interaction: discord.Interaction, job_id: str) -> None: ...
    async def delete(self, interaction: discord.Interaction, job_id: str) -> None: ...


def _handler(interaction: discord.Interaction) -> ButtonHandler:
    cog = interaction.client.get_cog("Video")  # type: ignore[attr-defined]
    if cog is None:
        raise RuntimeError("the Video cog is not loaded")
    return cog  # type: ignore[no-any-return]


class RerollButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"wan:reroll:{JOB_ID}"
):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Reroll",
                emoji="🎲",
                style=discord.ButtonStyle.primary,
                custom_id=f"wan:reroll:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> RerollButton:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await _handler(interaction).reroll(interaction, self.job_id)
        except Exception as exc:
            await report_error(interaction, exc)


class DeleteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"wan:delete:{JOB_ID}"
):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Delete",
                emoji="🗑️",
                style=discord.ButtonStyle.secondary,
                custom_id=f"wan:delete:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> DeleteButton:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await _handler(interaction).delete(interaction, self.job_id)
        except Exception as exc:
            await report_error(interaction, exc)


def delivery_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RerollButton(job.id))
    view.add_item(DeleteButton(job.id))
    return view
