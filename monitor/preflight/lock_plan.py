"""Preflight's `lock_plan`: the migration's lock plan against the database now. A session that
would block one of its locks, or one holding Prisma Migrate's lock, fails it by pid; the file's
own risks (no lock_timeout, a rewrite) are `rollout-monitor plan`'s to report, counted here."""

from __future__ import annotations

from monitor.config.migration import sql_of
from monitor.config.schema import Config
from monitor.db.catalog import gather
from monitor.db.pool import Database
from monitor.lockplan.facts import Blocker
from monitor.lockplan.plan import Plan, build
from monitor.lockplan.reading import SqlError, read_statements
from monitor.preflight.result import CheckResult, failed, passed

NAME = "lock_plan"
SHOWN_BLOCKERS = 3  # named in the detail; the JSON's observed lists them all


def check_lock_plan(db: Database, config: Config) -> CheckResult:
    """Plan the configured migration's SQL with what the database says now."""
    where, text = sql_of(config.migration.sql_file)
    try:
        statements = read_statements(text)
    except SqlError as error:
        return failed(NAME, f"{where}:{error.line}:{error.column}: {error.message}")
    facts = gather(db, config.app.schema_name, statements)
    plan = build(config.migration.name, statements, facts)
    observed = {
        "result": plan.result,
        "statements": len(plan.statements),
        "risky_statements": sum(1 for s in plan.statements if s.risky),
        "blockers": [blocked(plan, b) for b in plan.blockers],
        "prisma_lock_pid": None if facts.prisma_lock is None else facts.prisma_lock.pid,
    }
    problems = [waits_for(plan, b) for b in plan.blockers[:SHOWN_BLOCKERS]]
    if len(plan.blockers) > SHOWN_BLOCKERS:
        problems.append(f"{len(plan.blockers) - SHOWN_BLOCKERS} more")
    if facts.prisma_lock is not None:
        holder = facts.prisma_lock
        problems.insert(
            0,
            f"backend {holder.pid} ({holder.state or 'unknown state'}) holds Prisma Migrate's"
            " lock: another `prisma migrate` is running",
        )
    if problems:
        return failed(NAME, "; ".join(problems), **observed)
    tables = sorted({t for s in plan.statements for t, _ in s.locks})
    risky = observed["risky_statements"]
    own = f"; {risky} risky in the file itself (rollout-monitor plan)" if risky else ""
    return passed(
        NAME,
        f"no session would block its {len(plan.statements)} statements' locks on"
        f" {', '.join(tables) or 'no table'}, and Prisma's lock is free{own}",
        **observed,
    )


def waits_for(plan: Plan, blocker: Blocker) -> str:
    """The blocker, and the statement that would wait for it."""
    first = plan.first_to_wait(blocker)
    who = f"statement {first.index} (line {first.line})" if first else "the migration"
    return f"{blocker.words()}: {who} would wait for it"


def blocked(plan: Plan, blocker: Blocker) -> dict[str, object]:
    first = plan.first_to_wait(blocker)
    return {
        "pid": blocker.pid,
        "state": blocker.state,
        "transaction_seconds": blocker.transaction_seconds,
        "table": blocker.table,
        "mode": blocker.mode,
        "statement": None if first is None else first.index,
    }
