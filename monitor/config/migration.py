"""The migration's objects from its own SQL (monitor.lockplan): what the configuration watches
when it lists none, and what a list it gives must agree with."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from monitor.assets import asset
from monitor.config.files import FileProblem, read_bounded
from monitor.config.values import FieldProblem
from monitor.lockplan.analysis import DbObject
from monitor.lockplan.plan import objects_of
from monitor.lockplan.reading import SqlError, read_statements

MAX_SQL_BYTES = 4 << 20  # a migration.sql; Prisma's largest are a few hundred KiB
BUNDLED = "sql/migration_001.sql"


def sql_of(path: Path | None) -> tuple[str, str]:
    """(where, text) of the migration's SQL: the file, or the bundled SQL of 001."""
    if path is None:
        return f"the bundled {Path(BUNDLED).name}", asset(BUNDLED).read_text(encoding="utf-8")
    try:
        raw = read_bounded(path, MAX_SQL_BYTES, "migration's SQL")
    except FileProblem as problem:
        raise FieldProblem("sql_file", str(problem)) from None
    try:
        return str(path), raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FieldProblem("sql_file", f"{path}: not UTF-8 text") from None


def created(path: Path | None) -> tuple[str, tuple[DbObject, ...]]:
    """(where, the objects its SQL creates); FieldProblem naming the file, line and column
    when it does not parse."""
    where, text = sql_of(path)
    try:
        return where, objects_of(read_statements(text))
    except SqlError as error:
        raise FieldProblem(
            "sql_file", f"{where}:{error.line}:{error.column}: {error.message}"
        ) from None


def as_settings(objects: Iterable[DbObject]) -> dict[str, Any]:
    """The objects as `migration.objects` lists them."""
    found: dict[str, list[Any]] = {}
    for item in objects:
        key = PLURALS[item.kind]
        if item.kind in ("trigger", "constraint"):
            found.setdefault(key, []).append({"name": item.name, "table": item.table})
        else:
            found.setdefault(key, []).append(item.name)
    return found


PLURALS = {
    "column": "columns",
    "index": "indexes",
    "trigger": "triggers",
    "function": "functions",
    "table": "tables",
    "constraint": "constraints",
}


def difference(listed: set[tuple[str, str]], made: set[tuple[str, str]], where: str) -> str | None:
    """What a configured list and the SQL disagree on, in one line; None when they agree."""
    if listed == made:
        return None
    parts = []
    for words, names in (("not listed", made - listed), ("listed, not created", listed - made)):
        if names:
            shown = [f"{kind} {name}" for kind, name in sorted(names)]
            more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
            parts.append(f"{words}: {', '.join(shown[:3])}{more}")
    return f"differs from {where}: {'; '.join(parts)}"
