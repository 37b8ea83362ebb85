"""Large tables: drift, backfill and logins estimated from a block sample above the threshold.

200k users and 200k tokens generated on top of migration 001, values interleaved so that every
page holds a fair share of each case. Exact counts are computed here with plain SQL; the
monitor's estimates must land within ESTIMATE_TOLERANCE of them.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import fixtures
import psycopg
import pytest
from databases import FreshDatabase
from grants import grant_monitoring_role
from monitoring import make_config, outcome_count, run_once, value
from prometheus_client import generate_latest
from psycopg import sql

from monitor.checks.counting.estimates import plan_for, read_plan, table_size
from monitor.config.schema import LargeTablesSettings
from monitor.daemon.service import Monitor
from monitor.db.pool import Database
from monitor.output.redact import Redactor

ROWS = 200_000
SAMPLE_ROWS = 10_000
# Relative error allowed on an estimated count. With ~10k sampled rows and the cases spread
# over every page, the error is about 1%; 5% leaves room for page-to-page variation.
ESTIMATE_TOLERANCE = 0.05
# SYSTEM sampling picks pages, not rows: the rows read vary with how many pages were drawn
# (~110 of ~2200 here, a standard deviation near 10%).
RATIO_TOLERANCE = 0.3
ESTIMATING = {"estimate_above_rows": 1_000, "sample_rows": SAMPLE_ROWS}
ESTIMATED_CHECKS = ("drift", "backfill", "activity")
TOKENS = fixtures.TOKENS_TOTAL

GENERATE = f"""
INSERT INTO users (id, "threadsUserId", "updatedAt", "threadsFullName", "threadsProfilePic")
SELECT 'gen-user-' || i, 'gen-threads-' || i, now() AT TIME ZONE 'UTC',
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'Name ' || i END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'https://pic/' || i END
FROM generate_series(1, {ROWS}) AS i;

-- Written behind the trigger's back, as the additive migration leaves old rows: every 5th
-- token expired but still valid, every 50th (offset 1) unexpired but flagged invalid.
ALTER TABLE threads_tokens DISABLE TRIGGER trigger_update_token_validity;
INSERT INTO threads_tokens (id, "userId", "threadsUserId", "accessToken", "expiresAt",
                            "updatedAt", "isValid", "issuedAt")
SELECT 'gen-token-' || i, 'gen-user-' || i, 'gen-threads-' || i, 'secret',
       (now() AT TIME ZONE 'UTC') + CASE WHEN i % 5 = 0 THEN -interval '1 day'
                                         ELSE interval '30 days' END,
       now() AT TIME ZONE 'UTC',
       i % 50 <> 1,
       (now() AT TIME ZONE 'UTC') - CASE WHEN i % 10 < 3 THEN interval '1 minute'
                                         ELSE interval '10 days' END
FROM generate_series(1, {ROWS}) AS i;
ALTER TABLE threads_tokens ENABLE TRIGGER trigger_update_token_validity;
"""

EXACT = """
SELECT
  (SELECT count(*) FROM users) AS users,
  (SELECT count(*) FROM users WHERE "threadsFullName" IS NULL) AS missing_full_name,
  (SELECT count(*) FROM users WHERE "threadsProfilePic" IS NULL) AS missing_profile_pic,
  (SELECT count(*) FROM threads_tokens) AS tokens,
  (SELECT count(*) FROM threads_tokens
    WHERE "isValid" AND "expiresAt" <= now() AT TIME ZONE 'UTC') AS stale_valid,
  (SELECT count(*) FROM threads_tokens
    WHERE NOT "isValid" AND "expiresAt" > now() AT TIME ZONE 'UTC') AS wrongly_invalid,
  (SELECT count(DISTINCT "userId") FROM threads_tokens
    WHERE "issuedAt" >= %(since)s OR "lastRefreshedAt" >= %(since)s) AS logged_in,
  (SELECT count(*) FROM users WHERE "threadsFullName" IS NULL AND id IN (
    SELECT "userId" FROM threads_tokens
    WHERE "issuedAt" >= %(since)s OR "lastRefreshedAt" >= %(since)s)) AS logged_in_missing
"""

# (metric, labels, key in EXACT) for every count the three checks estimate.
COUNTS: tuple[tuple[str, dict[str, str], str], ...] = (
    ("rollout_users", {}, "users"),
    ("rollout_users_missing_field", {"column": "threadsFullName"}, "missing_full_name"),
    ("rollout_users_missing_field", {"column": "threadsProfilePic"}, "missing_profile_pic"),
    ("rollout_tokens", {}, "tokens"),
    ("rollout_token_validity_drift", {"kind": "stale_valid"}, "stale_valid"),
    ("rollout_token_validity_drift", {"kind": "wrongly_invalid"}, "wrongly_invalid"),
    ("rollout_users_logged_in_since_migration", {}, "logged_in"),
    (
        "rollout_users_logged_in_since_migration_missing_field",
        {"column": "threadsFullName"},
        "logged_in_missing",
    ),
)


@pytest.fixture
def large(fresh_db: FreshDatabase) -> psycopg.Connection[tuple[Any, ...]]:
    """Migration 001 and 200k generated users and tokens, vacuumed and analyzed."""
    conn = fresh_db.conn()
    fixtures.apply(conn, "migration_001")
    conn.execute(GENERATE.encode())
    conn.execute("VACUUM ANALYZE users")
    conn.execute("VACUUM ANALYZE threads_tokens")
    return conn


def since() -> datetime:
    """When the migration was applied, for these tests: an hour ago, naive UTC."""
    return (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)


def exact_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Every count, exactly, with plain SQL."""
    cursor = conn.execute(EXACT.encode(), {"since": since()})
    names = [column.name for column in cursor.description or ()]
    row = cursor.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def monitor_on(fresh_db: FreshDatabase, **large_tables: int) -> Monitor:
    """One run of every check, the migration applied an hour ago."""
    config = make_config(
        fresh_db.url,
        large_tables=large_tables,
        migration={"applied_at": since().replace(tzinfo=UTC).isoformat()},
    )
    monitor, ok = run_once(config)
    assert ok
    return monitor


def test_counts_on_a_large_table_are_estimated_within_tolerance(
    fresh_db: FreshDatabase, large: psycopg.Connection[Any]
) -> None:
    exact = exact_counts(large)
    assert exact["wrongly_invalid"] > 0  # the case that pages must show in the estimate
    monitor = monitor_on(fresh_db, **ESTIMATING)
    for metric, labels, key in COUNTS:
        estimate = value(monitor, metric, **labels)
        assert estimate is not None, metric
        assert estimate == round(estimate), (metric, estimate)  # whole rows
        assert abs(estimate - exact[key]) <= ESTIMATE_TOLERANCE * exact[key], (
            metric,
            labels,
            estimate,
            exact[key],
        )


def test_estimated_checks_say_so_and_how_much_they_read(
    fresh_db: FreshDatabase, large: psycopg.Connection[Any]
) -> None:
    monitor = monitor_on(fresh_db, **ESTIMATING)
    expected_ratio = SAMPLE_ROWS / ROWS
    for check in ESTIMATED_CHECKS:
        assert outcome_count(monitor, check, "success") == 1, check
        assert value(monitor, "rollout_check_estimated", check=check) == 1, check
        ratio = value(monitor, "rollout_check_sample_ratio", check=check)
        assert ratio is not None, check
        assert abs(ratio - expected_ratio) <= RATIO_TOLERANCE * expected_ratio, (check, ratio)
    # Three checks export samples of each family: the exposition still names it once.
    text = generate_latest(monitor.registry).decode()
    for family in ("rollout_check_estimated", "rollout_check_sample_ratio"):
        assert text.count(f"# TYPE {family} gauge") == 1, family


def test_below_the_threshold_counts_stay_exact(
    fresh_db: FreshDatabase, large: psycopg.Connection[Any]
) -> None:
    """A threshold above these 200k rows: every count is exact."""
    exact = exact_counts(large)
    monitor = monitor_on(fresh_db, estimate_above_rows=250_000)
    for metric, labels, key in COUNTS:
        assert value(monitor, metric, **labels) == exact[key], (metric, labels)
    for check in ESTIMATED_CHECKS:
        assert value(monitor, "rollout_check_estimated", check=check) == 0, check
        assert value(monitor, "rollout_check_sample_ratio", check=check) == 1, check


def test_markers_are_exported_before_the_migration_is_known(fresh_db: FreshDatabase) -> None:
    """Activity has nothing to estimate before the migration: it says it is exact."""
    monitor, _ = run_once(make_config(fresh_db.url))
    assert value(monitor, "rollout_check_estimated", check="activity") == 0
    assert value(monitor, "rollout_check_sample_ratio", check="activity") == 1
    assert value(monitor, "rollout_check_estimated", check="drift") is None  # not applicable


def test_a_never_analyzed_table_is_sized_from_its_live_tuples(fresh_db: FreshDatabase) -> None:
    """reltuples is -1 before the first ANALYZE; a big bulk load is still seen as large."""
    conn = fresh_db.conn()
    conn.execute(
        "CREATE TABLE bulk WITH (autovacuum_enabled = false) AS"
        f" SELECT i FROM generate_series(1, {ROWS}) AS i"
    )
    conn.execute("CREATE TABLE tiny WITH (autovacuum_enabled = false) AS SELECT 1 AS i")
    conn.execute("SELECT pg_stat_force_next_flush()")
    settings = LargeTablesSettings(estimate_above_rows=1_000, sample_rows=SAMPLE_ROWS)
    db = Database(make_config(fresh_db.url).database, fresh_db.url, lambda up: None)
    db.open()
    try:
        with db.session() as session:
            bulk, tiny = (
                table_size(session, "public", "bulk"),
                table_size(session, "public", "tiny"),
            )
            plan = plan_for(session, "public", "bulk", settings)
            count = sql.SQL("SELECT count(*) AS n FROM {}").format(
                plan.relation(sql.Identifier("public", "bulk"))
            )
            sampled = session.row(count)["n"]
    finally:
        db.close()
    assert bulk.reltuples == -1
    assert tiny.reltuples == -1
    assert bulk.rows == ROWS
    assert read_plan(tiny, settings).estimated is False
    assert plan.estimated
    assert plan.rows_known is False
    # Never analyzed: the table's rows come from the sample itself (rows / share of pages).
    assert abs(plan.total(sampled) - ROWS) <= RATIO_TOLERANCE * ROWS


def test_sizes_are_read_without_a_lock_while_alter_table_holds_the_table(
    fresh_db: FreshDatabase, large: psycopg.Connection[Any]
) -> None:
    """The catalog answers under ACCESS EXCLUSIVE; the checks skip instead of waiting."""
    holder = psycopg.connect(fresh_db.url, autocommit=False)
    holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    holder.execute("LOCK TABLE threads_tokens IN ACCESS EXCLUSIVE MODE")
    config = make_config(fresh_db.url, large_tables=ESTIMATING)
    db = Database(config.database, fresh_db.url, lambda up: None)
    db.open()
    try:
        with db.session() as session:
            sizes = [table_size(session, "public", t) for t in ("users", "threads_tokens")]
            held = session.rows(OWN_TABLE_LOCKS)
        monitor, _ = run_once(config)
    finally:
        db.close()
        holder.rollback()
        holder.close()
    assert [size.rows for size in sizes] == [ROWS + fixtures.USERS_TOTAL, ROWS + TOKENS]
    assert held == []  # not granted, not awaited: no lock at all on either table
    for check in ESTIMATED_CHECKS[:2]:
        assert outcome_count(monitor, check, "skipped") == 1, check
    waited = large.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'rollout-monitor' AND wait_event_type = 'Lock'"
    ).fetchone()
    assert waited == (0,)


# Locks this session holds or awaits on users or threads_tokens.
OWN_TABLE_LOCKS = sql.Composed(
    [
        sql.SQL(
            "SELECT c.relname, l.mode, l.granted"
            " FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation"
            " WHERE l.pid = pg_backend_pid() AND c.relname IN ('users', 'threads_tokens')"
        )
    ]
)


RARE = 7  # wrongly invalid tokens among 200k: a 10k-row sample expects 0.35 of them


def rare_wrongly_invalid(conn: psycopg.Connection[Any]) -> None:
    """As right after the migration, every generated token "isValid" = true (the column's
    default: expired ones stale_valid), but RARE unexpired ones flagged invalid, spread over the
    table (a subtle trigger bug)."""
    conn.execute("ALTER TABLE threads_tokens DISABLE TRIGGER trigger_update_token_validity")
    conn.execute("""UPDATE threads_tokens SET "isValid" = true WHERE id LIKE 'gen-token-%'""")
    conn.execute(
        'UPDATE threads_tokens SET "isValid" = false WHERE id = ANY(%s)',
        # every 28,570th from the first: i % 5 == 1, so none of the expired ones
        [[f"gen-token-{i}" for i in range(1, ROWS, 28_570)][:RARE]],
    )
    conn.execute("ALTER TABLE threads_tokens ENABLE TRIGGER trigger_update_token_validity")
    conn.execute("VACUUM ANALYZE threads_tokens")


def test_rare_wrongly_invalid_tokens_on_a_large_table_are_counted_exactly(
    fresh_db: FreshDatabase, large: psycopg.Connection[Any]
) -> None:
    """The plan's Risk 3 at scale: 7 users locked out among 200k tokens. The sample alone all but
    always reports 0 (or 20 when a page it reads holds one); the invalid tokens are few, so the
    count through the migration's "isValid" index is cheap and exact."""
    rare_wrongly_invalid(large)
    assert exact_counts(large)["wrongly_invalid"] == RARE
    monitor = monitor_on(fresh_db, **ESTIMATING)
    assert value(monitor, "rollout_token_validity_drift", kind="wrongly_invalid") == RARE
    assert value(monitor, "rollout_token_validity_drift_exact", kind="wrongly_invalid") == 1
    assert value(monitor, "rollout_token_validity_drift_exact", kind="stale_valid") == 0
    assert value(monitor, "rollout_check_estimated", check="drift") == 1


def test_an_exact_count_too_costly_for_the_budget_stays_estimated(
    fresh_db: FreshDatabase, large: psycopg.Connection[Any]
) -> None:
    """large_tables.exact_max_cost 0: the planner's cost is never that low, the sample decides."""
    rare_wrongly_invalid(large)
    monitor = monitor_on(fresh_db, **ESTIMATING, exact_max_cost=0)
    assert value(monitor, "rollout_token_validity_drift_exact", kind="wrongly_invalid") == 0
    estimate = value(monitor, "rollout_token_validity_drift", kind="wrongly_invalid")
    assert estimate is not None
    assert estimate != RARE  # the sample's scaled count: 0, or a multiple of ~20


# The exact count through the "isValid" index never cheap enough: only the sweep can be exact.
SWEEPING = {**ESTIMATING, "exact_max_cost": 0, "sweep_blocks": 500, "sweep_period": "3m"}


def runs_per_pass(conn: psycopg.Connection[Any], blocks: int, period: float, every: float) -> int:
    """Drift runs one pass of the sweep takes: slices of `blocks` (and the final empty one)."""
    row = conn.execute("SELECT relpages FROM pg_class WHERE relname = 'threads_tokens'").fetchone()
    assert row is not None
    relpages: int = row[0]
    slices = math.ceil(relpages / blocks) + 1
    return math.ceil(slices / math.ceil(slices * every / period))


def drift_values(monitor: Monitor) -> tuple[float | None, ...]:
    """wrongly_invalid, stale_valid, whether each is exact, and the token total."""
    return (
        value(monitor, "rollout_token_validity_drift", kind="wrongly_invalid"),
        value(monitor, "rollout_token_validity_drift", kind="stale_valid"),
        value(monitor, "rollout_token_validity_drift_exact", kind="wrongly_invalid"),
        value(monitor, "rollout_token_validity_drift_exact", kind="stale_valid"),
        value(monitor, "rollout_tokens"),
    )


def test_the_sweep_makes_rare_wrongly_invalid_tokens_exact_within_one_pass(
    fresh_db: FreshDatabase, large: psycopg.Connection[Any]
) -> None:
    """Finding 10 at scale: the sample misses RARE locked-out users and the index count is too
    costly; the sweep reads the whole table a few slices per run, and once its pass is done every
    drift count is exact. Tokens flagged invalid later are counted within one more pass."""
    rare_wrongly_invalid(large)
    per_pass = runs_per_pass(large, 500, 180.0, 60.0)
    assert per_pass >= 2  # the pass really is spread over runs
    config = make_config(fresh_db.url, large_tables=SWEEPING)
    monitor = Monitor(config, Redactor())
    try:
        for _ in range(per_pass - 1):
            assert monitor.once()[1]
        assert value(monitor, "rollout_token_validity_drift_exact", kind="wrongly_invalid") == 0
        assert value(monitor, "rollout_check_estimated", check="drift") == 1
        progress = value(monitor, "rollout_token_validity_sweep_progress_ratio")
        assert progress is not None
        assert 0 < progress < 1
        started = time.time()
        assert monitor.once()[1]
        exact = exact_counts(large)
        expected = (RARE, exact["stale_valid"], 1, 1, exact["tokens"])
        assert drift_values(monitor) == expected
        assert value(monitor, "rollout_check_estimated", check="drift") == 0
        assert value(monitor, "rollout_token_validity_sweep_progress_ratio") == 0
        oldest = value(monitor, "rollout_token_validity_sweep_oldest_timestamp_seconds")
        assert oldest is not None
        assert oldest < started

        large.execute("ALTER TABLE threads_tokens DISABLE TRIGGER trigger_update_token_validity")
        large.execute(  # 100 more users locked out: unexpired tokens (i % 5 == 2) flagged invalid
            """UPDATE threads_tokens SET "isValid" = false WHERE id = ANY(%s)""",
            [[f"gen-token-{i}" for i in range(2, ROWS, ROWS // 100)][:100]],
        )
        large.execute("ALTER TABLE threads_tokens ENABLE TRIGGER trigger_update_token_validity")
        for _ in range(per_pass):
            assert monitor.once()[1]
        wrongly = value(monitor, "rollout_token_validity_drift", kind="wrongly_invalid")
        assert wrongly == RARE + 100 == exact_counts(large)["wrongly_invalid"]
    finally:
        monitor.close()


def test_without_select_on_ctid_the_sweep_is_off_and_the_sample_stands(
    fresh_db: FreshDatabase, large: psycopg.Connection[Any]
) -> None:
    """A role granted by the earlier script (no ctid): drift still succeeds, estimated."""
    reader = f"{fresh_db.name}_sweeper"
    large.execute(f"CREATE ROLE {reader} LOGIN PASSWORD 'reader-pw-123'")
    grant_monitoring_role(fresh_db.url, reader)
    large.execute(f"REVOKE SELECT (ctid) ON threads_tokens FROM {reader}")
    url = fresh_db.server.url(fresh_db.name, user=reader, password="reader-pw-123")
    settings = {**SWEEPING, "sweep_period": "1m"}  # a whole pass in one run, were it allowed
    monitor, _ = run_once(make_config(url, large_tables=settings))
    assert outcome_count(monitor, "drift", "success") == 1
    assert value(monitor, "rollout_token_validity_drift_exact", kind="wrongly_invalid") == 0
    assert value(monitor, "rollout_token_validity_sweep_progress_ratio") is None
    with_grant, _ = run_once(make_config(fresh_db.url, large_tables=settings))
    assert value(with_grant, "rollout_token_validity_drift_exact", kind="wrongly_invalid") == 1
