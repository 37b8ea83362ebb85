"""What the stand-in app does in the database when a user logs in with Threads."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

TOKEN_LIFETIME = "60 days"  # noqa: S105 - a duration, not a secret
_NOW = sql.SQL("(now() AT TIME ZONE 'UTC')")  # Prisma's DateTime holds UTC

_FIND_USER = 'SELECT id FROM users WHERE "threadsUserId" = %s'
_UPSERT_USER = """
INSERT INTO users (id, "threadsUserId", "threadsUsername", "updatedAt")
VALUES ('usr_' || %(threads_user_id)s, %(threads_user_id)s, %(username)s, now() AT TIME ZONE 'UTC')
ON CONFLICT ("threadsUserId") DO UPDATE SET "updatedAt" = EXCLUDED."updatedAt"
RETURNING id
"""
_NEW_COLUMNS = """
SELECT count(*) = 5 FROM pg_attribute
WHERE NOT attisdropped AND (
    (attrelid = to_regclass('users') AND attname IN ('threadsFullName', 'threadsProfilePic'))
    OR (attrelid = to_regclass('threads_tokens')
        AND attname IN ('issuedAt', 'lastRefreshedAt', 'isValid')))
"""
_FILL_PROFILE = (
    'UPDATE users SET "threadsFullName" = %(full_name)s, "threadsProfilePic" = %(picture)s'
    " WHERE id = %(user_id)s"
)


def known_user(conn: psycopg.Connection[Any], threads_user_id: str) -> bool:
    """Whether a user with this Threads id exists (the lookup a callback does first)."""
    return conn.execute(_FIND_USER, (threads_user_id,)).fetchone() is not None


def log_in(conn: psycopg.Connection[Any], threads_user_id: str) -> None:
    """Create or update the user and issue or refresh their token, in one transaction."""
    with conn.transaction():
        row = conn.execute(
            _UPSERT_USER,
            {"threads_user_id": threads_user_id, "username": f"demo_{threads_user_id}"},
        ).fetchone()
        if row is None:
            raise RuntimeError("the user upsert returned no id")
        migrated = conn.execute(_NEW_COLUMNS).fetchone() == (True,)
        if migrated:  # the new app version fills the new fields on every login
            conn.execute(_FILL_PROFILE, profile(row[0], threads_user_id))
        if conn.execute(refresh_token(migrated), (row[0],)).rowcount == 0:
            conn.execute(issue_token(migrated), (row[0], threads_user_id))


def profile(user_id: str, threads_user_id: str) -> dict[str, str]:
    """The profile fields the Threads API would return for the user."""
    return {
        "user_id": user_id,
        "full_name": f"Demo User {threads_user_id}",
        "picture": f"https://cdn.example.invalid/{threads_user_id}.jpg",
    }


def refresh_token(migrated: bool) -> sql.Composed:
    """Replace the user's token with a fresh one (and record the refresh after the migration)."""
    sets = [
        sql.SQL('"accessToken" = md5(random()::text)'),
        sql.SQL('"expiresAt" = {} + {}::interval').format(_NOW, sql.Literal(TOKEN_LIFETIME)),
        sql.SQL('"updatedAt" = {}').format(_NOW),
    ]
    if migrated:
        sets.append(sql.SQL('"lastRefreshedAt" = {}').format(_NOW))
    return sql.SQL('UPDATE threads_tokens SET {} WHERE "userId" = %s').format(
        sql.SQL(", ").join(sets)
    )


def issue_token(migrated: bool) -> sql.Composed:
    """Insert the user's first token (with its issue time after the migration)."""
    columns = ["id", "userId", "threadsUserId", "accessToken", "expiresAt", "updatedAt"]
    values = [
        sql.SQL("'tok_' || md5(random()::text)"),
        sql.Placeholder(),
        sql.Placeholder(),
        sql.SQL("md5(random()::text)"),
        sql.SQL("{} + {}::interval").format(_NOW, sql.Literal(TOKEN_LIFETIME)),
        _NOW,
    ]
    if migrated:
        columns.append("issuedAt")
        values.append(_NOW)
    return sql.SQL("INSERT INTO threads_tokens ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(values)
    )
