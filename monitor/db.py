"""The pool, and the only way checks touch the database: short, read-only, time-boxed sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from monitor import sql as queries
from monitor.config import DatabaseConfig
from monitor.urls import split_prisma_parameters

Row = dict[str, Any]
# SQLSTATE classes that mean "the server is gone or refusing", not "this query failed".
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")


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


def milliseconds(seconds: float) -> str:
    """A duration as Postgres settings take it, in whole milliseconds."""
    return str(max(1, round(seconds * 1000)))


class Session:
    """One read-only transaction with lock_timeout and statement_timeout set."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def rows(self, query: sql.Composed, params: Mapping[str, Any] | None = None) -> list[Row]:
        """All rows of a query, each as a dict."""
        with self._conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def row(self, query: sql.Composed, params: Mapping[str, Any] | None = None) -> Row:
        """The single row of a query that always returns one."""
        return self.rows(query, params)[0]

    def guard(self, schema: str, tables: Sequence[str]) -> None:
        """Raise TableLocked rather than queue behind a DDL lock on any of these tables."""
        params = {"schema": schema, "tables": list(tables)}
        locked = [row["table_name"] for row in self.rows(queries.query("exclusive_locks"), params)]
        if locked:
            raise TableLocked(locked)

    def existing_columns(self, schema: str, table: str, columns: Sequence[str]) -> frozenset[str]:
        """Which of these columns the table has now (from the catalog: no lock on the table)."""
        params = {"schema": schema, "table": table, "columns": list(columns)}
        rows = self.rows(queries.query("existing_columns"), params)
        return frozenset(row["column_name"] for row in rows)


class Database:
    """A small, capped pool of read-only connections tagged with application_name."""

    def __init__(
        self, settings: DatabaseConfig, url: str, report_up: Callable[[bool], None]
    ) -> None:
        self._settings = settings
        self._report_up = report_up
        self._pool = ConnectionPool(
            split_prisma_parameters(url)[0],
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            open=False,
            kwargs={
                "application_name": settings.application_name,
                "connect_timeout": max(1, round(settings.connect_timeout)),
                "prepare_threshold": None,
            },
            configure=self._configure,
            check=ConnectionPool.check_connection,
            timeout=settings.acquire_timeout,
            reconnect_timeout=60.0,
            name=settings.application_name,
        )

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.read_only = True

    def open(self) -> None:
        """Start connecting in the background; checks wait at most acquire_timeout."""
        if self._pool.closed:
            self._pool.open(wait=False)

    def close(self) -> None:
        """Close every connection."""
        self._pool.close(timeout=5.0)

    def stats(self) -> dict[str, int]:
        """psycopg_pool's statistics of the monitor's own pool."""
        return self._pool.get_stats()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only transaction with the configured time limits, rolled back at the end."""
        try:
            with self._pool.connection() as conn:
                try:
                    conn.execute(queries.query("session_limits"), self._limits())
                    yield Session(conn)
                finally:
                    if not conn.closed:
                        conn.rollback()
        except BaseException as error:
            self._report_up(not is_connection_failure(error))
            raise
        self._report_up(True)

    def _limits(self) -> dict[str, str]:
        settings = self._settings
        return {
            "lock_timeout": milliseconds(settings.lock_timeout),
            "statement_timeout": milliseconds(settings.statement_timeout),
            "idle_timeout": milliseconds(settings.idle_in_transaction_session_timeout),
        }
