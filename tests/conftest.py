"""Shared pytest fixtures: one throwaway PostgreSQL per session, one fresh database per test."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

# Make `fixtures` and the test helpers importable whatever pytest's import mode is.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

import fixtures
from callback_servers import answering_server
from databases import SERVER_TIMEZONE, FreshDatabase, drop_database, frozen_baseline_state
from monitoring import OVER_TLS, WHILE_RUNNING, make_config, run_once
from promql import exposed_names

from monitor.demo.postgres import PostgresServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """Run one PostgreSQL server, TimeZone Pacific/Kiritimati (UTC+14), for the session."""
    try:
        server = PostgresServer(timezone=SERVER_TIMEZONE)
        server.start()
    except (RuntimeError, OSError) as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        pytest.fail(f"could not start the test PostgreSQL server: {reason}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_db(pg_server: PostgresServer) -> Iterator[FreshDatabase]:
    """Create a uniquely named database holding the pre-migration schema and seed data."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    pg_server.create_database(name)
    db = FreshDatabase(server=pg_server, name=name, url=pg_server.url(name))
    try:
        with pg_server.connect(name) as conn:
            fixtures.apply(conn, "schema_before")
            fixtures.apply(conn, "seed")
        yield db
    finally:
        db.close_all()
        drop_database(pg_server, name)


@pytest.fixture
def exported_names(fresh_db: FreshDatabase, tmp_path: Path) -> set[str]:
    """Every sample name the daemon exports on a migrated database with the app answering.

    The baseline comes from a state file frozen before the migration, as a monitor that watched
    the rollout from the start would have left it.
    """
    conn = fresh_db.conn()
    for name in ("migration_001", "prisma_record_001", "seed_after"):
        fixtures.apply(conn, name)
    state_file = tmp_path / "baseline.json"
    state_file.write_text(frozen_baseline_state())
    with answering_server(401) as app:
        config = make_config(
            fresh_db.url,
            checks={
                "callback": {"url": app.url},
                "connections": {"app_application_name": "app", "app_pool_size": 10},
            },
            baseline={"state_file": str(state_file)},
        )
        monitor, _ = run_once(config)
    # With the migration applied nothing runs it: what is exported only while it runs is
    # checked by tests/test_migration_run.py; what only an https callback exports, by
    # tests/test_probe_tls.py.
    return exposed_names(generate_latest(monitor.registry).decode()) | WHILE_RUNNING | OVER_TLS
