"""A migration's SQL read with PostgreSQL's own parser: its statements, numbered 1, 2, ... in
file order with the line each starts on, and what each one is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import parse_sql
from pglast.parser import ParseError, scan

from monitor.lockplan.analysis import Analysis
from monitor.lockplan.statements import analyse


class SqlError(Exception):
    """The SQL does not parse: where, and PostgreSQL's words."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line, self.column, self.message = line, column, message


@dataclass(frozen=True)
class Statement:
    """One statement of the file: its number, where it starts, its text, what it does."""

    index: int  # 1-based, in file order
    line: int  # 1-based, of its first token (comments before it left out)
    text: str
    analysis: Analysis


def read_statements(sql: str) -> list[Statement]:
    """Every statement of the SQL text, in order; SqlError when it does not parse."""
    try:
        parsed = parse_sql(sql)
        starts = [token.start for token in scan(sql) if not _comment(token.name)]
    except ParseError as error:
        message, offset = error.args[0], error.args[1] if len(error.args) > 1 else 0
        line, column = position(sql, max(0, int(offset)))
        raise SqlError(line, column, str(message)) from None
    found = []
    for number, raw in enumerate(parsed, start=1):
        start = next((s for s in starts if s >= raw.stmt_location), raw.stmt_location)
        end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(sql)
        text = sql[start:end].strip()
        line, _ = position(sql, start)
        found.append(Statement(number, line, text, analyse(raw.stmt)))
    return found


def _comment(name: Any) -> bool:
    return str(name) in ("SQL_COMMENT", "C_COMMENT")


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1
