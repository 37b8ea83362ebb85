"""The plan's pre-deployment checklist as checks: each one pass or fail with a one-line detail.

Every check is time-boxed by settings that already exist (the database's connect, acquire and
statement timeouts; the callback's timeout; preflight.backup_timeout), and one failing check never
stops the others. Nothing here writes: database sessions are the monitor's read-only ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from prometheus_client.metrics_core import Metric
from psycopg import sql as pgsql
from psycopg_pool import PoolTimeout

from monitor.checks.schema import SchemaCheck
from monitor.config.schema import Config, PreflightSettings
from monitor.db import sql
from monitor.db.pool import Database, Session
from monitor.observe.migration import MigrationTracker
from monitor.observe.probe import CallbackProbe
from monitor.preflight.backup import Tables, check_recent, check_restorable, find_backup
from monitor.preflight.lock_plan import check_lock_plan
from monitor.preflight.result import CheckResult, failed, passed

BACKUP_CHECKS = ("backup_present", "backup_recent", "backup_restorable")


def run_checks(
    config: Config,
    settings: PreflightSettings,
    redact: Callable[[str], str],
    clock: Callable[[], float] = time.time,
) -> list[CheckResult]:
    """Every check, in the plan's order; a check that raises fails with the error's first line."""
    db = Database(config.database, config.database_url, lambda _up: None)
    db.open()
    try:
        reachable = reach_database(db, redact)
        checks = DatabaseChecks(db, config, settings)
        results = [reachable, _after(reachable, "schema", checks.schema, redact)]
        results += _guarded_backup_checks(config, settings, clock(), redact)
        results += [
            _after(reachable, "auth_flows_in_flight", checks.in_flight, redact),
            _after(reachable, "active_sessions", checks.sessions, redact),
            _after(reachable, "lock_plan", lambda: check_lock_plan(db, config), redact),
        ]
    finally:
        db.close()
    results.append(_guarded("callback", lambda: check_callback(config, redact), redact))
    return results


def reach_database(db: Database, redact: Callable[[str], str]) -> CheckResult:
    """The database check, with the pool's reason when it could not connect."""
    reasons = ConnectionErrors()
    with reasons.listening():
        result = _guarded("database", lambda: check_database(db), redact)
    return reasons.explain(result, redact)


class ConnectionErrors(logging.Handler):
    """Why the pool could not connect: psycopg_pool logs it, its PoolTimeout does not say."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the latest connection error, without the pool's name in front."""
        message = record.getMessage()
        if message.startswith("error connecting in "):
            self.last = message.split(": ", 1)[-1].splitlines()[0]

    @contextmanager
    def listening(self) -> Iterator[None]:
        """Collect psycopg_pool's warnings for the duration of the block."""
        logger = logging.getLogger("psycopg.pool")
        logger.addHandler(self)
        try:
            yield
        finally:
            logger.removeHandler(self)

    def explain(self, result: CheckResult, redact: Callable[[str], str]) -> CheckResult:
        """The database check's failure with the connection error added, when there was one."""
        if result.passed or self.last is None:
            return result
        return failed(result.check, redact(f"{result.detail}: {self.last}"))


def _guarded(
    name: str, check: Callable[[], CheckResult], redact: Callable[[str], str]
) -> CheckResult:
    """The check's result, or a failure naming what it raised (never a traceback)."""
    try:
        return check()
    except PoolTimeout:
        return failed(name, "no database connection within database.acquire_timeout")
    except Exception as error:  # one check's surprise must not stop the others
        return failed(name, _first_line(error, redact))


def _first_line(error: Exception, redact: Callable[[str], str]) -> str:
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return redact(f"{type(error).__name__}: {first}")


def _guarded_backup_checks(
    config: Config, settings: PreflightSettings, now: float, redact: Callable[[str], str]
) -> list[CheckResult]:
    """The three backup checks; a surprise (a file vanishing midway) fails them, never the run."""
    try:
        return backup_checks(config, settings, now)
    except Exception as error:  # one check's surprise must not stop the others
        detail = _first_line(error, redact)
        return [failed(name, detail) for name in BACKUP_CHECKS]


def _after(
    database: CheckResult,
    name: str,
    check: Callable[[], CheckResult],
    redact: Callable[[str], str],
) -> CheckResult:
    """Run a database check only when the database answered (no second wait for a dead one)."""
    if not database.passed:
        return failed(name, "not checked: the database is not reachable (see database)")
    return _guarded(name, check, redact)


def check_database(db: Database) -> CheckResult:
    """The plan's `SELECT version()`, through a read-only, time-boxed session."""
    with db.session() as session:
        version = session.row(sql.query("server_version"))["version"]
        where = session.row(sql.query("preflight_where"))
    detail = f"PostgreSQL {version}, database {where['database']} as {where['role']}"
    return passed("database", detail, server_version=version, database=where["database"])


class DatabaseChecks:
    """The checks that read the watched database: schema state and application state."""

    def __init__(self, db: Database, config: Config, settings: PreflightSettings) -> None:
        self._db = db
        self._config = config
        self._settings = settings
        self._schema = config.app.schema_name

    def schema(self) -> CheckResult:
        """Pending by the schema check's own rules, and the tables the migration builds on."""
        tracker = MigrationTracker()
        config = self._config
        families = SchemaCheck(
            self._db, config.checks.schema_check, config.app, config.migration, tracker=tracker
        ).run()
        state = tracker.current().state
        objects = schema_objects(families)
        present = [name for name, exists in objects.items() if exists]
        total = len(objects)
        with self._db.session() as session:
            missing = self._missing_columns(session)
        observed = {"state": state, "objects_present": present, "missing_columns": missing}
        if state != "pending":
            return failed("schema", describe_state(state, present, total), **observed)
        if missing:
            return failed("schema", f"pending, but missing: {', '.join(missing)}", **observed)
        tables = ", ".join(self._expected_columns())
        return passed(
            "schema",
            f"pending: none of the migration's {total} objects exist; {tables} have the "
            "columns it builds on",
            **observed,
        )

    def _expected_columns(self) -> dict[str, tuple[str, ...]]:
        """Per table, the columns the migration and the monitor rely on before it runs."""
        users, tokens = self._config.app.users, self._config.app.tokens
        return {
            users.table: (users.id, users.threads_user_id, users.threads_username),
            tokens.table: (tokens.user_id, tokens.expires_at),
        }

    def _missing_columns(self, session: Session) -> list[str]:
        missing = []
        for table, columns in self._expected_columns().items():
            exists = {"schema": self._schema, "table": table}
            if not session.row(sql.query("table_exists"), exists)["present"]:
                missing.append(f"table {self._schema}.{table}")
                continue
            have = session.existing_columns(self._schema, table, columns)
            missing += [f"{table}.{column}" for column in columns if column not in have]
        return missing

    def in_flight(self) -> CheckResult:
        """Sessions in the middle of writing users or tokens: at most preflight.in_flight_max."""
        count = self._count("in_flight_query", self._default_in_flight())
        limit = self._settings.in_flight_max
        observed = {"count": count, "max": limit}
        what = f"{count} session(s) with a transaction open on the users or token table"
        if count > limit:
            return failed("auth_flows_in_flight", f"{what} (allowed: {limit})", **observed)
        return passed("auth_flows_in_flight", f"{what} (allowed: {limit})", **observed)

    def sessions(self) -> CheckResult:
        """Users signed in (informational; fails only above preflight.active_sessions_max)."""
        count = self._count("active_sessions_query", self._default_sessions())
        limit = self._settings.active_sessions_max
        observed = {"count": count, "max": limit}
        what = f"{count} active session(s)"
        if limit is not None and count > limit:
            return failed("active_sessions", f"{what} (allowed: {limit})", **observed)
        bound = "" if limit is None else f" (allowed: {limit})"
        return passed("active_sessions", f"{what}{bound}", **observed)

    def _default_in_flight(self) -> tuple[pgsql.Composed, dict[str, Any]]:
        params = {
            "schema": self._schema,
            "tables": [self._config.app.users.table, self._config.app.tokens.table],
            "own_application_name": self._config.database.application_name,
            "monitor_statement_seconds": self._config.database.statement_timeout,
            **self._db.own_sessions(),
        }
        return sql.query("preflight_in_flight"), params

    def _default_sessions(self) -> tuple[pgsql.Composed, dict[str, Any]]:
        tokens = self._config.app.tokens
        query = sql.query(
            "preflight_active_sessions",
            tokens=sql.table(self._schema, tokens.table),
            user_id=sql.column(tokens.user_id),
            expires_at=sql.column(tokens.expires_at),
        )
        return query, {}

    def _count(self, key: str, default: tuple[pgsql.Composed, dict[str, Any]]) -> int:
        """The one number the configured query (or the default) returns."""
        custom = getattr(self._settings, key)
        query, params = (pgsql.Composed([pgsql.SQL(custom)]), None) if custom else default
        with self._db.session() as session:
            rows = session.rows(query, params)
        return one_number(f"preflight.{key}" if custom else "built-in query", rows)


class NotANumber(Exception):
    """A count query returned something other than one row holding one number."""


def one_number(origin: str, rows: list[dict[str, Any]]) -> int:
    """The single integer in the single row; NotANumber naming the query otherwise."""
    if len(rows) != 1 or len(rows[0]) != 1:
        shape = f"{len(rows)} rows" if len(rows) != 1 else f"{len(rows[0])} columns"
        raise NotANumber(f"{origin}: expected one row with one column, got {shape}")
    value = next(iter(rows[0].values()))
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value % 1:
        raise NotANumber(f"{origin}: expected a whole number, got {value!r}")
    return int(value)


def schema_objects(families: Sequence[Metric]) -> dict[str, bool]:
    """Each object of the migration the schema check looked for, and whether it exists."""
    return {
        sample.labels["name"]: sample.value == 1
        for family in families
        if family.name == "rollout_schema_object_present"
        for sample in family.samples
    }


def describe_state(state: str, present: list[str], total: int) -> str:
    """Why a state other than pending fails, naming the objects that exist."""
    if state == "applied":
        return f"applied: all {total} of the migration's objects exist already"
    if state == "rolled_back":
        return "rolled_back: _prisma_migrations records it finished, and none of its objects exist"
    return f"{state}: {len(present)} of {total} objects exist: {', '.join(present)}"


def backup_checks(config: Config, settings: PreflightSettings, now: float) -> list[CheckResult]:
    """Present, recent, and readable to the end with the tables in it."""
    backup, present = find_backup(settings.backup)
    if backup is None:
        why = f"not checked: {present.detail}"
        return [present, failed("backup_recent", why), failed("backup_restorable", why)]
    tables = Tables(config.app.schema_name, (config.app.users.table, config.app.tokens.table))
    return [
        present,
        check_recent(backup, settings.backup_max_age, now),
        check_restorable(backup, settings, tables),
    ]


def check_callback(config: Config, redact: Callable[[str], str]) -> CheckResult:
    """One probe of the OAuth callback, as the daemon sends it: pass on a valid answer."""
    callback = config.checks.callback
    result = CallbackProbe(callback).probe()
    target = redact(f"{callback.method} {callback.url}")
    took = f"{result.duration * 1000:.0f} ms"
    observed = {"outcome": result.outcome, "status": result.status}
    if result.outcome == "success":
        return passed("callback", f"{target}: HTTP {result.status} in {took}", **observed)
    answer = f"HTTP {result.status}" if result.status is not None else redact(result.detail)
    return failed("callback", f"{target}: {result.outcome} ({answer}) after {took}", **observed)
