"""What the database says about a migration's plan (monitor.lockplan.facts), read in the
monitor's read-only, time-boxed sessions from the catalogs, pg_locks, pg_stat_activity and the
statistics: none of it opens a table, so none of it waits behind a lock on one."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.db import sql
from monitor.db.pool import Database, Session
from monitor.lockplan.analysis import Question
from monitor.lockplan.facts import Blocker, Facts, TableFacts
from monitor.lockplan.modes import strongest
from monitor.lockplan.reading import Statement


def gather(db: Database, schema: str, statements: Sequence[Statement]) -> Facts:
    """Every fact the plan of these statements uses, in one read-only session. The app's
    activity on each table is its average since the statistics were reset: the counters are
    flushed by each backend at most once a second (PostgreSQL 15+), so a sample short enough
    to keep a plan within a second would read noise."""
    tables = sorted({t for s in statements for t in s.analysis.locks if "." not in t})
    questions = [q for s in statements for q in s.analysis.questions]
    with db.session() as session:
        found = session.rows(sql.query("plan_tables"), {"schema": schema, "tables": tables})
        timezone = str(session.row(sql.query("plan_timezone"))["timezone"])
        answers = answer_all(session, schema, questions)
        blockers = find_blockers(session, schema, planned_modes(statements), db)
        prisma = prisma_holder(session)
    facts = {
        r["table_name"]: TableFacts(
            float(r["rows"]),
            int(r["bytes"]),
            float(r["operations"]) / r["seconds"] if r["seconds"] and r["seconds"] > 0 else None,
        )
        for r in found
    }
    return Facts(facts, blockers, prisma, timezone, answers)


def planned_modes(statements: Sequence[Statement]) -> dict[str, str]:
    """Each table's strongest planned mode (what the migration will wait for there)."""
    modes: dict[str, list[str]] = {}
    for statement in statements:
        for table, mode in statement.analysis.locks.items():
            modes.setdefault(table, []).append(mode)
    return {table: strongest(found) for table, found in modes.items() if "." not in table}


def find_blockers(
    session: Session, schema: str, modes: dict[str, str], db: Database
) -> tuple[Blocker, ...]:
    """The sessions that would make each planned lock wait now."""
    if not modes:
        return ()
    params = {
        "schema": schema,
        "tables": list(modes),
        "modes": list(modes.values()),
        **db.own_sessions(),
    }
    return tuple(
        Blocker(
            pid=int(r["pid"]),
            state=str(r["state"]),
            transaction_seconds=r["transaction_seconds"],
            table=str(r["table_name"]),
            mode=str(r["mode"]),
            granted=bool(r["granted"]),
            application_name=str(r["application_name"]),
        )
        for r in session.rows(sql.query("plan_blockers"), params)
    )


def prisma_holder(session: Session) -> Blocker | None:
    """The session holding Prisma Migrate's advisory lock, if any."""
    rows = session.rows(sql.query("prisma_migrate_holder"))
    if not rows:
        return None
    row = rows[0]
    return Blocker(
        pid=int(row["pid"]),
        state=str(row["state"]),
        transaction_seconds=row["transaction_seconds"],
        table="",
        mode="advisory 72707369",
        application_name=str(row["application_name"]),
    )


def answer_all(
    session: Session, schema: str, questions: Sequence[Question]
) -> dict[Question, tuple[str, ...]]:
    """The catalogs' answer to each question (those without one are left out)."""
    asked = [(q, part) for q in questions for part in parts(q)]
    if not asked:
        return {}
    params = {
        "schema": schema,
        "kinds": [q.what for q, _ in asked],
        "a": [a for _, (a, _) in asked],
        "b": [b for _, (_, b) in asked],
    }
    rows = session.rows(sql.query("plan_answers"), params)
    found: dict[Question, list[str]] = {}
    for (question, _), row in zip(asked, rows, strict=True):
        if row["answer"] is not None:
            found.setdefault(question, []).append(str(row["answer"]))
    return {q: shaped(q, values) for q, values in found.items()}


def parts(question: Question) -> list[tuple[str, str]]:
    """The (a, b) rows a question asks (a volatility question, one per function name)."""
    if question.what == "volatile":
        return [(name, "") for name in question.about]
    if question.what in ("column_type", "constraint_table"):
        return [(question.about[0], question.about[1])]
    return [(question.about[0], "")]


def shaped(question: Question, values: list[str]) -> tuple[str, ...]:
    """An answer as the plan reads it (monitor.lockplan.plan.apply)."""
    if question.what == "volatile":
        return ("yes" if "yes" in values else "no",)
    if question.what == "constraint_table":
        kind, _, referenced = values[0].partition(":")
        return (kind, referenced)
    if question.what == "references":
        return tuple(name for name in values[0].split(":") if name)
    return (values[0],)
