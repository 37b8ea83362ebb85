"""Tests of the test harness itself: the throwaway server and the SQL fixtures."""

from __future__ import annotations

from pathlib import Path

import fixtures
import psycopg
import pytest
from databases import SERVER_TIMEZONE, FreshDatabase
from psycopg.rows import TupleRow

from monitor.demo.postgres import PostgresServer, find_bindir

# Every column, index, non-internal trigger and function in schema public, as (kind, name).
SCHEMA_OBJECTS_SQL = """
SELECT 'column', c.relname || '.' || a.attname
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index', indexname FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger', t.tgname
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND NOT t.tgisinternal
UNION ALL
SELECT 'function', p.proname
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public'
"""

# UTC-correct counts: "expiresAt" holds UTC, so compare it with UTC "now".
TOKEN_COUNTS_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE "expiresAt" <= (now() AT TIME ZONE 'UTC')),
       count(*) FILTER (WHERE "expiresAt" > (now() AT TIME ZONE 'UTC'))
  FROM threads_tokens
"""
DRIFT_SQL = """
SELECT count(*) FILTER (WHERE "isValid" AND "expiresAt" <= (now() AT TIME ZONE 'UTC')),
       count(*) FILTER (WHERE NOT "isValid" AND "expiresAt" > (now() AT TIME ZONE 'UTC'))
  FROM threads_tokens
"""
MISSING_SQL = """
SELECT count(*) FILTER (WHERE "threadsFullName" IS NULL),
       count(*) FILTER (WHERE "threadsProfilePic" IS NULL)
  FROM users
"""
NAIVE_UNEXPIRED_SQL = 'SELECT count(*) FROM threads_tokens WHERE "expiresAt" > now()'
TRIGGER_VALID_SQL = 'SELECT count(*) FROM threads_tokens WHERE "isValid" AND "issuedAt" IS NOT NULL'
RECORDED_SQL = """
SELECT count(*) FROM _prisma_migrations WHERE migration_name = %s AND finished_at IS NOT NULL
"""


def schema_objects(conn: psycopg.Connection[TupleRow]) -> set[tuple[str, str]]:
    """Return the (kind, name) of every object in schema public."""
    return {(kind, name) for kind, name in conn.execute(SCHEMA_OBJECTS_SQL).fetchall()}


def one_row(conn: psycopg.Connection[TupleRow], query: str) -> tuple[object, ...]:
    """Run a query and return its single row."""
    row = conn.execute(query).fetchone()
    assert row is not None
    return tuple(row)


def test_server_answers_with_configured_settings(pg_server: PostgresServer) -> None:
    """The session server answers on 127.0.0.1 with the settings the harness promises."""
    with pg_server.connect() as conn:
        assert one_row(conn, "SELECT 1") == (1,)
        rows = conn.execute("SELECT name, setting FROM pg_settings").fetchall()
    settings: dict[str, str] = dict(rows)
    assert settings["TimeZone"] == SERVER_TIMEZONE
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["port"] == str(pg_server.port)
    assert settings["fsync"] == "off"
    assert settings["max_connections"] == "50"
    assert settings["shared_preload_libraries"] == "pg_stat_statements"


def test_show_timezone_is_kiritimati(pg_server: PostgresServer) -> None:
    """``SHOW TimeZone`` reports the non-UTC zone every test runs under."""
    with pg_server.connect() as conn:
        assert one_row(conn, "SHOW TimeZone") == ("Pacific/Kiritimati",)


def test_seed_counts_match_constants(fresh_db: FreshDatabase) -> None:
    """seed.sql holds exactly the documented rows, counted with UTC-correct SQL."""
    conn = fresh_db.conn()
    assert one_row(conn, "SELECT count(*) FROM users") == (fixtures.USERS_TOTAL,)
    with_token = one_row(conn, 'SELECT count(DISTINCT "userId") FROM threads_tokens')
    assert with_token == (fixtures.USERS_WITH_TOKEN,)
    assert one_row(conn, TOKEN_COUNTS_SQL) == (
        fixtures.TOKENS_TOTAL,
        fixtures.TOKENS_EXPIRED,
        fixtures.TOKENS_UNEXPIRED,
    )


@pytest.mark.parametrize(
    ("timezone", "naive_unexpired"),
    [("Pacific/Kiritimati", 0), ("Pacific/Pago_Pago", 10)],
)
def test_seed_catches_naive_now_comparisons(
    fresh_db: FreshDatabase, timezone: str, naive_unexpired: int
) -> None:
    """Comparing "expiresAt" with now() unconverted is wrong; converting to UTC is right."""
    conn = fresh_db.conn()
    conn.execute("SELECT set_config('TimeZone', %s, false)", (timezone,))
    assert one_row(conn, NAIVE_UNEXPIRED_SQL) == (naive_unexpired,)
    assert naive_unexpired != fixtures.TOKENS_UNEXPIRED
    assert one_row(conn, TOKEN_COUNTS_SQL)[2] == fixtures.TOKENS_UNEXPIRED


def test_migration_001_creates_exactly_its_11_objects(fresh_db: FreshDatabase) -> None:
    """migration_001.sql adds the 11 named objects and nothing else."""
    conn = fresh_db.conn()
    before = schema_objects(conn)
    fixtures.apply(conn, "migration_001")
    added = schema_objects(conn) - before
    assert added == fixtures.MIGRATION_001_OBJECTS
    assert len(added) == 11


def test_partial_migration_creates_3_objects(fresh_db: FreshDatabase) -> None:
    """migration_001_partial.sql adds only its 3 objects."""
    conn = fresh_db.conn()
    before = schema_objects(conn)
    fixtures.apply(conn, "migration_001_partial")
    assert schema_objects(conn) - before == fixtures.PARTIAL_001_OBJECTS


def test_rollback_001_removes_all_11_objects(fresh_db: FreshDatabase) -> None:
    """The plan's rollback SQL returns the schema to exactly its pre-migration state."""
    conn = fresh_db.conn()
    before = schema_objects(conn)
    fixtures.apply(conn, "migration_001")
    fixtures.apply(conn, "rollback_001")
    assert schema_objects(conn) == before


def test_counts_after_migration_and_seed_after(fresh_db: FreshDatabase) -> None:
    """Without a backfill 4 expired tokens stay valid; the trigger marks new tokens right."""
    conn = fresh_db.conn()
    fixtures.apply(conn, "migration_001")
    assert one_row(conn, DRIFT_SQL) == (
        fixtures.MIGRATED_STALE_VALID,
        fixtures.MIGRATED_WRONGLY_INVALID,
    )
    assert one_row(conn, MISSING_SQL) == (
        fixtures.MIGRATED_MISSING_FULL_NAME,
        fixtures.MIGRATED_MISSING_PROFILE_PIC,
    )
    fixtures.apply(conn, "seed_after")
    assert one_row(conn, "SELECT count(*) FROM users") == (fixtures.AFTER_USERS_TOTAL,)
    assert one_row(conn, TOKEN_COUNTS_SQL) == (
        fixtures.AFTER_TOKENS_TOTAL,
        fixtures.AFTER_TOKENS_EXPIRED,
        fixtures.AFTER_TOKENS_UNEXPIRED,
    )
    assert one_row(conn, MISSING_SQL) == (
        fixtures.AFTER_MISSING_FULL_NAME,
        fixtures.AFTER_MISSING_PROFILE_PIC,
    )
    assert one_row(conn, DRIFT_SQL) == (fixtures.AFTER_STALE_VALID, fixtures.AFTER_WRONGLY_INVALID)
    assert one_row(conn, TRIGGER_VALID_SQL) == (2,)


def test_prisma_record_marks_migration_finished(fresh_db: FreshDatabase) -> None:
    """prisma_record_001.sql records migration 001 as finished in _prisma_migrations."""
    conn = fresh_db.conn()
    fixtures.apply(conn, "prisma_record_001")
    row = conn.execute(RECORDED_SQL, (fixtures.MIGRATION_001_NAME,)).fetchone()
    assert row == (1,)


def test_stop_server_only_then_start_again_on_same_port() -> None:
    """The database can go away and come back on the same port with its data."""
    with PostgresServer(timezone="Pacific/Pago_Pago") as server:
        port = server.port
        with server.connect() as conn:
            assert one_row(conn, "SHOW TimeZone") == ("Pacific/Pago_Pago",)
            conn.execute("CREATE TABLE survivor (id int)")
        server.stop_server_only()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url("postgres"), connect_timeout=2).close()
        server.start_again()
        assert server.port == port
        with server.connect() as conn:
            assert one_row(conn, "SELECT count(*) FROM survivor") == (0,)
        server.restart()
        with psycopg.connect(server.url("postgres")) as conn:
            assert one_row(conn, "SHOW port") == (str(port),)
        tmpdir = server.log_path.parent
    assert not tmpdir.exists()


def test_url_quotes_credentials(pg_server: PostgresServer) -> None:
    """url() builds a postgresql:// URL on 127.0.0.1 with percent-encoded credentials."""
    port = pg_server.port
    assert pg_server.url("app") == f"postgresql://postgres@127.0.0.1:{port}/app"
    expected = f"postgresql://mon:p%40ss%3A%2Fw@127.0.0.1:{port}/app"
    assert pg_server.url("app", "mon", "p@ss:/w") == expected


def test_bad_pg_bindir_names_the_problem(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PG_BINDIR without initdb and pg_ctl is reported, not silently ignored."""
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"PG_BINDIR=.* lacks executable initdb and pg_ctl"):
        find_bindir()
