"""The lock plan against PostgreSQL's own answer (issue 19): each statement of several
migrations runs in a transaction on the suite's server, pg_locks says which tables it locked and
in which mode, pg_class.relfilenode whether it rewrote them; then it is rolled back and run for
real, so that the next statement finds what it expects. The plan is made beforehand, from the
SQL and the database's facts, as `rollout-monitor plan` makes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from databases import FreshDatabase
from monitoring import make_config

from monitor.assets import sql_file
from monitor.db.catalog import gather
from monitor.db.pool import Database
from monitor.lockplan.modes import spoken, strongest
from monitor.lockplan.plan import build
from monitor.lockplan.reading import read_statements

# Relations a plan names: tables (and partitioned ones), views, materialized views.
LOCKS = """
SELECT c.oid, c.relname, l.mode
FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND c.relkind IN ('r', 'p', 'v', 'm')
  AND c.relnamespace = 'public'::regnamespace
"""
FILES = """
SELECT oid, relname, relfilenode FROM pg_class
WHERE relkind IN ('r', 'p', 'm') AND relnamespace = 'public'::regnamespace
"""
ALREADY = {
    # What a migration needs in place before it: objects its statements alter or drop.
    "after_001": sql_file("migration_001").decode(),
    "constraints": sql_file("migration_001").decode()
    + """
    ALTER TABLE threads_tokens ADD CONSTRAINT tokens_user_fk
        FOREIGN KEY ("userId") REFERENCES users(id) NOT VALID;
    ALTER TABLE threads_tokens ADD CONSTRAINT tokens_expiry CHECK ("expiresAt" IS NOT NULL) NOT VALID;
    """,
}
MIGRATIONS = {
    "001": ("", sql_file("migration_001").decode()),
    "rewrites": (
        "",
        """
        SET lock_timeout = '3s';
        ALTER TABLE users ADD COLUMN "score" float8 DEFAULT random();
        ALTER TABLE users ADD COLUMN "seenAt" timestamptz DEFAULT now();
        ALTER TABLE users ADD COLUMN "seq" bigserial;
        ALTER TABLE users ADD COLUMN "twice" int GENERATED ALWAYS AS (2) STORED;
        ALTER TABLE users ALTER COLUMN "threadsUsername" TYPE varchar(200);
        ALTER TABLE users ALTER COLUMN "threadsUsername" TYPE text;
        ALTER TABLE threads_tokens ALTER COLUMN "expiresAt" TYPE timestamptz;
        ALTER TABLE users ALTER COLUMN "id" SET NOT NULL;
        ALTER TABLE users ALTER COLUMN "threadsUsername" TYPE varchar(300);
        """,
    ),
    "constraints": (
        "constraints",
        """
        ALTER TABLE threads_tokens VALIDATE CONSTRAINT tokens_user_fk;
        ALTER TABLE threads_tokens VALIDATE CONSTRAINT tokens_expiry;
        ALTER TABLE threads_tokens ADD CONSTRAINT tokens_user_fk2
            FOREIGN KEY ("userId") REFERENCES users(id);
        ALTER TABLE threads_tokens ADD CONSTRAINT tokens_user_fk3
            FOREIGN KEY ("userId") REFERENCES users(id) NOT VALID;
        ALTER TABLE users ADD CONSTRAINT users_name_set CHECK ("threadsUserId" <> '');
        ALTER TABLE users ADD CONSTRAINT users_name_unique UNIQUE ("threadsUserId");
        ALTER TABLE threads_tokens DROP CONSTRAINT tokens_user_fk;
        ALTER TABLE threads_tokens DROP CONSTRAINT tokens_expiry;
        """,
    ),
    "backfill": (
        "after_001",
        """
        UPDATE users SET "threadsFullName" = "threadsUsername" WHERE "threadsFullName" IS NULL;
        UPDATE threads_tokens SET "isValid" = false
            FROM users WHERE users.id = threads_tokens."userId" AND users."threadsUserId" = '';
        DELETE FROM threads_tokens WHERE "expiresAt" < now() - interval '1 year';
        INSERT INTO users (id, "threadsUserId", "threadsUsername", "updatedAt")
            VALUES ('new', 'new', 'new', now());
        """,
    ),
    "indexes": (
        "after_001",
        """
        DROP INDEX idx_users_threads_username;
        CREATE UNIQUE INDEX idx_users_one_threads_id ON users ("threadsUserId");
        REINDEX INDEX idx_threads_tokens_valid;
        ALTER INDEX idx_threads_tokens_valid RENAME TO idx_tokens_valid;
        CREATE INDEX ON threads_tokens ("issuedAt");
        """,
    ),
    "tables": (
        "after_001",
        """
        CREATE TABLE sessions (
            id text PRIMARY KEY,
            "userId" text NOT NULL REFERENCES users(id),
            "createdAt" timestamp(3) NOT NULL DEFAULT now()
        );
        CREATE TABLE audit (LIKE users);
        COMMENT ON TABLE users IS 'people who log in';
        ALTER TABLE users DISABLE TRIGGER ALL;
        ALTER TABLE users SET (fillfactor = 90);
        ALTER TABLE threads_tokens RENAME COLUMN "lastRefreshedAt" TO "refreshedAt";
        DROP TRIGGER trigger_update_token_validity ON threads_tokens;
        CREATE VIEW recent_logins AS SELECT id FROM users;
        TRUNCATE audit;
        DROP TABLE sessions;
        ALTER TABLE threads_tokens RENAME TO tokens;
        """,
    ),
}


@dataclass(frozen=True)
class Truth:
    """What PostgreSQL did: each relation's strongest lock (by the name it had before), the
    tables given a new file, and those dropped (pg_locks can no longer name them)."""

    locks: dict[str, str]
    rewrites: set[str]
    dropped: frozenset[str] = frozenset()


def observe(conn: psycopg.Connection[Any], statement: str) -> Truth:
    """Run the statement in a transaction, read pg_locks and relfilenode, roll back."""
    before = {oid: (name, node) for oid, name, node in conn.execute(FILES).fetchall()}
    names = {oid: name for oid, (name, _) in before.items()}  # a renamed one: as written
    with conn.transaction(force_rollback=True):
        conn.execute(statement.encode())
        held: dict[str, list[str]] = {}
        for oid, name, mode in conn.execute(LOCKS).fetchall():
            held.setdefault(names.get(oid, name), []).append(mode)
        after = {oid: node for oid, _, node in conn.execute(FILES).fetchall()}
    locks = {name: strongest(modes) for name, modes in held.items()}
    rewrites = {name for oid, (name, node) in before.items() if oid in after and after[oid] != node}
    dropped = frozenset(name for oid, (name, _) in before.items() if oid not in after)
    return Truth(locks, rewrites, dropped)


@pytest.fixture
def database(fresh_db: FreshDatabase) -> Iterator[Database]:
    config = make_config(fresh_db.url)
    db = Database(config.database, config.database_url, lambda _: None)
    db.open()
    try:
        yield db
    finally:
        db.close()


@pytest.mark.parametrize("name", list(MIGRATIONS))
def test_each_statement_locks_and_rewrites_what_the_plan_says(
    fresh_db: FreshDatabase, database: Database, name: str
) -> None:
    setup, text = MIGRATIONS[name]
    conn = fresh_db.conn()
    if setup:
        conn.execute(ALREADY[setup].encode())
    statements = read_statements(text)
    plan = build(name, statements, gather(database, "public", statements))
    wrong = []
    for planned in plan.statements:
        truth = observe(conn, planned.text)
        locks = {t: mode for t, mode in planned.locks if t not in truth.dropped}
        expected = Truth(locks, set(planned.rewrites), truth.dropped)
        if truth != expected:
            wrong.append(f"{planned.index} {planned.text[:60]!r}: {truth} != planned {expected}")
        conn.execute(planned.text.encode())
    assert wrong == []


CONCURRENTLY = """
CREATE INDEX CONCURRENTLY idx_users_name ON users ("threadsUsername");
REINDEX INDEX CONCURRENTLY idx_users_name;
DROP INDEX CONCURRENTLY idx_users_name;
"""
WAITING = """
SELECT c.relname, l.mode FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation
WHERE l.pid = %s AND NOT l.granted
"""


def waited_for(conn: psycopg.Connection[Any], pid: int) -> tuple[str, str] | None:
    """The lock the session waits for, once it waits (at most 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = conn.execute(WAITING, (pid,)).fetchone()
        if row is not None:
            return row[0], row[1]
        time.sleep(0.02)
    return None


def test_concurrently_cannot_run_in_prismas_transaction_and_takes_what_the_plan_says(
    fresh_db: FreshDatabase, database: Database
) -> None:
    """A CONCURRENTLY statement refuses a transaction block (SQLSTATE 25001, prisma/prisma#14456),
    so it cannot be observed in a rolled-back one: the lock it asks for is seen instead by
    making it wait behind a session that holds the same mode on the table."""
    conn, holder = fresh_db.conn(), fresh_db.conn()
    statements = read_statements(CONCURRENTLY)
    conn.execute(statements[0].text.encode())  # the index the others need, for the plan's facts
    plan = build("concurrently", statements, gather(database, "public", statements))
    conn.execute(statements[2].text.encode())
    for planned in plan.statements:
        assert planned.outside_transaction
        with pytest.raises(psycopg.errors.ActiveSqlTransaction), conn.transaction():
            conn.execute(planned.text.encode())
        ((table, mode),) = planned.locks
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {table} IN {spoken(mode)} MODE")
        runner = psycopg.connect(fresh_db.url, autocommit=True)
        thread = threading.Thread(target=runner.execute, args=(planned.text.encode(),))
        thread.start()
        try:
            assert waited_for(conn, runner.info.backend_pid) == (table, mode), planned.text
        finally:
            holder.execute("ROLLBACK")
            thread.join(10)
            runner.close()
