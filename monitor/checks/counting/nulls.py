"""SQL for counting, per column, the rows where it is still NULL."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql


def missing_counts(columns: Sequence[str]) -> sql.Composed:
    """', count(*) FILTER (WHERE "c" IS NULL) AS missing_<i>' for each column, in order."""
    return sql.Composed(
        [
            sql.SQL(", count(*) FILTER (WHERE {} IS NULL) AS {}").format(
                sql.Identifier(column), sql.Identifier(f"missing_{i}")
            )
            for i, column in enumerate(columns)
        ]
    )


def missing_by_column(row: dict[str, int], columns: Sequence[str]) -> dict[str, float]:
    """column -> its count from a row built with missing_counts."""
    return {column: float(row[f"missing_{i}"]) for i, column in enumerate(columns)}
