"""The demo database: the app's pre-migration schema with realistic users, and migration 001."""

from __future__ import annotations

from typing import Any

import psycopg

from monitor.assets import sql_file
from monitor.config.names import PRISMA_MIGRATE_LOCK

MIGRATION_NAME = "001_threads_oauth_enhancements"
TOKEN_SHARE = 0.9  # users who have logged in at least once and so hold a token
# The demo's own DDL gives up instead of queueing for ever behind a held lock (see LockQueue).
DDL_LOCK_TIMEOUT = "5s"

# Users who signed up over the last 90 days; Prisma stores UTC in timestamp(3) columns.
_SEED_USERS = """
INSERT INTO users (id, email, "threadsUserId", "threadsUsername", "createdAt", "updatedAt")
SELECT 'usr_' || n, 'user' || n || '@example.invalid', 'tu_' || n, 'demo_user_' || n,
       (now() AT TIME ZONE 'UTC') - random() * interval '90 days',
       (now() AT TIME ZONE 'UTC') - random() * interval '30 days'
FROM generate_series(1, %(users)s) AS n
"""

# Tokens expire 60 days after issue: some already expired, most still valid.
_SEED_TOKENS = """
INSERT INTO threads_tokens (id, "userId", "threadsUserId", "accessToken", "expiresAt", "updatedAt")
SELECT 'tok_' || n, 'usr_' || n, 'tu_' || n, md5(random()::text),
       (now() AT TIME ZONE 'UTC') + (random() * 90 - 30) * interval '1 day',
       (now() AT TIME ZONE 'UTC') - random() * interval '30 days'
FROM generate_series(1, %(users)s) AS n
WHERE random() < %(token_share)s
"""

_PRISMA_START = """
INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count)
VALUES (gen_random_uuid()::text, md5(%(name)s) || md5(%(name)s), %(name)s, now(), 0)
RETURNING id
"""
_PRISMA_FINISH = (
    "UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = %s"
)
# What `prisma migrate resolve --rolled-back` records before a migration is applied again.
_PRISMA_RESOLVE = (
    "UPDATE _prisma_migrations SET rolled_back_at = now()"
    " WHERE migration_name = %s AND rolled_back_at IS NULL"
)


def create(conn: psycopg.Connection[Any], users: int) -> None:
    """The pre-migration schema and `users` users, most of them with a token."""
    with conn.transaction():
        conn.execute(sql_file("schema_before"))
        conn.execute(_SEED_USERS, {"users": users})
        conn.execute(_SEED_TOKENS, {"users": users, "token_share": TOKEN_SHARE})
    conn.execute("ANALYZE")


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Apply migration 001 the way `prisma migrate deploy` does: under its advisory lock (held
    by the session for the whole deploy), bookkeeping included. `conn` is in autocommit."""
    conn.execute("SELECT pg_advisory_lock(%s)", (PRISMA_MIGRATE_LOCK,))
    try:
        with conn.transaction():
            conn.execute(_PRISMA_RESOLVE, (MIGRATION_NAME,))
            row = conn.execute(_PRISMA_START, {"name": MIGRATION_NAME}).fetchone()
        if row is None:
            raise RuntimeError("_prisma_migrations returned no id")
        with conn.transaction():
            limit_lock_wait(conn)
            conn.execute(sql_file("migration_001"))
            conn.execute(_PRISMA_FINISH, (row[0],))
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (PRISMA_MIGRATE_LOCK,))


def roll_back(conn: psycopg.Connection[Any]) -> None:
    """The deployment plan's immediate schema rollback, verbatim."""
    with conn.transaction():
        limit_lock_wait(conn)
        conn.execute(sql_file("rollback_001"))


def limit_lock_wait(conn: psycopg.Connection[Any]) -> None:
    """Make this transaction's DDL fail with LockNotAvailable rather than wait past the limit."""
    conn.execute(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")


def applied(conn: psycopg.Connection[Any]) -> bool:
    """Whether migration 001's trigger function exists (the last object it creates)."""
    row = conn.execute("SELECT to_regproc('update_token_validity') IS NOT NULL").fetchone()
    return bool(row and row[0])
