"""The audit log: each moderator action is one row, written in the transaction of its change.

Every concern's writes take an optional :class:`AuditRecord` and pass it to :func:`write_audit`
on their own transaction's connection, so a change and its audit row commit or roll back
together.
"""

from __future__ import annotations

import json

import aiosqlite

from core.store._db import Queries
from core.store.types import AuditEntry, AuditRecord


async def write_audit(conn: aiosqlite.Connection, record: AuditRecord | None, now: float) -> None:
    if record is None:
        return
    await conn.execute(
        "INSERT INTO audit_log (guild_id, actor_id, action, target, before_json,"
        " after_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.guild_id,
            record.actor_id,
            record.action,
            record.target,
            json.dumps(record.before, default=str),
            json.dumps(record.after, default=str),
            now,
        ),
    )


class AuditQueries(Queries):
    async def audit_entries(self, guild_id: int, limit: int = 20) -> list[AuditEntry]:
        rows = await self._db.fetchall(
            "SELECT id, guild_id, actor_id, action, target, before_json, after_json, created_at"
            " FROM audit_log WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        )
        return [
            AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), r[7])
            for r in rows
        ]
