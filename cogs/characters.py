"""``/character``: a member's (and a server's) saved characters, used by name in ``/video``.

``save`` checks the file by the rules of a reference, keeps it in the server's library thread
(:mod:`discord_side.character_library`) and stores the name; ``list`` shows a gallery; ``show``,
``rename`` and ``delete`` act on one character; ``server-role`` lets moderators name who else may
save characters for the whole server. Saving costs no quota, but bans, pause and channel rules
apply as for ``/video``. Replies are ephemeral; errors go through the tree's one error policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from core.characters import (
    NAME_MAX_CHARS,
    CharacterLimits,
    Scope,
    braced,
    clean_name,
    limit_problem,
    may_change,
    may_save_server_characters,
    name_key,
    name_problem,
)
from core.errors import Refused, UserError
from core.references import check_reference
from core.sniffing import Sniffer
from core.store import AuditRecord, Character, NewCharacter
from discord_side.character_gallery import GalleryView, character_embed
from discord_side.character_library import CharacterLibrary, caption
from discord_side.client import AppClient, app_client
from discord_side.inputs import requester_of, to_core_attachment
from discord_side.members import guild_member, role_ids
from discord_side.permissions import is_moderator, moderator_only
from discord_side.reference_copies import ReferenceKeeper

log = logging.getLogger(__name__)

NAME_OPTION_MAX = NAME_MAX_CHARS + 8  # room for stray spaces; the name rules say the rest
CHOICES_MAX = 25


class CharacterProblems(UserError):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(
            "I can't save this character:\n"
            + "\n".join(f"- {problem}" for problem in problems)
            + "\nNothing was saved."
        )


def megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f}".removesuffix(".0") + " MB"


def saved_text(character: Character, *, hides_server_one: bool) -> str:
    whose = "for your own videos" if character.scope == "me" else "for everyone in this server"
    voice = f", with the voice clip {character.voice.filename}" if character.voice else ""
    what = "an image" if character.kind == "image" else "a video"
    lines = [
        f"🎭 Saved {braced(character.name)}: {what}{voice}, {whose}.",
        f"Use it: `/video characters: {character.name} prompt: {braced(character.name)} waves"
        " hello`. In the prompt, {" + character.name + "} becomes its label (Image 1, …).",
    ]
    if hides_server_one:
        lines.append(
            f"This server also has a {braced(character.name)}; in your videos the name means yours."
        )
    return "\n".join(lines)


class CharactersCog(commands.Cog, name="Characters"):
    character = app_commands.Group(
        name="character",
        description="Saved characters: save once, use by name in /video",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
    )

    def __init__(self, bot: AppClient) -> None:
        self.bot = bot
        self.sniffer = Sniffer(bot.session)
        self.keeper = ReferenceKeeper(bot)
        self.library = CharacterLibrary(bot, self.keeper)

    async def cog_unload(self) -> None:
        await self.keeper.close()

    @property
    def limits(self) -> CharacterLimits:
        settings = self.bot.settings
        return CharacterLimits(settings.characters_per_member, settings.characters_per_server)

    # ----------------------------------------------------------------- save

    @character.command(name="save", description="Save a character to use by name in /video")
    @app_commands.describe(
        name="What to call it: letters, digits, spaces, - and _ (at most 32)",
        ref="The character: an image (JPEG/PNG/BMP/WEBP) or a video (MP4/MOV)",
        voice="Its voice clip (MP3/WAV/M4A/OGG), used whenever the character is",
        scope="me: for your videos (default); server: for everyone here (moderators)",
    )
    async def save(
        self,
        interaction: discord.Interaction,
        name: Range[str, 1, NAME_OPTION_MAX],
        ref: discord.Attachment,
        voice: discord.Attachment | None = None,
        scope: Scope = "me",
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        member = guild_member(interaction)
        await self.bot.service.check_allowed(requester_of(interaction))
        media = to_core_attachment(ref)
        clip = to_core_attachment(voice) if voice is not None else None
        # What the files really are, from their first bytes, as for /video.
        contents = await self.sniffer.sniff_all([media, *([clip] if clip else [])])
        kind, problems = check_reference(media, clip, contents)
        if (problem := name_problem(name)) is not None:
            problems.insert(0, problem)
        if problems or kind is None:
            raise CharacterProblems(problems)
        name = clean_name(name)
        if scope == "server":
            editor_role = await self.bot.store.character_editor_role(member.guild.id)
            if not may_save_server_characters(
                moderator=await is_moderator(self.bot, member),
                role_ids=role_ids(member),
                editor_role_id=editor_role,
            ):
                raise Refused(
                    "Only moderators (or members with this server's character role) can save"
                    " server characters. Save it for yourself with scope: me."
                )
        known = await self.bot.store.characters_for(member.guild.id, member.id)
        same = [c for c in known if c.key == name_key(name)]
        if any(c.scope == scope and (scope == "server" or c.owner_id == member.id) for c in same):
            raise Refused(
                f"{'You already have' if scope == 'me' else 'This server already has'} a character"
                f" named {braced(name)}. Pick another name, or rename or delete the old one first."
            )
        count = await self.bot.store.count_characters(member.guild.id, member.id, scope)
        if (at_limit := limit_problem(scope, count, self.limits)) is not None:
            raise Refused(at_limit)

        channel = interaction.channel
        if not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            raise UserError("Characters can only be saved in a server's channels.")
        thread = await self.library.thread(channel)
        total = media.size + (clip.size if clip else 0)
        if not self.library.fits(thread, total):
            raise UserError(
                f"Your file{'s are' if clip else ' is'} {megabytes(total)}: I can keep at most"
                f" {megabytes(thread.guild.filesize_limit)} per character in this server (its"
                " upload limit). Nothing was saved."
            )
        text, nonce = caption(name, member.id, scope), f"ch{interaction.id}"
        files = await self.library.keep(thread, media, clip, caption=text, nonce=nonce)
        links = await self.keeper.fresh_links(
            files, {"media": media.url} | ({"voice": clip.url} if clip else {})
        )
        new = NewCharacter(
            guild_id=member.guild.id,
            owner_id=member.id,
            scope=scope,
            name=name,
            kind=kind,
            media=replace(media, url=links["media"]),
            voice=replace(clip, url=links["voice"]) if clip else None,
            files=files,
        )
        audit = self._audit(member, "character.save", name, None, {"kind": kind}, scope)
        try:
            saved = await self.bot.store.save_character(new, self.limits, time.time(), audit)
        except UserError:
            await self.library.discard(files)  # lost a race for the name or the last place
            raise
        log.info("guild %s: character %s saved by %s", member.guild.id, saved.id, member.id)
        hides = scope == "me" and any(c.scope == "server" for c in same)
        await interaction.followup.send(saved_text(saved, hides_server_one=hides), ephemeral=True)

    # ----------------------------------------------------------------- list, show

    @character.command(name="list", description="Your characters and this server's, as a gallery")
    @app_commands.describe(scope="Only yours (me) or only the server's (server); both by default")
    async def list_characters(
        self, interaction: discord.Interaction, scope: Scope | None = None
    ) -> None:
        member = guild_member(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        characters = [
            c
            for c in await self.bot.store.characters_for(member.guild.id, member.id)
            if scope is None or c.scope == scope
        ]
        if not characters:
            await interaction.followup.send(
                "No saved characters here yet. Save one with `/character save`, then use it in"
                " `/video` with `characters:` and `{name}` in the prompt.",
                ephemeral=True,
            )
            return
        view = GalleryView(self.library, interaction, characters)
        embeds = await view.render(0)
        if view.pages == 1:
            view.stop()
            await interaction.followup.send(embeds=embeds, ephemeral=True)
        else:
            await interaction.followup.send(embeds=embeds, view=view, ephemeral=True)

    @character.command(name="show", description="One saved character, its file and details")
    @app_commands.describe(name="The character's name")
    async def show(self, interaction: discord.Interaction, name: str) -> None:
        member = guild_member(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        character = await self._find(member, name)
        url = await self.library.fresh_media_url(character)
        embed = character_embed(character, url, large=True)
        if url is None:
            embed.add_field(
                name="⚠️ File missing",
                value="Its message in the character library was deleted: delete this"
                " character and save it again.",
            )
        elif character.kind == "video":
            embed.add_field(name="File", value=f"[{character.media.filename}]({url})")
        await interaction.followup.send(embed=embed, ephemeral=True)

    # ----------------------------------------------------------------- rename, delete

    @character.command(name="rename", description="Give a saved character another name")
    @app_commands.describe(name="The character's name now", new_name="Its new name")
    async def rename(
        self,
        interaction: discord.Interaction,
        name: str,
        new_name: Range[str, 1, NAME_OPTION_MAX],
    ) -> None:
        member = guild_member(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        character = await self._changeable(member, name)
        if (problem := name_problem(new_name)) is not None:
            raise CharacterProblems([problem])
        audit = self._audit(
            member, "character.rename", character.name, character.name, new_name, character.scope
        )
        renamed = await self.bot.store.rename_character(character, new_name, time.time(), audit)
        await self.library.recaption(renamed)
        await interaction.followup.send(
            f"✏️ {braced(character.name)} is now {braced(renamed.name)}. Videos made with it"
            " keep working; use the new name in new prompts.",
            ephemeral=True,
        )

    @character.command(name="delete", description="Delete a saved character and its file")
    @app_commands.describe(name="The character's name")
    async def delete(self, interaction: discord.Interaction, name: str) -> None:
        member = guild_member(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        character = await self._changeable(member, name)
        audit = self._audit(
            member, "character.delete", character.name, {"id": character.id}, None, character.scope
        )
        if not await self.bot.store.delete_character(character.id, time.time(), audit):
            raise Refused(f"{braced(character.name)} was already deleted.")
        await self.library.discard(character.files)
        await interaction.followup.send(
            f"🗑️ Deleted {braced(character.name)}. Videos made with it stay; rerolling them will"
            " say the character is gone.",
            ephemeral=True,
        )

    # ----------------------------------------------------------------- the server's setting

    @character.command(
        name="server-role", description="Moderators: who else may save server characters"
    )
    @app_commands.describe(role="Members with this role may; leave empty for moderators only")
    @moderator_only()
    async def server_role(
        self, interaction: discord.Interaction, role: discord.Role | None = None
    ) -> None:
        member = guild_member(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        before = await self.bot.store.character_editor_role(member.guild.id)
        after = None if role is None else role.id
        audit = AuditRecord(
            member.guild.id, member.id, "character.server-role", None, before, after
        )
        await self.bot.store.set_character_editor_role(member.guild.id, after, time.time(), audit)
        text = (
            "Only moderators can save server characters now."
            if role is None
            else f"Members with {role.mention} can now save server characters, as moderators can."
        )
        await interaction.followup.send(text, ephemeral=True)

    # ----------------------------------------------------------------- helpers

    async def _find(self, member: discord.Member, name: str) -> Character:
        character = await self.bot.store.find_character(member.guild.id, member.id, name)
        if character is None:
            raise UserError(
                f"There is no saved character named {braced(name)} for you here."
                " See `/character list`."
            )
        return character

    async def _changeable(self, member: discord.Member, name: str) -> Character:
        character = await self._find(member, name)
        moderator = character.scope == "server" and await is_moderator(self.bot, member)
        if not may_change(
            scope=character.scope,
            owner_id=character.owner_id,
            user_id=member.id,
            moderator=moderator,
        ):
            raise Refused(
                f"Only <@{character.owner_id}>, who saved {braced(character.name)}, or a moderator"
                " can change it."
            )
        return character

    @staticmethod
    def _audit(
        member: discord.Member, action: str, target: str, before: Any, after: Any, scope: Scope
    ) -> AuditRecord | None:
        """Server characters are the server's: changes to them go in the moderators' audit."""
        if scope != "server":
            return None
        return AuditRecord(member.guild.id, member.id, action, target, before, after)

    @show.autocomplete("name")
    @rename.autocomplete("name")
    @delete.autocomplete("name")
    async def _name_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[Choice[str]]:
        if interaction.guild_id is None:
            return []
        characters = await self.bot.store.characters_for(interaction.guild_id, interaction.user.id)
        wanted = name_key(current)
        seen: set[str] = set()
        choices = []
        for character in characters:
            if character.key in seen or wanted not in character.key:
                continue
            seen.add(character.key)  # own names first: they hide the server's of that name
            shown = character.name + (" (server)" if character.scope == "server" else "")
            choices.append(Choice(name=shown, value=character.name))
        return choices[:CHOICES_MAX]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(CharactersCog(app_client(bot)))
