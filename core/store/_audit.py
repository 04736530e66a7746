"""The audit log: each moderator action is one row, written in the transaction of its change.

Every concern's writes take an optional :class:`AuditRecord` and pass it to :func:`write_audit`
on their own transaction's connection, so a change and its audit row commit or roll back
together.
"""

from __future__ import annotations

import json

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.store._db import Queries
from core.store._tables import audit_log
from core.store.types import AuditEntry, AuditRecord

_ENTRY = (
    audit_log.c.id,
    audit_log.c.guild_id,
    audit_log.c.actor_id,
    audit_log.c.action,
    audit_log.c.target,
    audit_log.c.before_json,
    audit_log.c.after_json,
    audit_log.c.created_at,
)


async def write_audit(conn: AsyncConnection, record: AuditRecord | None, now: float) -> None:
    if record is None:
        return
    await conn.execute(
        insert(audit_log),
        {
            "guild_id": record.guild_id,
            "actor_id": record.actor_id,
            "action": record.action,
            "target": record.target,
            "before_json": json.dumps(record.before, default=str),
            "after_json": json.dumps(record.after, default=str),
            "created_at": now,
        },
    )


class AuditQueries(Queries):
    async def audit_entries(self, guild_id: int, limit: int = 20) -> list[AuditEntry]:
        rows = await self._db.fetchall(
            select(*_ENTRY)
            .where(audit_log.c.guild_id == guild_id)
            .order_by(audit_log.c.id.desc())
            .limit(limit)
        )
        return [
            AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), r[7])
            for r in rows
        ]
