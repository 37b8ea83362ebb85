"""The schema check: every object of migration 001, and the migration state rules of CONTRACT.md."""

from __future__ import annotations

import threading
from datetime import UTC

import fixtures
import pytest
from databases import FreshDatabase
from locks import wait_for_lock_waiters
from monitoring import make_config, run_once, value

from monitor.daemon.service import Monitor
from monitor.observe.migration import STATES, migration_state
from monitor.output.redact import Redactor

TRIGGER = "trigger_update_token_validity"


def state_of(monitor: Monitor) -> str:
    """The one state exported as 1, checking that all four are exported."""
    values = {s: value(monitor, "rollout_migration_state", state=s) for s in STATES}
    assert sorted(v for v in values.values() if v is not None) == [0.0, 0.0, 0.0, 1.0]
    return next(s for s, v in values.items() if v == 1.0)


def present_objects(monitor: Monitor) -> set[tuple[str, str]]:
    """(kind, name) of every object exported as present."""
    return {
        (kind, name)
        for kind, name in fixtures.MIGRATION_001_OBJECTS
        if value(monitor, "rollout_schema_object_present", kind=kind, name=name) == 1.0
    }


def absent_objects(monitor: Monitor) -> set[tuple[str, str]]:
    """(kind, name) of every object exported as absent."""
    return {
        (kind, name)
        for kind, name in fixtures.MIGRATION_001_OBJECTS
        if value(monitor, "rollout_schema_object_present", kind=kind, name=name) == 0.0
    }


@pytest.mark.parametrize(
    ("present", "total", "was_applied", "expected"),
    [
        (0, 11, False, "pending"),
        (0, 11, True, "rolled_back"),
        (3, 11, False, "partial"),
        (10, 11, True, "partial"),
        (11, 11, False, "applied"),
        (11, 11, True, "applied"),
    ],
)
def test_state_rules(present: int, total: int, was_applied: bool, expected: str) -> None:
    assert migration_state(present, total, was_applied) == expected


def test_pending_before_the_migration(fresh_db: FreshDatabase) -> None:
    monitor, ok = run_once(make_config(fresh_db.url))
    assert ok
    assert state_of(monitor) == "pending"
    assert absent_objects(monitor) == fixtures.MIGRATION_001_OBJECTS
    assert value(monitor, "rollout_schema_objects_expected") == 11
    assert value(monitor, "rollout_migration_applied_timestamp_seconds") is None
    assert value(monitor, "rollout_prisma_migration_state", state="absent") == 1.0


def test_partial_when_the_migration_died_midway(fresh_db: FreshDatabase) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001_partial")
    monitor, _ = run_once(make_config(fresh_db.url))
    assert state_of(monitor) == "partial"
    assert present_objects(monitor) == fixtures.PARTIAL_001_OBJECTS
    assert absent_objects(monitor) == fixtures.MIGRATION_001_OBJECTS - fixtures.PARTIAL_001_OBJECTS


def test_applied_with_every_object_healthy(fresh_db: FreshDatabase) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001")
    monitor, ok = run_once(make_config(fresh_db.url))
    assert ok
    assert state_of(monitor) == "applied"
    assert present_objects(monitor) == fixtures.MIGRATION_001_OBJECTS
    for kind, name in fixtures.MIGRATION_001_OBJECTS:
        if kind == "index":
            assert value(monitor, "rollout_schema_index_valid", name=name) == 1.0
    assert value(monitor, "rollout_schema_trigger_enabled", name=TRIGGER) == 1
    assert value(monitor, "rollout_migration_applied_timestamp_source", source="observed") == 1.0


def test_applied_time_comes_from_prisma_when_recorded(fresh_db: FreshDatabase) -> None:
    conn = fresh_db.conn()
    fixtures.apply(conn, "migration_001")
    fixtures.apply(conn, "prisma_record_001")
    row = conn.execute(
        "SELECT finished_at FROM _prisma_migrations WHERE migration_name = %s",
        [fixtures.MIGRATION_001_NAME],
    ).fetchone()
    assert row is not None
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_migration_applied_timestamp_seconds") == pytest.approx(
        row[0].astimezone(UTC).timestamp()
    )
    assert value(monitor, "rollout_migration_applied_timestamp_source", source="prisma") == 1.0
    assert value(monitor, "rollout_prisma_migration_state", state="finished") == 1.0


def test_prisma_folder_with_timestamp_prefix_is_matched(fresh_db: FreshDatabase) -> None:
    conn = fresh_db.conn()
    fixtures.apply(conn, "prisma_record_001")
    conn.execute(
        "UPDATE _prisma_migrations SET migration_name = %s WHERE migration_name = %s",
        ["20251120093000_001_threads_oauth_enhancements", fixtures.MIGRATION_001_NAME],
    )
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_prisma_migration_state", state="finished") == 1.0
    assert state_of(monitor) == "rolled_back"


def test_failed_prisma_migration_is_reported(fresh_db: FreshDatabase) -> None:
    fresh_db.conn().execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at)"
        " VALUES ('x1', 'c', %s, 'error: lock timeout', now())",
        [fixtures.MIGRATION_001_NAME],
    )
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_prisma_migration_state", state="failed") == 1.0
    assert state_of(monitor) == "pending"


def test_rolled_back_by_the_plans_rollback_sql_after_being_seen_applied(
    fresh_db: FreshDatabase,
) -> None:
    """The same process saw it applied, then the plan's rollback SQL (verbatim) ran."""
    conn = fresh_db.conn()
    fixtures.apply(conn, "migration_001")
    monitor = Monitor(make_config(fresh_db.url), Redactor())
    try:
        monitor.once()
        assert state_of(monitor) == "applied"
        fixtures.apply(conn, "rollback_001")
        monitor.once()
    finally:
        monitor.close()
    assert state_of(monitor) == "rolled_back"
    assert absent_objects(monitor) == fixtures.MIGRATION_001_OBJECTS
    assert value(monitor, "rollout_migration_applied_timestamp_seconds") is None


def test_rolled_back_when_prisma_recorded_it_and_objects_are_gone(fresh_db: FreshDatabase) -> None:
    """A fresh process learns it was applied from _prisma_migrations.finished_at."""
    conn = fresh_db.conn()
    fixtures.apply(conn, "migration_001")
    fixtures.apply(conn, "prisma_record_001")
    fixtures.apply(conn, "rollback_001")
    monitor, _ = run_once(make_config(fresh_db.url))
    assert state_of(monitor) == "rolled_back"


def test_invalid_index_and_disabled_trigger_are_reported(fresh_db: FreshDatabase) -> None:
    conn = fresh_db.conn()
    fixtures.apply(conn, "migration_001")
    conn.execute("ALTER TABLE threads_tokens DISABLE TRIGGER trigger_update_token_validity")
    # What a failed CREATE INDEX CONCURRENTLY leaves behind: the index exists, not valid.
    conn.execute(
        "UPDATE pg_index SET indisvalid = false"
        " WHERE indexrelid = 'idx_threads_tokens_valid'::regclass"
    )
    monitor, _ = run_once(make_config(fresh_db.url))
    assert state_of(monitor) == "applied"
    assert value(monitor, "rollout_schema_index_valid", name="idx_threads_tokens_valid") == 0.0
    assert value(monitor, "rollout_schema_index_valid", name="idx_users_threads_user_id") == 1.0
    assert value(monitor, "rollout_schema_trigger_enabled", name=TRIGGER) == 0


def test_other_schema_and_names_come_from_config(fresh_db: FreshDatabase) -> None:
    """Nothing is hard-wired: the same migration in schema 'app' is found when configured."""
    conn = fresh_db.conn()
    conn.execute("CREATE SCHEMA app")
    conn.execute("ALTER TABLE users SET SCHEMA app")
    conn.execute("ALTER TABLE threads_tokens SET SCHEMA app")
    conn.execute("SET search_path = app")
    fixtures.apply(conn, "migration_001")
    monitor, ok = run_once(make_config(fresh_db.url + "?schema=app"))
    assert ok
    assert state_of(monitor) == "applied"
    monitor, _ = run_once(make_config(fresh_db.url))
    assert state_of(monitor) == "pending"


def running(monitor: Monitor) -> tuple[float | None, float | None]:
    """rollout_migration_running, and the run's start time if exported."""
    return (
        value(monitor, "rollout_migration_running"),
        value(monitor, "rollout_migration_started_timestamp_seconds"),
    )


def test_nothing_running_before_the_migration(fresh_db: FreshDatabase) -> None:
    monitor, _ = run_once(make_config(fresh_db.url))
    assert running(monitor) == (0.0, None)
    assert monitor.memory.tracker.current().quiet


def looks(fresh_db: FreshDatabase, times: int) -> Monitor:
    """One monitor whose schema check looked this many times (its other checks once)."""
    monitor = Monitor(make_config(fresh_db.url), Redactor())
    try:
        for _ in range(times):
            monitor.once()
    finally:
        monitor.close()
    return monitor


def test_prisma_migrates_advisory_lock_held_over_two_looks_means_the_migration_runs(
    fresh_db: FreshDatabase,
) -> None:
    """`prisma migrate deploy` holds pg_advisory_lock(72707369) for its whole run; one look at
    it is not enough (a deploy with nothing to apply takes it for a moment too)."""
    migrator = fresh_db.conn()
    migrator.execute("SELECT pg_advisory_lock(72707369)")
    assert running(looks(fresh_db, 1)) == (0.0, None)
    monitor = looks(fresh_db, 2)
    state, started = running(monitor)
    assert (state_of(monitor), state) == ("pending", 1.0)
    assert started is not None
    assert not monitor.memory.tracker.current().quiet
    migrator.execute("SELECT pg_advisory_unlock(72707369)")
    assert running(looks(fresh_db, 1)) == (0.0, None)


def test_another_advisory_lock_is_not_the_migration(fresh_db: FreshDatabase) -> None:
    fresh_db.conn().execute("SELECT pg_advisory_lock(72707370)")
    monitor, _ = run_once(make_config(fresh_db.url))
    assert running(monitor) == (0.0, None)


def test_a_started_prisma_record_gives_the_runs_start(fresh_db: FreshDatabase) -> None:
    """Prisma writes started_at (timestamptz) before the migration's SQL runs."""
    conn = fresh_db.conn()
    conn.execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at)"
        " VALUES ('x1', 'c', %s, '2026-11-01 00:50:00+00')",
        [fixtures.MIGRATION_001_NAME],
    )
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_prisma_migration_state", state="started") == 1.0
    assert running(monitor) == (1.0, 1793494200.0)


def test_objects_appearing_one_by_one_are_the_run(fresh_db: FreshDatabase) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001_partial")
    monitor, _ = run_once(make_config(fresh_db.url))
    assert (state_of(monitor), running(monitor)[0]) == ("partial", 1.0)


def test_a_queued_alter_table_is_the_run(fresh_db: FreshDatabase) -> None:
    """The plan's Risk 1: the ALTER TABLE waits behind an open transaction, holding nothing yet."""
    blocker, migrator = fresh_db.conn(), fresh_db.conn()
    blocker.execute("BEGIN")
    blocker.execute('SELECT count(*) FROM "users"')
    migrator.execute("SET lock_timeout = '20s'")
    queued = threading.Thread(
        target=lambda: migrator.execute('ALTER TABLE "users" ADD COLUMN "x" text'), daemon=True
    )
    queued.start()
    try:
        wait_for_lock_waiters(fresh_db.conn(), 1)
        assert running(looks(fresh_db, 1))[0] == 0.0  # one look: autovacuum does that too
        monitor = looks(fresh_db, 2)
        assert (state_of(monitor), running(monitor)[0]) == ("pending", 1.0)
    finally:
        blocker.execute("ROLLBACK")
        queued.join(timeout=30)


def test_applied_keeps_prismas_start_and_stops_running(fresh_db: FreshDatabase) -> None:
    conn = fresh_db.conn()
    for name in ("migration_001", "prisma_record_001"):
        fixtures.apply(conn, name)
    monitor, _ = run_once(make_config(fresh_db.url))
    state, started = running(monitor)
    applied = value(monitor, "rollout_migration_applied_timestamp_seconds")
    assert (state_of(monitor), state) == ("applied", 0.0)
    assert started is not None
    assert applied is not None
    assert started <= applied
