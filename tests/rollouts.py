"""A monitor against the test database and a scripted callback, driven by hand: learn a
baseline, migrate as Prisma does, probe, look."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import fixtures
import psycopg
from callback_servers import (
    RunningServer,
    ServerState,
    read_request,
    response_bytes,
    serve,
)
from databases import FreshDatabase
from monitoring import make_config

from monitor.daemon.service import Monitor
from monitor.output.redact import Redactor


def monitor_for(fresh_db: FreshDatabase, url: str, **baseline: Any) -> Monitor:
    """A monitor probing the URL, with the database pool open."""
    config = make_config(
        fresh_db.url, checks={"callback": {"url": url, "timeout": "2s"}}, baseline=baseline
    )
    monitor = Monitor(config, Redactor())
    monitor.db.open()
    return monitor


def run(monitor: Monitor, check: str) -> str:
    """Run one check of the monitor once; its outcome."""
    return next(r for r in monitor.runners if r.check.name == check)()


def learn(monitor: Monitor, probes: int) -> None:
    """Probe the callback, each probe followed by a schema check (which confirms it)."""
    for _ in range(probes):
        run(monitor, "schema")
        run(monitor, "callback")
    run(monitor, "schema")


@contextmanager
def closing(monitor: Monitor) -> Iterator[Monitor]:
    """Close the monitor (persisting its baseline) at the end."""
    try:
        yield monitor
    finally:
        monitor.close()


def scripted_server(answers: list[tuple[int, float]]) -> AbstractContextManager[RunningServer]:
    """Answers with the status, after the delay, of answers[-1] (append to change it)."""

    def answer(conn: socket.socket, state: ServerState) -> None:
        status, delay = answers[-1]
        if read_request(conn, state) is not None and not state.stopping.wait(delay):
            conn.sendall(response_bytes(status, b"{}"))

    return serve(answer)


def migrate(fresh_db: FreshDatabase) -> None:
    """Migration 001 as Prisma records it, then logins of two new users with both fields."""
    conn = fresh_db.conn()
    for name in ("migration_001", "prisma_record_001"):
        fixtures.apply(conn, name)
    # "issuedAt" is timestamp(3): a login a few microseconds after finished_at can round to
    # before it, and would not count as since the migration.
    conn.execute("UPDATE _prisma_migrations SET finished_at = finished_at - interval '1 second'")
    fixtures.apply(conn, "seed_after")


def probe(monitor: Monitor, times: int) -> None:
    for _ in range(times):
        run(monitor, "callback")


def look(monitor: Monitor) -> None:
    """The checks the criteria read besides the probes (before the migration two do not apply)."""
    for check in ("schema", "drift", "activity"):
        assert run(monitor, check) in {"success", "not_applicable"}


PRISMA_START = """
INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count)
VALUES ('run-1', md5('001'), %s, now(), 0)
"""


PRISMA_FINISH = "UPDATE _prisma_migrations SET finished_at = now() WHERE id = 'run-1'"


def apply_in_one_transaction(conn: psycopg.Connection[Any]) -> None:
    """Migration 001 as one transaction, as `prisma migrate deploy` runs it."""
    with conn.transaction():
        fixtures.apply(conn, "migration_001")
