"""Lock queues by hand: statements in their own connections, and waiting for the waiters."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest


def run_quietly(url: str, statement: str) -> None:
    """Run one statement in its own connection (it may wait on a lock, or be cancelled)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


def wait_for_lock_waiters(conn: psycopg.Connection[Any], count: int) -> None:
    """Block until at least that many sessions wait on a lock (at most 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        found = row.fetchone()
        if found is not None and found[0] >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"never saw {count} sessions waiting on a lock")
