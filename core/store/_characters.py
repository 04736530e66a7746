"""The character library's SQL: saved characters, the library thread, who may save for the
server, and prompts as written.

A character is saved with the same guarantees as a job: the limit check and the insert are one
reservation (serialized on both engines), and unique names are enforced by the database itself.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.attachments import Kind
from core.characters import CharacterLimits, Scope, braced, clean_name, limit_problem, name_key
from core.errors import Refused
from core.references import Attachment
from core.store._audit import write_audit
from core.store._db import CHARACTER_LOCK, AnyRow, Queries
from core.store._tables import character_libraries, character_settings, characters, job_prompts
from core.store.types import AuditRecord, Character, NameTaken, NewCharacter

_COLUMNS = tuple(
    characters.c[name]
    for name in (
        "id",
        "guild_id",
        "owner_id",
        "scope",
        "name",
        "kind",
        "media_json",
        "voice_json",
        "files_json",
        "created_at",
    )
)
_OWN_FIRST = characters.c.scope == "server"  # false (own) sorts before true (the server's)


def _character(row: AnyRow) -> Character:
    values = row._mapping
    voice = values["voice_json"]
    return Character(
        id=values["id"],
        guild_id=values["guild_id"],
        owner_id=values["owner_id"],
        scope=cast(Scope, values["scope"]),
        name=values["name"],
        kind=cast(Kind, values["kind"]),
        media=Attachment.from_json(json.loads(values["media_json"])),
        voice=None if voice is None else Attachment.from_json(json.loads(voice)),
        files=json.loads(values["files_json"]),
        created_at=float(values["created_at"]),  # SQLite RETURNING: maybe an int
    )


def _count(guild_id: int, owner_id: int, scope: Scope) -> Any:
    """How many characters count against the limit for ``scope``: the owner's own, or the
    server's shared ones."""
    query = select(func.count()).select_from(characters).where(characters.c.guild_id == guild_id)
    if scope == "me":
        return query.where(characters.c.owner_id == owner_id, characters.c.scope == "me")
    return query.where(characters.c.scope == "server")


class CharacterQueries(Queries):
    async def save_character(
        self,
        new: NewCharacter,
        limits: CharacterLimits,
        now: float,
        audit: AuditRecord | None = None,
    ) -> Character:
        """Check the limit and the name, and insert; one transaction.

        Raises :class:`NameTaken`, or :class:`core.errors.Refused` at the limit.
        """
        statement = (
            insert(characters)
            .values(
                guild_id=new.guild_id,
                owner_id=new.owner_id,
                scope=new.scope,
                name=clean_name(new.name),
                name_key=name_key(new.name),
                kind=new.kind,
                media_json=json.dumps(new.media.to_json()),
                voice_json=None if new.voice is None else json.dumps(new.voice.to_json()),
                files_json=json.dumps(new.files),
                created_at=now,
                updated_at=now,
            )
            .returning(*_COLUMNS)
        )
        async with self._db.reservation(CHARACTER_LOCK) as conn:
            count = (await conn.execute(_count(new.guild_id, new.owner_id, new.scope))).scalar()
            problem = limit_problem(new.scope, int(count or 0), limits)
            if problem is not None:
                raise Refused(problem)
            try:
                row = (await conn.execute(statement)).one()
            except IntegrityError:
                raise NameTaken(new.name, new.scope) from None
            await write_audit(conn, audit, now)
        return _character(row)

    async def characters_for(self, guild_id: int, user_id: int) -> list[Character]:
        """The member's own characters, then the server's, each by name."""
        rows = await self._db.fetchall(
            select(*_COLUMNS)
            .where(characters.c.guild_id == guild_id)
            .where((characters.c.scope == "server") | (characters.c.owner_id == user_id))
            .order_by(_OWN_FIRST, characters.c.name_key)
        )
        return [_character(row) for row in rows]

    async def find_character(self, guild_id: int, user_id: int, name: str) -> Character | None:
        """The member's own character of that name, else the server's (own names come first)."""
        own = (characters.c.scope == "me") & (characters.c.owner_id == user_id)
        row = await self._db.fetchone(
            select(*_COLUMNS)
            .where(characters.c.guild_id == guild_id, characters.c.name_key == name_key(name))
            .where(own | (characters.c.scope == "server"))
            .order_by(_OWN_FIRST)
            .limit(1)
        )
        return None if row is None else _character(row)

    async def characters_by_id(self, ids: Collection[int]) -> dict[int, Character]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = await self._db.fetchall(select(*_COLUMNS).where(characters.c.id.in_(wanted)))
        return {character.id: character for character in map(_character, rows)}

    async def count_characters(self, guild_id: int, owner_id: int, scope: Scope) -> int:
        return int(await self._db.scalar(_count(guild_id, owner_id, scope)) or 0)

    async def rename_character(
        self, character: Character, new_name: str, now: float, audit: AuditRecord | None = None
    ) -> Character:
        """Raises :class:`NameTaken`; returns the renamed character."""
        statement = (
            update(characters)
            .where(characters.c.id == character.id)
            .values(name=clean_name(new_name), name_key=name_key(new_name), updated_at=now)
        )
        async with self._db.transaction() as conn:
            try:
                result = await conn.execute(statement)
            except IntegrityError:
                raise NameTaken(new_name, character.scope) from None
            if result.rowcount != 1:
                raise Refused(f"The character {braced(character.name)} no longer exists.")
            await write_audit(conn, audit, now)
        return replace(character, name=clean_name(new_name))

    async def delete_character(
        self, character_id: int, now: float, audit: AuditRecord | None = None
    ) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(delete(characters).where(characters.c.id == character_id))
            if result.rowcount != 1:
                return False
            await write_audit(conn, audit, now)
            return True

    # ----------------------------------------------------------------- the library thread

    async def library_channel(self, guild_id: int) -> int | None:
        channel = await self._db.scalar(
            select(character_libraries.c.channel_id).where(
                character_libraries.c.guild_id == guild_id
            )
        )
        return None if channel is None else int(channel)

    async def set_library_channel(self, guild_id: int, channel_id: int, now: float) -> None:
        statement = self._db.upsert(
            character_libraries,
            {"guild_id": guild_id, "channel_id": channel_id, "created_at": now},
            ("guild_id",),
        )
        async with self._db.transaction() as conn:
            await conn.execute(statement)

    # ----------------------------------------------------------------- server setting

    async def character_editor_role(self, guild_id: int) -> int | None:
        role = await self._db.scalar(
            select(character_settings.c.editor_role_id).where(
                character_settings.c.guild_id == guild_id
            )
        )
        return None if role is None else int(role)

    async def set_character_editor_role(
        self, guild_id: int, role_id: int | None, now: float, audit: AuditRecord | None = None
    ) -> None:
        statement = self._db.upsert(
            character_settings,
            {"guild_id": guild_id, "editor_role_id": role_id, "updated_at": now},
            ("guild_id",),
        )
        async with self._db.transaction() as conn:
            await conn.execute(statement)
            await write_audit(conn, audit, now)

    # ----------------------------------------------------------------- prompts as written

    async def save_written_prompt(self, job_id: str, prompt: str) -> None:
        statement = (
            self._db.insert(job_prompts)
            .values(job_id=job_id, prompt=prompt)
            .on_conflict_do_nothing(index_elements=[job_prompts.c.job_id])
        )
        async with self._db.transaction() as conn:
            await conn.execute(statement)

    async def written_prompt(self, job_id: str) -> str | None:
        prompt = await self._db.scalar(
            select(job_prompts.c.prompt).where(job_prompts.c.job_id == job_id)
        )
        return None if prompt is None else str(prompt)
