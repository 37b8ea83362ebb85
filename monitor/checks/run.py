"""The migration's run, live: which of its statements it runs or waits on, how long it has
waited for its lock and how old the oldest transaction blocking it is, how far an index build
is (Risk 1, as it happens). Its session is found by Prisma's advisory lock, else by its query
text; where it is comes from the locks it holds and awaits (monitor.lockplan.progress)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from prometheus_client.metrics_core import Metric

from monitor.checks.base import CheckFailed
from monitor.checks.registry import Parts, register
from monitor.config.checks import CheckSettings
from monitor.config.migration import sql_of
from monitor.config.schema import MigrationConfig
from monitor.config.values import FieldProblem
from monitor.db import sql
from monitor.db.pool import Database, Row
from monitor.lockplan.plan import Plan, read_plan
from monitor.lockplan.progress import Place, Seen, locate
from monitor.lockplan.reading import SqlError
from monitor.observe.metrics import gauge, labelled_gauge, one_hot

FOUND_BY = ("prisma_lock", "query_text", "none")
# pg_stat_activity.query keeps track_activity_query_size bytes (1024 by default): the start of
# the file matched against the session's query, whitespace folded on both sides.
PREFIX_BYTES = 512


@dataclass(frozen=True)
class Look:
    """One look at the migration's session."""

    pid: int
    found_by: str
    seen: Seen
    waited: float  # seconds waiting for the lock in seen.waiting, else 0
    blocker_seconds: float  # the oldest transaction among the sessions blocking it, else 0
    progress: float | None  # of the index being built, in its phase
    phase: str = ""  # of the index build, as pg_stat_progress_create_index names it


def query_prefix(text: str) -> str:
    """The start of the migration's SQL as pg_stat_activity shows it, whitespace folded, cut
    well inside track_activity_query_size and on a character boundary."""
    folded = re.sub(r"\s+", " ", text).strip()
    return folded.encode("utf-8")[:PREFIX_BYTES].decode("utf-8", errors="ignore")


def look(rows: list[Row], pid: int, found_by: str) -> Look:
    """What migration_locks.sql says of the session."""
    held, waiting, table, phase = set(), None, None, ""
    waited = blocker = 0.0
    progress = None
    created, newest = 0, None
    for row in rows:
        fact = row["fact"]
        if fact == "blocker":
            blocker = float(row["seconds"] or 0.0)
        elif fact == "created":
            created, newest = int(row["created"]), row["newest"]
        elif fact == "build":
            table, phase, progress = row["table_name"], str(row["phase"]), float(row["ratio"])
        elif row["granted"]:
            held.add((row["table_name"], row["mode"]))
        else:
            waiting, waited = (row["table_name"], row["mode"]), float(row["seconds"] or 0.0)
    seen = Seen(frozenset(held), waiting, table, created, None if newest is None else int(newest))
    return Look(pid, found_by, seen, waited, blocker, progress, phase)


class MigrationRunCheck:
    """Reads pg_locks, pg_stat_activity and pg_stat_progress_create_index: no table is opened,
    so it never queues behind the migration it watches."""

    name = "migration_run"

    def __init__(
        self, db: Database, settings: CheckSettings, migration: MigrationConfig, schema: str
    ) -> None:
        self._db = db
        self._migration = migration
        self._schema = schema
        self.interval = settings.interval
        self._plan: Plan | None = None
        self._prefix = ""
        self._place: tuple[int, Place] | None = None  # (pid, where it was) at the last look

    def _read_plan(self) -> Plan:
        """The migration's plan, read at the first run (the configuration checked it parses)."""
        if self._plan is None:
            try:
                _, text = sql_of(self._migration.sql_file)
                self._plan = unqualified(read_plan(self._migration.name, text), self._schema)
            except (FieldProblem, SqlError) as problem:
                raise CheckFailed(f"the migration's SQL: {problem}") from None
            self._prefix = query_prefix(text)
        return self._plan

    def run(self) -> Sequence[Metric]:
        """Find the session, place it in the plan, and export where it is."""
        plan = self._read_plan()
        with self._db.session() as session:
            found = session.rows(sql.query("migration_session"), {"prefix": self._prefix})
            if not found:
                self._place = None
                return families(plan, None, None)
            pid, found_by = int(found[0]["pid"]), str(found[0]["found_by"])
            rows = session.rows(sql.query("migration_locks"), {"pid": pid, "schema": self._schema})
        seen = look(rows, pid, found_by)
        before = self._place[1] if self._place and self._place[0] == pid else None
        place = locate(plan.statements, seen.seen, before)
        self._place = (pid, place)
        return families(plan, seen, place)


def unqualified(plan: Plan, schema: str) -> Plan:
    """The plan with `schema.table` written `table` for the app's schema, as the locks query
    names them."""
    prefix = f"{schema}."

    def bare(locks: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple((table.removeprefix(prefix), mode) for table, mode in locks)

    statements = tuple(replace(s, locks=bare(s.locks)) for s in plan.statements)
    return replace(plan, statements=statements)


def index_name(plan: Plan, place: Place) -> str:
    """The index the statement at `place` builds, as the plan names it."""
    created = plan.statements[place.statement - 1].creates
    return next((c.name for c in created if c.kind == "index"), "")


def families(plan: Plan, seen: Look | None, place: Place | None) -> list[Metric]:
    """The run's families: all zero while no migration session is found."""
    statement = place.statement if place is not None else 0
    found: list[Metric] = [
        one_hot(
            "rollout_migration_session_found",
            "1 for how the migration's session was found (Prisma's advisory lock, its query"
            " text), or none.",
            "by",
            FOUND_BY,
            seen.found_by if seen is not None else "none",
        ),
        gauge(
            "rollout_migration_statement",
            "The migration's statement (1-based, in file order) its session runs or waits on;"
            " 0 while no session of it is found.",
            float(statement),
        ),
        gauge(
            "rollout_migration_lock_wait_seconds",
            "How long the migration's session has waited for its lock; 0 when not waiting.",
            seen.waited if seen is not None else 0.0,
        ),
        gauge(
            "rollout_migration_blocker_transaction_seconds",
            "Age of the oldest transaction among the sessions blocking the migration; 0 when"
            " nothing blocks it.",
            seen.blocker_seconds if seen is not None else 0.0,
        ),
    ]
    if seen is None or place is None:
        return found
    planned = plan.statements[place.statement - 1]
    table, mode = seen.seen.waiting or ("", "")
    found.append(
        labelled_gauge(
            "rollout_migration_statement_info",
            "The statement the migration runs or waits on: its number, line and kind, and the"
            " lock it waits for (table and mode, empty when not waiting).",
            ["statement", "line", "kind", "table", "mode"],
            {(str(planned.index), str(planned.line), planned.kind, table, mode): 1.0},
        )
    )
    if seen.progress is not None:
        found.append(
            labelled_gauge(
                "rollout_migration_index_build_progress_ratio",
                "How far the index the migration builds is through its phase: the table's"
                " blocks while scanning it, the tuples while loading them.",
                ["index", "phase"],
                {(index_name(plan, place), seen.phase): seen.progress},
            )
        )
    return found


@register("migration_run", order=1)
def _build(settings: CheckSettings, parts: Parts) -> MigrationRunCheck:
    return MigrationRunCheck(parts.db, settings, parts.migration, parts.app.schema_name)
