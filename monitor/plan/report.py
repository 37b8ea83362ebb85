"""The lock plan for pipelines (JSON, whose keys CONTRACT-fixed names lead) and for people."""

from __future__ import annotations

import json
from typing import Any

from monitor.lockplan.facts import Blocker
from monitor.lockplan.modes import spoken
from monitor.lockplan.plan import Plan, Planned


def as_json(plan: Plan, where: str) -> str:
    """The plan as one JSON document."""
    facts = plan.facts
    document: dict[str, Any] = {
        "migration": plan.migration,
        "sql_file": where,
        "in_transaction": plan.in_transaction,
        "sets_lock_timeout": plan.sets_lock_timeout,
        "sets_statement_timeout": plan.sets_statement_timeout,
        "objects": [{"kind": o.kind, "name": o.name} for o in plan.objects],
        "statements": [statement(s) for s in plan.statements],
        "blockers": [blocker(b) for b in plan.blockers],
        "result": plan.result,
        "problems": list(plan.problems),
        "database": None
        if facts is None
        else {
            "timezone": facts.timezone,
            "tables": {
                name: {"rows": t.rows, "bytes": t.bytes, "operations_per_second": t.per_second}
                for name, t in sorted(facts.tables.items())
            },
            "prisma_migrate_lock": None
            if facts.prisma_lock is None
            else blocker(facts.prisma_lock),
        },
    }
    return json.dumps(document, indent=2)


def statement(planned: Planned) -> dict[str, Any]:
    """One statement of the JSON document."""
    return {
        "index": planned.index,
        "line": planned.line,
        "text": planned.text,
        "kind": planned.kind,
        "locks": [{"table": table, "mode": mode} for table, mode in planned.locks],
        "rewrites": list(planned.rewrites),
        "scans": list(planned.scans),
        "outside_transaction": planned.outside_transaction,
        "held_to": planned.held_to,
        "risk": "; ".join(planned.risks),
        "advice": "; ".join(planned.advice),
        "risky": planned.risky,
        "notes": list(planned.notes),
    }


def blocker(found: Blocker) -> dict[str, Any]:
    """One blocking session."""
    seconds = found.transaction_seconds
    return {
        "pid": found.pid,
        "state": found.state,
        "transaction_seconds": None if seconds is None else round(seconds, 3),
        "table": found.table,
        "mode": found.mode,
        "granted": found.granted,
        "application_name": found.application_name,
    }


def as_text(plan: Plan, where: str) -> str:
    """The plan for people: the verdict, the file's transaction and timeouts, the database's
    facts, the blockers, then each statement with its locks, risks and advice."""
    lines = [f"lock plan of {plan.migration} ({where}): {plan.result.upper()}", *header(plan), ""]
    for planned in plan.statements:
        lines += statement_lines(planned)
    return "\n".join(lines).rstrip() + "\n"


def header(plan: Plan) -> list[str]:
    """The file-wide lines."""
    last = plan.statements[-1].index if plan.statements else 0
    transaction = (
        f"runs as one transaction (as Prisma runs it): every lock is held to statement {last}"
        if plan.in_transaction
        else "has transaction control of its own: each lock is held to its transaction's end"
    )
    timeouts = ", ".join(
        f"{name} {'set' if done else 'not set'}"
        for name, done in (
            ("lock_timeout", plan.sets_lock_timeout),
            ("statement_timeout", plan.sets_statement_timeout),
        )
    )
    lines = [f"{transaction}; {timeouts}", *plan.problems]
    facts = plan.facts
    if facts is None:
        return [*lines, "no database: sizes, blockers and types not read (--database-url)"]
    for name, table in sorted(facts.tables.items()):
        rate = (
            ""
            if table.per_second is None
            else f", {table.per_second:,.1f} operations/s on average since the statistics reset"
        )
        lines.append(f"{name}: {table.rows:,.0f} rows, {table.bytes / 2**20:.1f} MiB{rate}")
    blockers = [blocker_line(b) for b in plan.blockers] or ["blockers: none now"]
    return [*lines, *blockers]


def blocker_line(found: Blocker) -> str:
    """One blocking session in words."""
    return f"BLOCKER: {found.words()}"


def statement_lines(planned: Planned) -> list[str]:
    """One statement: its text's first line, locks, then its risks and advice."""
    first = planned.text.splitlines()[0] if planned.text else ""
    locks = ", ".join(f"{spoken(mode)} on {table}" for table, mode in planned.locks) or "no table"
    lines = [f"{planned.index:>3}  line {planned.line}: {first}", f"     locks {locks}"]
    if planned.rewrites:
        lines.append(f"     rewrites {', '.join(planned.rewrites)}")
    lines += [f"     risk: {risk}" for risk in planned.risks]
    lines += [f"     advice: {advice}" for advice in planned.advice]
    lines += [f"     note: {note}" for note in planned.notes]
    return lines
