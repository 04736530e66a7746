"""What the store's tests compare databases by: their schema as reflected, and their rows."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect


def _squash(sql: object) -> str:
    """SQL text without its layout (whitespace does not count)."""
    return re.sub(r"\s+", "", str(sql)).lower()


def schema_of(sync: Connection) -> dict[str, Any]:
    """Every table's columns (name, type, nullable, default, in order), keys, indexes (with
    their predicates) and constraints, comparable between two databases of one engine."""
    inspector = inspect(sync)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        indexes = []
        for index in inspector.get_indexes(table):
            where = {
                key: _squash(value)
                for key, value in index.get("dialect_options", {}).items()
                if key.endswith("_where")
            }
            indexes.append(
                (index["name"], tuple(index["column_names"]), bool(index["unique"]), where)
            )
        key = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
        tables[table] = {
            # A key column is never NULL whatever its declaration says (the legacy SQL left NOT
            # NULL out of its keys; SQLAlchemy writes it).
            "columns": [
                (
                    c["name"],
                    str(c["type"]),
                    "key" if c["name"] in key else c["nullable"],
                    _squash(c["default"] or ""),
                )
                for c in inspector.get_columns(table)
            ],
            "primary key": key,
            "foreign keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(indexes, key=lambda index: str(index[0])),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(_squash(c["sqltext"]) for c in inspector.get_check_constraints(table)),
        }
    return tables


def rows_of(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of a SQLite file, as column → value, in insertion order."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: [dict(row) for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid')]
            for name in names
        }
    finally:
        conn.close()
