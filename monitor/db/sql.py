"""The SQL in queries/: one file per query, loaded by name, identifiers filled in safely."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from psycopg import sql


@cache
def text(name: str) -> str:
    """The text of queries/<name>.sql."""
    return files("monitor.db").joinpath("queries", f"{name}.sql").read_text(encoding="utf-8")


def query(name: str, **parts: sql.Composable) -> sql.Composed:
    """queries/<name>.sql with its {placeholders} replaced by quoted identifiers or SQL parts."""
    return sql.SQL(text(name)).format(**parts)


def table(schema: str, name: str) -> sql.Identifier:
    """A schema-qualified, quoted table name."""
    return sql.Identifier(schema, name)


def column(name: str) -> sql.Identifier:
    """A quoted column name (Prisma's camelCase columns need the quotes)."""
    return sql.Identifier(name)
