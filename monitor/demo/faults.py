"""The plan's failure modes, made real in the demo database: a trigger bug and a lock queue."""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

import psycopg

from monitor.assets import sql_file

# Risk 3: the trigger marks every token it writes the wrong way round.
BUGGY_TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION update_token_validity() RETURNS TRIGGER AS $$
BEGIN
    NEW."isValid" := NEW."expiresAt" <= (now() AT TIME ZONE 'UTC');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""
# The plan's "manual token refresh script": rewriting a row makes the trigger recompute it.
REVALIDATE_TOKENS = (
    'UPDATE threads_tokens SET "updatedAt" = "updatedAt"'
    ' WHERE "isValid" <> ("expiresAt" > (now() AT TIME ZONE \'UTC\'))'
)
APP_NAME = "threads-app"
MIGRATOR_NAME = "prisma-migrate"
RELEASE_ATTEMPTS = 20


def correct_trigger_function() -> bytes:
    """Migration 001's own CREATE FUNCTION statement, taken from its file."""
    found = re.search(
        rb"CREATE OR REPLACE FUNCTION.*?LANGUAGE plpgsql;", sql_file("migration_001"), re.S
    )
    if found is None:
        raise RuntimeError("migration_001.sql has no CREATE OR REPLACE FUNCTION statement")
    return found.group(0)


def break_trigger(conn: psycopg.Connection[Any]) -> None:
    """Replace the trigger's function with one that gets validity backwards."""
    conn.execute(BUGGY_TRIGGER_FUNCTION)


def fix_trigger(conn: psycopg.Connection[Any]) -> None:
    """Restore migration 001's function and recompute the tokens the bug wrote."""
    with conn.transaction():
        conn.execute(correct_trigger_function())
        conn.execute(REVALIDATE_TOKENS)


class LockQueue:
    """Risk 1, live: an app transaction holds `users`, the migration's ALTER queues behind it."""

    def __init__(self, url: str) -> None:
        self._holder = psycopg.connect(url, application_name=APP_NAME)
        try:
            self._migrator = psycopg.connect(url, application_name=MIGRATOR_NAME, autocommit=True)
        except psycopg.Error:
            self._holder.close()
            raise
        self._holder.execute("SELECT count(*) FROM users")  # ACCESS SHARE, idle in transaction
        self._waiter = threading.Thread(target=self._alter, name="demo-lock-queue", daemon=True)
        self._waiter.start()

    def _alter(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._migrator.execute("SET lock_timeout = 0")
            self._migrator.execute('ALTER TABLE users ADD COLUMN "demoLockQueue" TEXT')

    def release(self) -> None:
        """Cancel the waiting ALTER (it adds nothing), then end the app transaction."""
        for _ in range(RELEASE_ATTEMPTS):  # the ALTER may not have been sent yet: retry
            self._migrator.cancel_safe()
            self._waiter.join(timeout=0.5)
            if not self._waiter.is_alive():
                break
        else:  # never let the ALTER through: it would add its column for good
            pid = self._migrator.info.backend_pid
            self._holder.execute("SELECT pg_terminate_backend(%s)", (pid,))
            self._waiter.join(timeout=10)
        self._holder.rollback()
        self._holder.close()
        self._migrator.close()
