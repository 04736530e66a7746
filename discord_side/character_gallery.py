"""``/character list`` as a gallery: a page of embeds (one per character, with its picture), and
buttons to turn the pages. Only the member who asked may turn them; the buttons go away after
ten minutes (the interaction token lives fifteen)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from core.characters import braced
from core.store import Character
from discord_side.character_library import CharacterLibrary
from discord_side.errors import report_error

log = logging.getLogger(__name__)

PAGE_SIZE = 5  # Discord shows up to 10 embeds; five pictures keep a page readable
GALLERY_TIMEOUT = 600.0


def character_embed(character: Character, url: str | None, *, large: bool = False) -> discord.Embed:
    """One character: its name, what it is, whose, and its picture (when it is an image)."""
    what = "🖼️ image" if character.kind == "image" else "🎞️ video"
    whose = "server character" if character.scope == "server" else "personal"
    saved = f"saved by <@{character.owner_id}> <t:{int(character.created_at)}:R>"
    lines = [f"{what} · {whose} · {saved}"]
    if character.voice is not None:
        lines.append(f"🎙️ voice: {character.voice.filename}")
    lines.append(f"In a prompt: `{braced(character.name)}` (with `characters: {character.name}`)")
    embed = discord.Embed(
        title=braced(character.name), description="\n".join(lines), colour=discord.Colour.blurple()
    )
    if url is not None and character.kind == "image":
        if large:
            embed.set_image(url=url)
        else:
            embed.set_thumbnail(url=url)
    return embed


class GalleryView(discord.ui.View):
    def __init__(
        self,
        library: CharacterLibrary,
        interaction: discord.Interaction,
        characters: Sequence[Character],
    ) -> None:
        super().__init__(timeout=GALLERY_TIMEOUT)
        self.library = library
        self.owner_id = interaction.user.id
        self.characters = list(characters)
        self.page = 0
        self.pages = max((len(self.characters) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        self._latest = interaction  # each press brings a fresh token, used to remove the buttons
        self._sync_buttons()

    async def render(self, page: int) -> list[discord.Embed]:
        self.page = min(max(page, 0), self.pages - 1)
        shown = self.characters[self.page * PAGE_SIZE : (self.page + 1) * PAGE_SIZE]
        embeds = [
            character_embed(character, await self.library.fresh_media_url(character))
            for character in shown
        ]
        embeds[-1].set_footer(
            text=f"Page {self.page + 1}/{self.pages} · {len(self.characters)} character(s)"
        )
        self._sync_buttons()
        return embeds

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.page <= 0
        self.next.disabled = self.page >= self.pages - 1

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            "Only the member who ran /character list can turn its pages.", ephemeral=True
        )
        return False

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        self._latest = interaction
        await interaction.response.defer()  # fetching fresh pictures may take a moment
        embeds = await self.render(page)
        await interaction.edit_original_response(embeds=embeds, view=self)

    @discord.ui.button(label="◀ Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.page - 1)

    @discord.ui.button(label="Next ▶", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.page + 1)

    async def on_timeout(self) -> None:
        try:
            await self._latest.edit_original_response(view=None)
        except discord.HTTPException:
            log.debug("could not remove the gallery buttons (interaction %s)", self._latest.id)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        await report_error(interaction, error)
