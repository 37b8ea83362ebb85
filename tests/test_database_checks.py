"""Drift, backfill, activity, performance and connections against a real server in Kiritimati."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import fixtures
import psycopg
import pytest
from databases import FreshDatabase
from grants import READER_GRANTS, grant_monitoring_role, privileges
from locks import run_quietly, wait_for_lock_waiters
from monitoring import make_config, outcome_count, run_once, value
from psycopg import sql

from monitor.checks.connections import STATES
from monitor.db.pool import Database

SETTINGS_QUERY = sql.Composed(
    [
        sql.SQL(
            "SELECT current_setting('transaction_read_only') AS ro,"
            " current_setting('lock_timeout') AS lock,"
            " current_setting('statement_timeout') AS st,"
            " current_setting('TimeZone') AS tz,"
            " current_setting('application_name') AS app"
        )
    ]
)
DB_CHECKS = (
    "schema",
    "drift",
    "migration_run",
    "backfill",
    "connections",
    "activity",
    "query_performance",
)


def migrated(fresh_db: FreshDatabase) -> psycopg.Connection[tuple[object, ...]]:
    """A superuser connection to the database after migration 001."""
    conn = fresh_db.conn()
    fixtures.apply(conn, "migration_001")
    return conn


def drift(fresh_db: FreshDatabase, **sections: object) -> tuple[float | None, float | None]:
    """(stale_valid, wrongly_invalid) as the monitor reports them."""
    monitor, _ = run_once(make_config(fresh_db.url, **sections))
    return (
        value(monitor, "rollout_token_validity_drift", kind="stale_valid"),
        value(monitor, "rollout_token_validity_drift", kind="wrongly_invalid"),
    )


def test_server_runs_in_a_non_utc_timezone(fresh_db: FreshDatabase) -> None:
    row = fresh_db.conn().execute("SHOW TimeZone").fetchone()
    assert row == ("Pacific/Kiritimati",)


def test_drift_counts_expired_tokens_left_valid_by_the_additive_migration(
    fresh_db: FreshDatabase,
) -> None:
    migrated(fresh_db)
    assert drift(fresh_db) == (fixtures.MIGRATED_STALE_VALID, fixtures.MIGRATED_WRONGLY_INVALID)


def test_drift_is_exact_whatever_the_sessions_timezone(fresh_db: FreshDatabase) -> None:
    conn = migrated(fresh_db)
    expected = (float(fixtures.MIGRATED_STALE_VALID), float(fixtures.MIGRATED_WRONGLY_INVALID))
    for zone in ("Pacific/Pago_Pago", "Asia/Kathmandu", "UTC"):
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET TimeZone = {}").format(
                sql.Identifier(fresh_db.name), sql.Literal(zone)
            )
        )
        assert drift(fresh_db) == expected, zone


def test_drift_sees_tokens_wrongly_invalidated_and_stale_ones_repaired(
    fresh_db: FreshDatabase,
) -> None:
    conn = migrated(fresh_db)
    # A trigger bug: two unexpired tokens flagged invalid behind the trigger's back.
    conn.execute("ALTER TABLE threads_tokens DISABLE TRIGGER trigger_update_token_validity")
    conn.execute(
        """UPDATE threads_tokens SET "isValid" = false WHERE id IN ('token-5', 'token-6')"""
    )
    conn.execute("ALTER TABLE threads_tokens ENABLE TRIGGER trigger_update_token_validity")
    # The plan's manual refresh script: touching a row lets the trigger recompute it.
    conn.execute("""UPDATE threads_tokens SET "updatedAt" = "updatedAt" WHERE id = 'token-1'""")
    assert drift(fresh_db) == (fixtures.MIGRATED_STALE_VALID - 1, 2)


def test_drift_is_not_applicable_before_the_migration(fresh_db: FreshDatabase) -> None:
    monitor, ok = run_once(make_config(fresh_db.url))
    assert ok
    assert outcome_count(monitor, "drift", "not_applicable") == 1
    assert value(monitor, "rollout_check_applicable", check="drift") == 0
    assert value(monitor, "rollout_check_success", check="drift") == 1
    assert value(monitor, "rollout_token_validity_drift", kind="stale_valid") is None


def test_backfill_counts_users_missing_each_new_column(fresh_db: FreshDatabase) -> None:
    fixtures.apply(migrated(fresh_db), "seed_after")
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_users") == fixtures.AFTER_USERS_TOTAL
    assert value(monitor, "rollout_users_missing_field", column="threadsFullName") == (
        fixtures.AFTER_MISSING_FULL_NAME
    )
    assert value(monitor, "rollout_users_missing_field", column="threadsProfilePic") == (
        fixtures.AFTER_MISSING_PROFILE_PIC
    )
    assert value(monitor, "rollout_tokens") == fixtures.AFTER_TOKENS_TOTAL
    assert drift(fresh_db) == (fixtures.AFTER_STALE_VALID, fixtures.AFTER_WRONGLY_INVALID)


def test_backfill_reports_the_columns_a_partial_migration_added(fresh_db: FreshDatabase) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001_partial")
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_users_missing_field", column="threadsFullName") == 12
    assert value(monitor, "rollout_users_missing_field", column="threadsProfilePic") == 12
    assert value(monitor, "rollout_token_validity_drift", kind="stale_valid") is None


def test_logins_since_the_migration_that_still_miss_new_fields(fresh_db: FreshDatabase) -> None:
    conn = migrated(fresh_db)
    fixtures.apply(conn, "seed_after")  # users 13 and 14 log in, fields filled
    # user-6 logs in again through old code: token refreshed, new fields left NULL.
    conn.execute(
        """UPDATE threads_tokens SET "lastRefreshedAt" = now() AT TIME ZONE 'UTC'"""
        " WHERE id = 'token-6'"
    )
    applied_at = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    monitor, _ = run_once(make_config(fresh_db.url, migration={"applied_at": applied_at}))
    assert value(monitor, "rollout_migration_applied_timestamp_source", source="config") == 1
    assert value(monitor, "rollout_users_logged_in_since_migration") == 3
    for column in ("threadsFullName", "threadsProfilePic"):
        assert (
            value(monitor, "rollout_users_logged_in_since_migration_missing_field", column=column)
            == 1
        )


def test_activity_counters_follow_inserts_and_updates(fresh_db: FreshDatabase) -> None:
    conn = migrated(fresh_db)
    fixtures.apply(conn, "seed_after")
    conn.execute("""UPDATE threads_tokens SET "lastRefreshedAt" = now() WHERE id = 'token-7'""")
    conn.execute("SELECT pg_stat_force_next_flush()")
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_users_created_total") == fixtures.AFTER_USERS_TOTAL
    assert value(monitor, "rollout_tokens_issued_total") == fixtures.AFTER_TOKENS_TOTAL
    assert value(monitor, "rollout_tokens_refreshed_total") == 1


def test_user_lookup_plan_is_measured_and_uses_an_index(fresh_db: FreshDatabase) -> None:
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_user_lookup_index_scan") == 1
    assert (
        value(
            monitor,
            "rollout_user_lookup_plan_info",
            node="Index Scan",
            index="users_threadsUserId_key",
        )
        == 1
    )
    execution = value(monitor, "rollout_user_lookup_execution_seconds")
    assert execution is not None
    assert 0 < execution < 1


def test_connections_are_counted_by_state_and_bounded_application_name(
    fresh_db: FreshDatabase,
) -> None:
    app = psycopg.connect(fresh_db.server.url(fresh_db.name) + "?application_name=threads-app")
    stray = psycopg.connect(fresh_db.server.url(fresh_db.name) + "?application_name=psql-bob")
    try:
        app.execute("SELECT 1")  # leaves the session idle in transaction
        settings = {"connections": {"app_application_name": "threads-app", "app_pool_size": 4}}
        monitor, _ = run_once(make_config(fresh_db.url, checks=settings))
    finally:
        app.close()
        stray.close()
    connections = "rollout_db_connections"
    assert (
        value(monitor, connections, state="idle in transaction", application_name="threads-app")
        == 1
    )
    assert value(monitor, connections, state="active", application_name="threads-app") == 0
    assert value(monitor, "rollout_app_pool_connections") == 1
    assert value(monitor, "rollout_app_pool_utilization_ratio") == 0.25
    assert value(monitor, connections, state="idle", application_name="psql-bob") is None
    others = value(monitor, connections, state="idle", application_name="other")
    assert others is not None
    assert others >= 1
    assert value(monitor, "rollout_db_max_connections") == 50


def test_least_privilege_role_runs_every_check(fresh_db: FreshDatabase) -> None:
    """pg_read_all_stats plus column-level SELECT; no access to accessToken or email."""
    conn = migrated(fresh_db)
    fixtures.apply(conn, "prisma_record_001")
    reader = f"{fresh_db.name}_reader"  # roles are the server's, shared by every test database
    conn.execute(f"CREATE ROLE {reader} LOGIN PASSWORD 'reader-pw-123'")
    grant_monitoring_role(fresh_db.url, reader)
    url = fresh_db.server.url(fresh_db.name, user=reader, password="reader-pw-123")
    app_url = fresh_db.server.url(fresh_db.name) + "?application_name=threads-app"
    with psycopg.connect(app_url) as app:  # another role's session: pg_read_all_stats shows it
        app.execute("SELECT 1")  # leaves the session idle in transaction
        settings = {"connections": {"app_application_name": "threads-app"}}
        monitor, ok = run_once(make_config(url, checks=settings))
    assert ok
    for check in DB_CHECKS:
        assert outcome_count(monitor, check, "success") == 1, check
    assert value(monitor, "rollout_token_validity_drift", kind="stale_valid") == 4
    assert value(monitor, "rollout_migration_state", state="applied") == 1
    connections = "rollout_db_connections"
    labels = {"state": "idle in transaction", "application_name": "threads-app"}
    assert value(monitor, connections, **labels) == 1
    with psycopg.connect(url) as session:
        for secret in ('SELECT "accessToken" FROM threads_tokens', "SELECT email FROM users"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                session.execute(secret)
            session.rollback()


def test_least_privilege_role_holds_nothing_beyond_the_script(fresh_db: FreshDatabase) -> None:
    """Not pg_monitor, no table-level grant, no write: what a bare role has, plus the script's."""
    conn = migrated(fresh_db)
    fixtures.apply(conn, "prisma_record_001")
    reader, bare = f"{fresh_db.name}_reader", f"{fresh_db.name}_bare"
    conn.execute(f"CREATE ROLE {reader} LOGIN")
    conn.execute(f"CREATE ROLE {bare} LOGIN")
    conn.execute(f"GRANT pg_monitor TO {reader}")  # what the earlier script granted
    conn.execute(f"GRANT SELECT ON _prisma_migrations TO {reader}")
    conn.commit()
    grant_monitoring_role(fresh_db.url, reader)
    grant_monitoring_role(fresh_db.url, reader)  # idempotent
    assert privileges(conn, reader) - privileges(conn, bare) == READER_GRANTS
    assert ("role", "pg_monitor", "MEMBER") not in privileges(conn, reader)


def test_sessions_are_read_only_time_boxed_and_tagged(fresh_db: FreshDatabase) -> None:
    config = make_config(fresh_db.url)
    db = Database(config.database, fresh_db.url, lambda up: None)
    db.open()
    try:
        with db.session() as session:
            settings = session.row(SETTINGS_QUERY)
        assert settings == {
            "ro": "on",
            "lock": "200ms",
            "st": "3s",
            "tz": "UTC",
            "app": "rollout-monitor",
        }
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), db.session() as session:
            session.rows(sql.Composed([sql.SQL("CREATE TABLE sneaky (id int)")]))
    finally:
        db.close()


def test_the_monitors_own_connections_are_known_by_pid_not_by_name(
    fresh_db: FreshDatabase,
) -> None:
    """Finding 6: sessions naming themselves rollout-monitor counted as the monitor's own."""
    impostors = [
        psycopg.connect(fresh_db.server.url(fresh_db.name) + "?application_name=rollout-monitor")
        for _ in range(3)
    ]
    try:
        for impostor in impostors:
            impostor.execute("SELECT 1")  # idle in transaction
        monitor, _ = run_once(make_config(fresh_db.url, database={"pool_max_size": 2}))
    finally:
        for impostor in impostors:
            impostor.close()
    connections = "rollout_db_connections"
    own = "rollout-monitor"
    assert value(monitor, connections, state="idle in transaction", application_name="other") == 3
    # Its own: the session counting, and another check's between two statements at most.
    mine = [value(monitor, connections, state=state, application_name=own) or 0 for state in STATES]
    assert 1 <= sum(mine) <= 2


def test_pool_never_exceeds_its_cap(fresh_db: FreshDatabase) -> None:
    monitor, _ = run_once(make_config(fresh_db.url, database={"pool_max_size": 2}))
    assert value(monitor, "rollout_monitor_pool_max_size") == 2
    connections = value(
        monitor, "rollout_db_connections", state="active", application_name="rollout-monitor"
    )
    assert connections is not None
    assert 1 <= connections <= 2


@pytest.fixture
def lock_on_users(fresh_db: FreshDatabase) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """After migration 001, an open transaction holding ACCESS EXCLUSIVE on users (a long DDL)."""
    migrated(fresh_db)
    conn = psycopg.connect(fresh_db.server.url(fresh_db.name), autocommit=False)
    conn.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def test_checks_skip_a_table_under_an_exclusive_lock_without_waiting(
    fresh_db: FreshDatabase, lock_on_users: psycopg.Connection[tuple[object, ...]]
) -> None:
    started = time.monotonic()
    monitor, ok = run_once(make_config(fresh_db.url))
    elapsed = time.monotonic() - started
    assert not ok
    assert elapsed < 3  # lock_timeout is 200 ms; nothing waited for the lock holder
    for check in ("backfill", "query_performance"):
        assert outcome_count(monitor, check, "skipped") == 1, check
        assert value(monitor, "rollout_check_skipped", check=check) == 1
    assert outcome_count(monitor, "schema", "success") == 1  # catalogs only
    assert value(monitor, "rollout_db_ddl_waiting_sessions") == 0
    waiting = (
        fresh_db.conn()
        .execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'rollout-monitor' AND wait_event_type = 'Lock'"
        )
        .fetchone()
    )
    assert waiting == (0,)


def test_lock_queue_behind_alter_table_is_reported_and_not_joined(fresh_db: FreshDatabase) -> None:
    """App transaction holds users; the migration's ALTER waits; a login queues behind it."""
    url = fresh_db.server.url(fresh_db.name)
    holder = psycopg.connect(url, autocommit=False)
    holder.execute("SELECT count(*) FROM users")  # ACCESS SHARE, held by the open transaction
    alter = threading.Thread(
        target=run_quietly, args=(url, 'ALTER TABLE users ADD COLUMN "threadsFullName" text')
    )
    login = threading.Thread(target=run_quietly, args=(url, "SELECT count(*) FROM users"))
    try:
        alter.start()
        wait_for_lock_waiters(fresh_db.conn(), 1)
        login.start()
        wait_for_lock_waiters(fresh_db.conn(), 2)
        monitor, _ = run_once(make_config(fresh_db.url))
    finally:
        holder.rollback()
        holder.close()
        alter.join(10)
        login.join(10)
    assert value(monitor, "rollout_db_ddl_waiting_sessions") == 1
    assert value(monitor, "rollout_db_sessions_blocked_by_ddl") == 1
    assert value(monitor, "rollout_db_lock_waiting_sessions") == 2
    longest = value(monitor, "rollout_db_longest_lock_wait_seconds")
    assert longest is not None
    assert longest > 0

    assert outcome_count(monitor, "query_performance", "skipped") == 1
