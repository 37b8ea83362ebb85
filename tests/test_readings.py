"""The typed readings the checks publish: one per check the judgment needs, equal to what the
same run exports, and withdrawn with the families when a check fails."""

from __future__ import annotations

import fixtures
from databases import FreshDatabase
from monitoring import make_config, run_once, value

from monitor.daemon.service import Monitor
from monitor.observe.readings import (
    Backfill,
    Connections,
    Drift,
    Logins,
    Lookup,
    Readings,
    SchemaHealth,
)


def migrated_monitor(fresh_db: FreshDatabase) -> Monitor:
    """One run of every check on a migrated, seeded database (applied an hour ago)."""
    conn = fresh_db.conn()
    for name in ("migration_001", "prisma_record_001", "seed_after"):
        fixtures.apply(conn, name)
    monitor, ok = run_once(make_config(fresh_db.url))
    assert ok
    return monitor


def test_every_reading_equals_what_the_same_run_exports(fresh_db: FreshDatabase) -> None:
    """Nothing reads the exposition back by name: the readings carry the same numbers."""
    monitor = migrated_monitor(fresh_db)
    now = monitor.memory.readings.current()

    def exported(name: str, **labels: str) -> float | None:
        return value(monitor, name, **labels)

    assert now.get(SchemaHealth) == SchemaHealth(True, True, trigger_missing=False)
    assert now.get(Drift) == Drift(
        exported("rollout_token_validity_drift", kind="stale_valid") or -1,
        exported("rollout_token_validity_drift", kind="wrongly_invalid") or 0,
    )
    backfill = now.get(Backfill)
    assert backfill is not None
    assert backfill.missing == {
        column: exported("rollout_users_missing_field", column=column)
        for column in ("threadsFullName", "threadsProfilePic")
    }
    lookup = now.get(Lookup)
    assert lookup is not None
    assert lookup.seconds == exported("rollout_user_lookup_execution_seconds")
    assert exported("rollout_user_lookup_plan_info", node=lookup.node, index=lookup.index) == 1
    connections = now.get(Connections)
    assert connections is not None
    assert connections.max_connections == exported("rollout_db_max_connections")
    assert connections.lock_waiting == exported("rollout_db_lock_waiting_sessions") == 0
    assert connections.blocked_by_ddl == exported("rollout_db_sessions_blocked_by_ddl") == 0
    assert connections.clients >= 1  # the monitor's own session at least


def test_logins_are_read_once_the_migration_is_applied(fresh_db: FreshDatabase) -> None:
    conn = fresh_db.conn()
    monitor, _ = run_once(make_config(fresh_db.url))
    assert monitor.memory.readings.get(Logins) is None  # pending: nothing to count since
    assert monitor.memory.readings.get(Drift) is None  # not applicable before isValid exists
    for name in ("migration_001", "prisma_record_001", "seed_after"):
        fixtures.apply(conn, name)
    monitor, _ = run_once(make_config(fresh_db.url))
    logins = monitor.memory.readings.get(Logins)
    assert logins is not None
    assert logins.users == value(monitor, "rollout_users_logged_in_since_migration")


def test_a_failed_run_withdraws_the_reading_and_a_new_one_replaces_it() -> None:
    readings = Readings()
    readings.publish("drift", Drift(1, 2))
    before = readings.current()
    readings.publish("connections", Connections(3, 100, 0, 0))
    assert before.get(Connections) is None  # a snapshot never changes
    assert readings.get(Drift) == Drift(1, 2)
    readings.withdraw("drift")
    assert readings.get(Drift) is None
    readings.publish("connections", None)
    assert readings.current().by_check == {}
