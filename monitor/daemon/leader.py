"""One poller for N monitors: the replica holding a PostgreSQL advisory lock leads.

Several monitors watch one database when rollout-monitor runs as a sidecar in every app pod. The
leader runs the database checks; every replica probes its own pod's callback. The lock is
session-level, tried with pg_try_advisory_lock (never waited for), on a connection of the pool
taken out of it for good, so that the pool cap still bounds the replica's sessions: the leader's
pool shrinks by one, a follower's pool is a single connection. When the leader's session ends
(the process died, the connection broke), the server releases the lock and the next follower to
try takes it, within one `leader.interval`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from monitor.db.pool import Database, is_connection_failure

log = structlog.get_logger("monitor.daemon.leader")
HOLDER_SECONDS = 60.0  # how long a follower's idea of who leads stands before it asks again


def lock_key(migration: str) -> int:
    """The lock's key, of this project's own (not prisma migrate's): from the migration's name,
    so that monitors of two migrations on one database each have their leader."""
    digest = hashlib.sha256(f"rollout-monitor leader {migration}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class Holder:
    """The leader as a follower sees it: its lock session's client address and backend PID."""

    client_addr: str | None
    pid: int

    def describe(self) -> str:
        """E.g. '10.1.2.3 (PostgreSQL backend 4242)'."""
        where = self.client_addr or "a local socket"
        return f"{where} (PostgreSQL backend {self.pid})"


class Leadership:
    """Whether this replica leads; `poll` tries to lead, or checks that it still does.

    Three states: leading (the lock is ours), following (another session holds it: we saw it),
    and unknown (the server did not answer). An unknown replica cannot tell whether anyone
    leads, so it shows the database's side as one that cannot reach it: the checks run and
    fail, and rollout_postgres_up says 0 rather than going absent.
    """

    def __init__(
        self,
        db: Database,
        key: int,
        pool_max_size: int,
        on_change: Callable[[bool], None],
    ) -> None:
        self._db = db
        self._key = key
        self._pool_max_size = pool_max_size
        self._on_change = on_change
        self._held: psycopg.Connection[Any] | None = None
        self._following = False
        self._holder_at = 0.0
        self._lock = threading.Lock()
        self.holder: Holder | None = None  # the leader seen at the last poll (followers)
        self.own_pid: int | None = None  # the backend PID of this replica's lock session

    @property
    def leading(self) -> bool:
        """Whether this replica holds the lock (as of the last poll)."""
        return self._held is not None

    @property
    def following(self) -> bool:
        """Whether another session held the lock at the last poll (not: the server was down)."""
        return self._following

    def start(self) -> None:
        """The follower's shape (a pool of one) before the first poll."""
        self._db.resize(1)

    def poll(self) -> None:
        """Lead if the lock is free; notice when the lock session is gone."""
        with self._lock:
            if self._held is not None:
                if self._db.still_holds(self._held):
                    return
                self._lose()
            try:
                self._try()
            except Exception as error:  # no answer: nobody known to lead
                level = log.info if is_connection_failure(error) else log.warning
                level("leader_poll_failed", error=type(error).__name__)
                self._follow(False)

    def _try(self) -> None:
        conn = self._db.try_lock(self._key)
        if conn is None:
            if not self._following:
                self.holder = None  # newly following: ask who leads now
            self._look_for_holder()
            self._follow(True)
            return
        self._following = False
        self._held = conn
        self.own_pid = conn.info.backend_pid
        self.holder = None
        self._db.resize(self._pool_max_size - 1)
        log.info("leading", backend_pid=self.own_pid)
        self._on_change(True)

    def _look_for_holder(self) -> None:
        """Who leads, for the status page: asked again at most every HOLDER_SECONDS (pg_locks
        and pg_stat_activity cost more than the try itself, on every follower)."""
        now = time.monotonic()
        if self.holder is not None and now - self._holder_at < HOLDER_SECONDS:
            return
        row = self._db.lock_holder(self._key)
        self.holder = None if row is None else Holder(row["client_addr"], int(row["pid"]))
        self._holder_at = now

    def _follow(self, following: bool) -> None:
        if following != self._following:
            self._following = following
            self._on_change(False)

    def _lose(self) -> None:
        held, self._held = self._held, None
        if held is not None and not held.closed:
            held.close()
        self.own_pid = None
        self._db.resize(1)
        log.warning("leadership_lost")

    def close(self) -> None:
        """Release the lock (its session closes): a follower takes over at its next poll."""
        with self._lock:
            held, self._held = self._held, None
            if held is not None:
                held.close()


class LeaderGauge:
    """rollout_monitor_leader: 1 on the replica that runs the database checks, else 0 (a
    monitor without leader election runs them: 1)."""

    def __init__(self, leading: Callable[[], bool]) -> None:
        self._leading = leading

    def collect(self) -> list[Metric]:
        """The one sample (prometheus_client's collector interface)."""
        return [
            GaugeMetricFamily(
                "rollout_monitor_leader",
                "1 on the replica that runs the database checks, 0 on the others.",
                value=float(self._leading()),
            )
        ]

    def describe(self) -> list[Metric]:
        """Nothing: avoid a collect at registration."""
        return []
