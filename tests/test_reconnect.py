"""The database goes away and comes back: the monitor notices, survives, and reconnects."""

from __future__ import annotations

import time
from collections.abc import Iterator

import fixtures
import pytest
from daemons import RECOVERY_BOUND, fast_config, serving
from monitoring import make_config, value

from monitor.daemon.service import Monitor
from monitor.demo.postgres import PostgresServer
from monitor.output.redact import Redactor


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, free to be stopped and started."""
    with PostgresServer(timezone="America/St_Johns") as server:
        server.create_database("app")
        with server.connect("app") as conn:
            fixtures.apply(conn, "schema_before")
            fixtures.apply(conn, "seed")
        yield server


def connections_of_the_monitor(server: PostgresServer) -> int:
    """Sessions tagged rollout-monitor, as pg_stat_activity shows them."""
    with server.connect("app") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rollout-monitor'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_postgres_up_follows_a_restart_without_leaking_connections(
    own_server: PostgresServer,
) -> None:
    config = make_config(own_server.url("app"), database={"acquire_timeout": "2s"})
    monitor = Monitor(config, Redactor())
    try:
        _, ok = monitor.once()
        assert ok
        assert value(monitor, "rollout_postgres_up") == 1
        own_server.stop_server_only()
        _, ok = monitor.once()
        assert not ok
        assert value(monitor, "rollout_postgres_up") == 0
        assert value(monitor, "rollout_check_success", check="schema") == 0
        assert value(monitor, "rollout_migration_state", state="pending") is None
        own_server.start_again()
        recovered_after = None
        started = time.monotonic()
        for attempt in range(1, 6):
            _, ok = monitor.once()
            if ok:
                recovered_after = attempt
                break
        assert recovered_after is not None, "never reconnected"
        assert time.monotonic() - started < 15
        assert value(monitor, "rollout_postgres_up") == 1
        assert value(monitor, "rollout_migration_state", state="pending") == 1
        assert 1 <= connections_of_the_monitor(own_server) <= config.database.pool_max_size
    finally:
        monitor.close()
    assert connections_of_the_monitor(own_server) == 0


def test_daemon_follows_a_restart_within_an_interval_and_leaks_no_connection(
    own_server: PostgresServer,
) -> None:
    """The running daemon through a real stop (8 s down) and start of PostgreSQL."""
    config = fast_config(own_server.url("app"), database={"acquire_timeout": "2s"})
    with serving(config) as running:
        running.wait_for("rollout_postgres_up", 1, timeout=15)
        own_server.stop_server_only("fast")
        running.wait_for("rollout_postgres_up", 0, timeout=RECOVERY_BOUND + 2)
        time.sleep(8)
        assert running.value("rollout_postgres_up") == 0
        own_server.start_again()
        recovered_in = running.wait_for("rollout_postgres_up", 1, timeout=30)
        time.sleep(2)
        assert running.value('rollout_check_success{check="schema"}') == 1
        assert 1 <= connections_of_the_monitor(own_server) <= config.database.pool_max_size
    print(f"restart: rollout_postgres_up back to 1 {recovered_in:.2f}s after the server started")
    assert recovered_in <= RECOVERY_BOUND
    assert connections_of_the_monitor(own_server) == 0
