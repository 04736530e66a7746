"""The two expressions the engines spell differently, so that every query is written once.

- :func:`json_field`: one top-level field of a JSON text column (SQLite ``json_extract``,
  PostgreSQL ``->>`` on the text cast to json); values come back as the engine gives them
  (convert in Python).
- :func:`insertion_order`: the tie-break after a timestamp, for a stable order of rows made at
  the same instant. SQLite: the rowid (the order rows were inserted). PostgreSQL has no such
  column: the primary key, a total order at least (pagination stays stable).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal


class json_field(FunctionElement[Any]):  # noqa: N801 (a SQL function, named like one)
    type = Text()
    inherit_cache = True
    # The key is part of the statement's cache key: two fields never share a compiled form.
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own attribute)
        *FunctionElement._traverse_internals,
        ("key", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[Any], key: str) -> None:
        if not key.isidentifier():
            raise ValueError(f"not a JSON field name: {key!r}")
        self.key = key
        super().__init__(column)


@compiles(json_field, "sqlite")
def _json_field_sqlite(element: json_field, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"json_extract({compiler.process(column, **kw)}, '$.{element.key}')"


@compiles(json_field, "postgresql")
def _json_field_postgresql(element: json_field, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"(CAST({compiler.process(column, **kw)} AS json) ->> '{element.key}')"


class insertion_order(ColumnElement[Any]):  # noqa: N801
    inherit_cache = True
    _traverse_internals = [("table", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, table: Table) -> None:
        self.table = table


@compiles(insertion_order, "sqlite")
def _insertion_order_sqlite(element: insertion_order, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.preparer.format_table(element.table)}.rowid"


@compiles(insertion_order)
def _insertion_order_default(element: insertion_order, compiler: SQLCompiler, **kw: Any) -> str:
    (key,) = element.table.primary_key.columns
    return compiler.process(key, **kw)
