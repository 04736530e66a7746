"""Saved characters joining a request: by name for ``/video``, the same ones again for rerolls.

A character's files live on a message the bot owns in the server's library thread
(:mod:`discord_side.character_library`); a request gets fresh links from that message, and the job
remembers the message as the lasting copy of those files (``Job.reference_copies``), so rerolls
and replies read the same message again. The job's references also carry which character each
one was (:class:`core.characters.CharacterTag`): a character deleted since is reported clearly
instead of making a video without it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import discord
from discord.app_commands import Choice

from core.characters import (
    CharacterTag,
    braced,
    character_slots,
    clean_name,
    name_key,
    named_characters,
    names_for_labels,
    split_names,
)
from core.errors import Refused
from core.jobs import Job
from core.references import BuiltRequest, LabelledReference, ReferenceInput
from core.request import MAX_REFERENCES
from core.service import Requester
from core.store import Character
from discord_side.cdn import ReferencesExpired
from discord_side.client import AppClient
from discord_side.permissions import services
from discord_side.reference_copies import Copies, ReferenceKeeper

log = logging.getLogger(__name__)

CHOICES_MAX = 25  # Discord shows at most 25 suggestions
CHOICE_MAX_CHARS = 100


@dataclass(frozen=True, slots=True)
class Cast:
    """References with the saved characters in their slots, where those files live, and what
    was wrong with the characters asked for (reported with the request's other problems)."""

    references: list[ReferenceInput]
    copies: Copies = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    prompt: str | None = None  # for reuse: the prompt to send, when it had to change


@dataclass(frozen=True, slots=True)
class Tags:
    """The current name of each saved character a job used (see :meth:`Casting.still_saved`)."""

    current: Mapping[int, Character]

    def of(self, ref: LabelledReference) -> CharacterTag | None:
        if ref.character is None:
            return None
        character = self.current.get(ref.character.id)
        return ref.character if character is None else CharacterTag(character.id, character.name)


class Casting:
    def __init__(self, bot: AppClient, keeper: ReferenceKeeper) -> None:
        self.bot = bot
        self.keeper = keeper

    async def cast(
        self, who: Requester, names_text: str | None, attached: Sequence[ReferenceInput]
    ) -> Cast:
        """The attached references plus the characters named in ``names_text`` ("fox, cat")."""
        names, problems = split_names(names_text)
        if len(names) > MAX_REFERENCES:
            problems.append(
                f"{len(names)} characters listed: at most {MAX_REFERENCES} references in all"
            )
            names = names[:MAX_REFERENCES]  # no need to look up more than could be used
        found: list[Character] = []
        missing: list[str] = []
        for name in names:
            character = await self.bot.store.find_character(who.guild_id, who.user_id, name)
            if character is None:
                missing.append(name)
            else:
                found.append(character)
        if missing:
            problems.append(_missing_problem(missing))
        return await self._with(found, attached, problems)

    async def _with(
        self,
        characters: Sequence[Character],
        attached: Sequence[ReferenceInput],
        problems: list[str],
    ) -> Cast:
        slots = character_slots((ref.slot for ref in attached), len(characters), MAX_REFERENCES)
        if len(characters) > len(slots):
            problems.append(
                f"{len(attached) + len(characters)} references asked for ({len(attached)} attached"
                f" file(s) and {len(characters)} character(s)): at most {MAX_REFERENCES}"
            )
        references = list(attached)
        copies: Copies = {}
        for slot, character in zip(slots, characters, strict=False):
            kept = _copies(slot, character)
            try:
                fresh = await self.keeper.fresh_links(kept, _links(slot, character))
            except ReferencesExpired:
                problems.append(
                    f"the file of {braced(character.name)} is no longer on Discord (its message"
                    " in the character library was deleted): /character delete it and save it"
                    " again"
                )
                continue
            references.append(
                ReferenceInput(
                    slot=slot,
                    media=replace(character.media, url=fresh[f"ref:{slot}"]),
                    voice=None
                    if character.voice is None
                    else replace(character.voice, url=fresh[f"voice:{slot}"]),
                    character=CharacterTag(character.id, character.name),
                )
            )
            copies |= kept
        return Cast(sorted(references, key=lambda ref: ref.slot), copies, problems)

    async def still_saved(self, old: Job) -> Tags:
        """The saved characters ``old`` was made with; refuses when one was deleted since."""
        tags = [ref.character for ref in old.references if ref.character is not None]
        if not tags:
            return Tags({})
        current = await self.bot.store.characters_by_id({tag.id for tag in tags})
        gone = [tag.name for tag in tags if tag.id not in current]
        if gone:
            names = ", ".join(braced(name) for name in gone)
            one = len(gone) == 1
            raise Refused(
                f"This video was made with the saved character{'' if one else 's'} {names},"
                f" which {'has' if one else 'have'} been deleted since, so it can't be made again"
                " the same way. Start a new /video (see /character list for the characters"
                " there are). Nothing was charged."
            )
        return Tags(current)

    async def again(
        self, old: Job, tags: Tags, attached: Sequence[ReferenceInput], prompt: str
    ) -> Cast:
        """A reply's new files with ``old``'s saved characters, which stay in the video.

        The new files take the first slots, so the characters' labels may change: an unchanged
        prompt gets their ``{name}`` back in place of the old labels, to be labelled anew.
        """
        characters = [
            tags.current[ref.character.id]
            for ref in sorted(old.references, key=lambda ref: ref.slot)
            if ref.character is not None and ref.character.id in tags.current
        ]
        cast = await self._with(characters, attached, [])
        if characters and prompt == old.request.prompt:
            labels = {
                ref.label: tags.current[ref.character.id].name
                for ref in old.references
                if ref.character is not None and ref.character.id in tags.current
            }
            cast = replace(cast, prompt=names_for_labels(prompt, labels))
        return cast

    async def remember(self, job: Job, built: BuiltRequest, written: str) -> None:
        """Keep the prompt as the member wrote it when it names characters (``{fox}``): the
        job's request has the one sent, with labels."""
        if any(ref.character for ref in built.references) and named_characters(written):
            await self.bot.store.save_written_prompt(job.id, written.strip())


def _copies(slot: int, character: Character) -> Copies:
    copies = {f"ref:{slot}": character.files["media"]}
    if character.voice is not None and "voice" in character.files:
        copies[f"voice:{slot}"] = character.files["voice"]
    return copies


def _links(slot: int, character: Character) -> dict[str, str]:
    links = {f"ref:{slot}": character.media.url}
    if character.voice is not None:
        links[f"voice:{slot}"] = character.voice.url
    return links


def _missing_problem(missing: Sequence[str]) -> str:
    names = ", ".join(braced(name) for name in missing)
    one = len(missing) == 1
    return (
        f"there is no saved character named {names} for you here"
        if one
        else f"there are no saved characters named {names} for you here"
    ) + ": see /character list, or save one with /character save"


# ----------------------------------------------------------------- autocomplete


async def complete_characters(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
    """Suggestions for a comma-separated list of names: the member's own, then the server's."""
    if interaction.guild_id is None:
        return []
    store = services(interaction.client).store
    characters = await store.characters_for(interaction.guild_id, interaction.user.id)
    *done, typing = current.split(",")
    chosen = [clean_name(part) for part in done if clean_name(part)]
    taken = {name_key(name) for name in chosen}
    prefix = "".join(f"{name}, " for name in chosen)
    wanted = name_key(typing)
    choices: list[Choice[str]] = []
    seen: set[str] = set()
    for character in characters:  # own characters first: they hide server ones of that name
        if character.key in seen or character.key in taken or wanted not in character.key:
            continue
        seen.add(character.key)
        value = prefix + character.name
        shown = value + (" (server)" if character.scope == "server" else "")
        if len(shown) <= CHOICE_MAX_CHARS:
            choices.append(Choice(name=shown, value=value))
    # Names that start with what is typed first, then those that merely contain it.
    choices.sort(key=lambda choice: not name_key(choice.value[len(prefix) :]).startswith(wanted))
    return choices[:CHOICES_MAX]
