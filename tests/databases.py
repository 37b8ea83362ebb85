"""A fresh database per test on the session's PostgreSQL, and a baseline state file as a
monitor leaves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import fixtures
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from monitor.demo.postgres import PostgresServer
from monitor.judge.baseline import SavedState, Summary
from monitor.judge.stats import Latencies
from monitor.observe.metrics import PROBE_BUCKETS

SERVER_TIMEZONE = "Pacific/Kiritimati"


@dataclass
class FreshDatabase:
    """A per-test database holding ``schema_before.sql`` + ``seed.sql``."""

    server: PostgresServer
    name: str
    url: str
    _conns: list[psycopg.Connection[TupleRow]] = field(default_factory=list, repr=False)

    def conn(self) -> psycopg.Connection[TupleRow]:
        """Open a superuser autocommit connection to this database (closed at teardown)."""
        connection = self.server.connect(self.name, autocommit=True)
        self._conns.append(connection)
        return connection

    def close_all(self) -> None:
        """Close every connection handed out by ``conn()``."""
        for connection in self._conns:
            connection.close()
        self._conns.clear()


def frozen_baseline_state(version: Literal[1, 3] = 3) -> str:
    """A baseline state file as a monitor leaves it once the migration left pending; version 1
    has no latency buckets."""
    latencies = Latencies.of([0.03] * 200 + [0.06] * 40, PROBE_BUCKETS)
    buckets = {"bucket_counts": latencies.cumulative, "answered": latencies.total}
    summary = Summary(
        probes=240,
        success_ratio=1.0,
        duration_seconds={"0.5": 0.03, "0.95": 0.06, "0.99": 0.09},
        **(buckets if version == 3 else {}),
    )
    return SavedState(
        version=version,
        migration=fixtures.MIGRATION_001_NAME,
        frozen=True,
        confirmed_until=None,
        baseline=summary,
    ).model_dump_json()


def drop_database(server: PostgresServer, name: str) -> None:
    """Terminate the database's sessions, then drop it if it exists."""
    with server.connect() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))
