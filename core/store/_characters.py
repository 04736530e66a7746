"""The character library's SQL: saved characters, the library thread, who may save for the
server, and prompts as written.

On the store's shared database, under its write lock and read turns, so a character is saved
with the same guarantees as a job (a limit check and the insert in one transaction; unique names
enforced by the database itself).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import replace
from typing import cast

import aiosqlite

from core.attachments import Kind
from core.characters import CharacterLimits, Scope, braced, clean_name, limit_problem, name_key
from core.errors import Refused
from core.references import Attachment
from core.store._audit import write_audit
from core.store._db import Queries, scalar
from core.store.types import AuditRecord, Character, NameTaken, NewCharacter

_COLUMNS = (
    "id, guild_id, owner_id, scope, name, kind, media_json, voice_json, files_json, created_at"
)


def _character(row: aiosqlite.Row) -> Character:
    voice = row["voice_json"]
    return Character(
        id=row["id"],
        guild_id=row["guild_id"],
        owner_id=row["owner_id"],
        scope=cast(Scope, row["scope"]),
        name=row["name"],
        kind=cast(Kind, row["kind"]),
        media=Attachment.from_json(json.loads(row["media_json"])),
        voice=None if voice is None else Attachment.from_json(json.loads(voice)),
        files=json.loads(row["files_json"]),
        created_at=row["created_at"],
    )


def _count(guild_id: int, owner_id: int, scope: Scope) -> tuple[str, tuple[int, ...]]:
    """How many characters count against the limit for ``scope``: the owner's own, or the
    server's shared ones."""
    if scope == "me":
        return (
            "SELECT COUNT(*) FROM characters WHERE guild_id = ? AND owner_id = ? AND scope = 'me'",
            (guild_id, owner_id),
        )
    return "SELECT COUNT(*) FROM characters WHERE guild_id = ? AND scope = 'server'", (guild_id,)


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
        async with self._db.transaction() as conn:
            count = await scalar(conn, *_count(new.guild_id, new.owner_id, new.scope))
            problem = limit_problem(new.scope, int(count), limits)
            if problem is not None:
                raise Refused(problem)
            try:
                cur = await conn.execute(
                    "INSERT INTO characters (guild_id, owner_id, scope, name, name_key, kind,"
                    " media_json, voice_json, files_json, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new.guild_id,
                        new.owner_id,
                        new.scope,
                        clean_name(new.name),
                        name_key(new.name),
                        new.kind,
                        json.dumps(new.media.to_json()),
                        None if new.voice is None else json.dumps(new.voice.to_json()),
                        json.dumps(new.files),
                        now,
                        now,
                    ),
                )
            except sqlite3.IntegrityError:
                raise NameTaken(new.name, new.scope) from None
            await write_audit(conn, audit, now)
            character_id = cur.lastrowid
            async with conn.execute(
                f"SELECT {_COLUMNS} FROM characters WHERE id = ?", (character_id,)
            ) as read:
                row = await read.fetchone()
        assert row is not None
        return _character(row)

    async def characters_for(self, guild_id: int, user_id: int) -> list[Character]:
        """The member's own characters, then the server's, each by name."""
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM characters WHERE guild_id = ?"
            " AND (scope = 'server' OR owner_id = ?)"
            " ORDER BY scope = 'server', name_key",
            (guild_id, user_id),
        )
        return [_character(row) for row in rows]

    async def find_character(self, guild_id: int, user_id: int, name: str) -> Character | None:
        """The member's own character of that name, else the server's (own names come first)."""
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM characters WHERE guild_id = ? AND name_key = ?"
            " AND ((scope = 'me' AND owner_id = ?) OR scope = 'server')"
            " ORDER BY scope = 'server' LIMIT 1",
            (guild_id, name_key(name), user_id),
        )
        return None if row is None else _character(row)

    async def characters_by_id(self, ids: Collection[int]) -> dict[int, Character]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM characters WHERE id IN ({', '.join('?' * len(wanted))})",
            wanted,
        )
        return {character.id: character for character in map(_character, rows)}

    async def count_characters(self, guild_id: int, owner_id: int, scope: Scope) -> int:
        row = await self._db.fetchone(*_count(guild_id, owner_id, scope))
        return int(row[0]) if row else 0

    async def rename_character(
        self, character: Character, new_name: str, now: float, audit: AuditRecord | None = None
    ) -> Character:
        """Raises :class:`NameTaken`; returns the renamed character."""
        async with self._db.transaction() as conn:
            try:
                cur = await conn.execute(
                    "UPDATE characters SET name = ?, name_key = ?, updated_at = ? WHERE id = ?",
                    (clean_name(new_name), name_key(new_name), now, character.id),
                )
            except sqlite3.IntegrityError:
                raise NameTaken(new_name, character.scope) from None
            if cur.rowcount != 1:
                raise Refused(f"The character {braced(character.name)} no longer exists.")
            await write_audit(conn, audit, now)
        return replace(character, name=clean_name(new_name))

    async def delete_character(
        self, character_id: int, now: float, audit: AuditRecord | None = None
    ) -> bool:
        async with self._db.transaction() as conn:
            cur = await conn.execute("DELETE FROM characters WHERE id = ?", (character_id,))
            if cur.rowcount != 1:
                return False
            await write_audit(conn, audit, now)
            return True

    # ----------------------------------------------------------------- the library thread

    async def library_channel(self, guild_id: int) -> int | None:
        row = await self._db.fetchone(
            "SELECT channel_id FROM character_libraries WHERE guild_id = ?", (guild_id,)
        )
        return None if row is None else int(row[0])

    async def set_library_channel(self, guild_id: int, channel_id: int, now: float) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO character_libraries (guild_id, channel_id, created_at)"
                " VALUES (?, ?, ?) ON CONFLICT (guild_id) DO UPDATE"
                " SET channel_id = excluded.channel_id, created_at = excluded.created_at",
                (guild_id, channel_id, now),
            )

    # ----------------------------------------------------------------- server setting

    async def character_editor_role(self, guild_id: int) -> int | None:
        row = await self._db.fetchone(
            "SELECT editor_role_id FROM character_settings WHERE guild_id = ?", (guild_id,)
        )
        return None if row is None or row[0] is None else int(row[0])

    async def set_character_editor_role(
        self, guild_id: int, role_id: int | None, now: float, audit: AuditRecord | None = None
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO character_settings (guild_id, editor_role_id, updated_at)"
                " VALUES (?, ?, ?) ON CONFLICT (guild_id) DO UPDATE"
                " SET editor_role_id = excluded.editor_role_id, updated_at = excluded.updated_at",
                (guild_id, role_id, now),
            )
            await write_audit(conn, audit, now)

    # ----------------------------------------------------------------- prompts as written

    async def save_written_prompt(self, job_id: str, prompt: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO job_prompts (job_id, prompt) VALUES (?, ?)",
                (job_id, prompt),
            )

    async def written_prompt(self, job_id: str) -> str | None:
        row = await self._db.fetchone("SELECT prompt FROM job_prompts WHERE job_id = ?", (job_id,))
        return None if row is None else str(row[0])
