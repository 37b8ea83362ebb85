"""The pool, and the only way checks touch the database: short, read-only, time-boxed sessions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from monitor.config.files import FileProblem, read_bounded
from monitor.config.schema import DatabaseConfig
from monitor.config.urls import split_prisma_parameters
from monitor.db import sql as queries

Row = dict[str, Any]
# SQLSTATE classes that mean "the server is gone or refusing", not "this query failed".
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")
# psycopg_pool retries a failed connection after 1, 2, 4, 8... s until reconnect_timeout, and a
# new attempt starts only when that one gives up and a check asks again. With 60 s the monitor
# stayed blind for up to ~30 s after the server came back. With 1 s, and a fresh attempt at once
# while checks are waiting (_retry_while_waited_for), a server that is down sees about one
# connection attempt a second while checks wait (none otherwise), and a waiting check gets its
# connection within a second of the server coming back.
RECONNECT_TIMEOUT = 1.0
# How long close() waits for the pool's workers (one may be stuck connecting) before it fails
# the checks still waiting for a connection: shutdown and reload stay prompt.
CLOSE_TIMEOUT = 1.0


# A password is a line; a file far larger is a mistake (or /dev/zero) and is refused unread.
MAX_PASSWORD_BYTES = 64 * 1024


class PasswordFileError(Exception):
    """The database password file could not be read; the message names the file."""


def read_password(path: Path) -> str:
    """The password in the file, without one trailing newline (as `echo pw > file` leaves it)."""
    try:
        text = read_bounded(path, MAX_PASSWORD_BYTES, "password file").decode("utf-8")
    except FileProblem as problem:
        raise PasswordFileError(f"database.password_file: {problem}") from None
    except UnicodeDecodeError:
        raise PasswordFileError(f"database.password_file: {path}: not UTF-8 text") from None
    return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")


class TableLocked(Exception):
    """An ACCESS EXCLUSIVE lock is held or awaited on a table a check was about to read."""

    def __init__(self, tables: Sequence[str]) -> None:
        super().__init__(f"ACCESS EXCLUSIVE lock held or awaited on {', '.join(tables)}")
        self.tables = tuple(tables)


def is_connection_failure(error: BaseException) -> bool:
    """Whether an error means the database could not be reached, rather than a query failing."""
    if isinstance(error, PoolTimeout | PoolClosed | psycopg.InterfaceError):
        return True
    if isinstance(error, psycopg.OperationalError):
        state = error.sqlstate
        return state is None or state.startswith(_CONNECTION_STATES)
    return False


def setting_ms(seconds: float) -> str:
    """A duration as Postgres settings take it, in whole milliseconds."""
    return str(max(1, round(seconds * 1000)))


class Session:
    """One read-only transaction with lock_timeout and statement_timeout set."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def rows(self, query: sql.Composed, params: Mapping[str, Any] | None = None) -> list[Row]:
        """All rows of a query, each as a dict."""
        # stream() always uses the extended protocol, one statement per query. execute() without
        # parameters uses the simple one, where a configured `SELECT 1; COMMIT; DELETE ...` runs
        # all three and the DELETE escapes the read-only transaction.
        with self._conn.cursor(row_factory=dict_row) as cursor:
            return list(cursor.stream(query, params))

    def row(self, query: sql.Composed, params: Mapping[str, Any] | None = None) -> Row:
        """The single row of a query that always returns one."""
        return self.rows(query, params)[0]

    def cost(self, query: sql.Composed) -> float:
        """The planner's estimated total cost of the query (EXPLAIN without ANALYZE: not run)."""
        plan = self.row(sql.SQL("EXPLAIN (FORMAT JSON) ") + query)["QUERY PLAN"]
        return float(plan[0]["Plan"]["Total Cost"])

    def locked_tables(self, schema: str, tables: Sequence[str]) -> list[str]:
        """Those of these tables on which an ACCESS EXCLUSIVE lock is held or awaited (DDL)."""
        params = {"schema": schema, "tables": list(tables)}
        return [row["table_name"] for row in self.rows(queries.query("exclusive_locks"), params)]

    def guard(self, schema: str, tables: Sequence[str]) -> None:
        """Raise TableLocked rather than queue behind a DDL lock on any of these tables."""
        locked = self.locked_tables(schema, tables)
        if locked:
            raise TableLocked(locked)

    def existing_columns(self, schema: str, table: str, columns: Sequence[str]) -> frozenset[str]:
        """Which of these columns the table has now (from the catalog: no lock on the table)."""
        params = {"schema": schema, "table": table, "columns": list(columns)}
        rows = self.rows(queries.query("existing_columns"), params)
        return frozenset(row["column_name"] for row in rows)


def _retry_while_waited_for(pool: ConnectionPool[Any]) -> None:
    """A reconnection attempt gave up: start another at once if a check is waiting."""
    if pool.get_stats().get("requests_waiting", 0) and not pool.closed:
        pool.check()


class _LatestReport:
    """Which session last reported: a check that waited out acquire_timeout while the server
    was down must not overwrite the success of a check that started after it came back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = -float("inf")

    def newer_than(self, started: float) -> bool:
        """Record a session that started at this time; whether none that started later has."""
        with self._lock:
            if started < self._started:
                return False
            self._started = started
            return True


class OwnSessions:
    """The (backend PID, backend start) of every connection this pool opened, newest kept."""

    KEPT = 64  # the pool holds at most 10; closed ones match nothing and age out

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, datetime] = {}

    def add(self, conn: psycopg.Connection[Any]) -> None:
        """Note a new connection (in the pool's configure callback, before any use)."""
        row = conn.execute(queries.query("own_session")).fetchone()
        conn.rollback()
        if row is None:
            return
        with self._lock:
            self._seen[int(row[0])] = row[1]
            while len(self._seen) > self.KEPT:
                del self._seen[next(iter(self._seen))]

    def params(self) -> dict[str, list[Any]]:
        """own_pids and own_starts, for `(pid, backend_start) IN (unnest(...))`."""
        with self._lock:
            return {"own_pids": list(self._seen), "own_starts": list(self._seen.values())}


class Database:
    """A small, capped pool of read-only connections tagged with application_name."""

    def __init__(
        self, settings: DatabaseConfig, url: str, report_up: Callable[[bool], None]
    ) -> None:
        self._settings = settings
        self._report_up = report_up
        self._reported = _LatestReport()
        self._own = OwnSessions()
        kwargs: dict[str, Any] = {
            "application_name": settings.application_name,
            "connect_timeout": max(1, round(settings.connect_timeout)),
            "prepare_threshold": None,
        }
        if settings.password_file is not None:
            kwargs["password"] = read_password(settings.password_file)
        self._conninfo = split_prisma_parameters(url)[0]
        self._kwargs = kwargs
        self._pool = self._new_pool(settings.pool_max_size)

    def _new_pool(self, max_size: int) -> ConnectionPool[Any]:
        settings = self._settings
        return ConnectionPool(
            self._conninfo,
            min_size=min(settings.pool_min_size, max_size),
            max_size=max_size,
            open=False,
            kwargs=self._kwargs,
            configure=self._configure,
            check=ConnectionPool.check_connection,
            timeout=settings.acquire_timeout,
            reconnect_timeout=RECONNECT_TIMEOUT,
            reconnect_failed=_retry_while_waited_for,
            name=settings.application_name,
        )

    def resize(self, max_size: int) -> None:
        """A pool of at most max_size connections in place of this one (open if it was):
        sessions in progress on the old one end; a connection taken out of it stays open."""
        old, self._pool = self._pool, self._new_pool(max_size)
        if not old.closed:
            old.close(timeout=CLOSE_TIMEOUT)
            self._pool.open(wait=False)

    def try_lock(self, key: int) -> psycopg.Connection[Any] | None:
        """The pool's connection holding the session-level advisory lock `key`, taken out of the
        pool for good (pg_try_advisory_lock: never waits); None when another session holds it."""
        conn: psycopg.Connection[Any] = self._pool.getconn()
        try:
            params = {**self._limits(), "key": key}
            row = conn.execute(queries.query("leader_try_lock"), params).fetchone()
            conn.rollback()  # a session-level advisory lock outlives the transaction
        except BaseException:
            self._pool.putconn(conn)
            raise
        if row is not None and row[-1]:
            return conn
        self._pool.putconn(conn)
        return None

    def still_holds(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether the session holding the lock is still there (its lock goes with it)."""
        try:
            conn.execute(queries.query("session_limits"), self._limits())
            conn.rollback()
        except psycopg.Error:
            return False
        return not conn.closed

    def lock_holder(self, key: int) -> Row | None:
        """The client address and backend PID of the session holding lock `key`, if any."""
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        params = {"classid": unsigned >> 32, "objid": unsigned & 0xFFFF_FFFF}
        with self.session() as session:
            found = session.rows(queries.query("leader_holder"), params)
        return found[0] if found else None

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.read_only = True
        self._own.add(conn)

    def own_sessions(self) -> dict[str, list[Any]]:
        """The monitor's own sessions as query parameters: backend PIDs and start times (a PID
        alone is reused by the server; an application_name any client can set)."""
        return self._own.params()

    def open(self) -> None:
        """Start connecting in the background; checks wait at most acquire_timeout."""
        if self._pool.closed:
            self._pool.open(wait=False)

    def close(self) -> None:
        """Close every connection; checks still waiting for one fail at once (PoolClosed)."""
        self._pool.close(timeout=CLOSE_TIMEOUT)

    def stats(self) -> dict[str, int]:
        """psycopg_pool's statistics of the monitor's own pool."""
        return self._pool.get_stats()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only transaction with the configured time limits, rolled back at the end."""
        started = time.monotonic()
        try:
            with self._pool.connection() as conn:
                try:
                    conn.execute(queries.query("session_limits"), self._limits())
                    yield Session(conn)
                finally:
                    if not conn.closed:
                        conn.rollback()
        except BaseException as error:
            self._report(not is_connection_failure(error), started)
            raise
        self._report(True, started)

    def _report(self, up: bool, started: float) -> None:
        """Report up or down, unless a session that started later has already reported."""
        if self._reported.newer_than(started):
            self._report_up(up)

    def _limits(self) -> dict[str, str]:
        settings = self._settings
        return {
            "lock_timeout": setting_ms(settings.lock_timeout),
            "statement_timeout": setting_ms(settings.statement_timeout),
            "idle_timeout": setting_ms(settings.idle_in_transaction_session_timeout),
        }
