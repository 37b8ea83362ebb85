"""What the checks observed, as typed readings: what the judgment reads, never the exposition.

A check whose findings the criteria, the baseline or the status page need publishes a reading on
each run beside its metric families: the schema's health, the token drift, the backfill, the
logins since the migration, the login lookup, the connections. The check's runner keeps the
reading exactly as long as the families: a run that fails without families or finds nothing to
measure withdraws both; a skipped run (a table locked for DDL) keeps both.

Readings are immutable and `Readings.current()` hands out one immutable `Snapshot` of them all,
built anew only when a check publishes: a probe keeps a reference to the snapshot of its time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TypeVar


@dataclass(frozen=True)
class SchemaHealth:
    """The migration's indexes and trigger (None: none of that kind present to judge)."""

    indexes_valid: bool | None
    trigger_enabled: bool | None
    trigger_missing: bool  # an expected trigger is not there


@dataclass(frozen=True)
class Drift:
    """Tokens whose isValid flag disagrees with their expiry."""

    stale_valid: float
    wrongly_invalid: float


@dataclass(frozen=True)
class Backfill:
    """Users whose new column is still NULL, by column."""

    missing: dict[str, float]


@dataclass(frozen=True)
class Logins:
    """Users who logged in since the migration, and the most of them missing a new column."""

    users: float
    missing_field: float | None


@dataclass(frozen=True)
class Lookup:
    """The login lookup by threadsUserId: its execution time and how it reaches users."""

    seconds: float
    node: str
    index: str


@dataclass(frozen=True)
class Connections:
    """Client connections against max_connections; lock waiters and sessions behind DDL."""

    clients: float
    max_connections: float
    lock_waiting: float
    blocked_by_ddl: float

    @property
    def ratio(self) -> float | None:
        """Client connections over max_connections."""
        return self.clients / self.max_connections if self.max_connections > 0 else None


@dataclass(frozen=True)
class FiredAlert:
    """One alert of the rollout's rules as Alertmanager or Prometheus has it, by name: how many
    instances fire (a replica each, or one for the fleet), and whether any of them pages (not
    silenced or inhibited)."""

    name: str
    count: int
    paging: bool


@dataclass(frozen=True)
class Alerts:
    """The rollout's alerts firing, as the alerts check last asked them of `source`; `error`
    when it could not (then `firing` is empty, and unknown)."""

    source: str
    firing: tuple[FiredAlert, ...] = ()
    error: str | None = None


Reading = SchemaHealth | Drift | Backfill | Logins | Lookup | Connections | Alerts
R = TypeVar("R", SchemaHealth, Drift, Backfill, Logins, Lookup, Connections, Alerts)


@dataclass(frozen=True)
class Snapshot:
    """Every reading standing at one moment, by check."""

    by_check: dict[str, Reading] = field(default_factory=dict)

    def get(self, kind: type[R]) -> R | None:
        """The reading of this kind, if a check reported one."""
        for reading in self.by_check.values():
            if isinstance(reading, kind):
                return reading
        return None


EMPTY = Snapshot()


class Readings:
    """The latest reading of every check, published by the checks, withdrawn by their runners."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current = EMPTY

    def publish(self, check: str, reading: Reading | None) -> None:
        """The check's reading from now on (None: it has none this run)."""
        if reading is None:
            self.withdraw(check)
            return
        with self._lock:
            self._current = Snapshot({**self._current.by_check, check: reading})

    def withdraw(self, check: str) -> None:
        """The check reports nothing any more (its run failed, or had nothing to measure)."""
        with self._lock:
            if check in self._current.by_check:
                kept = {c: r for c, r in self._current.by_check.items() if c != check}
                self._current = Snapshot(kept)

    def keep_only(self, checks: set[str]) -> None:
        """Withdraw the readings of every other check (a reload that dropped some)."""
        with self._lock:
            kept = {c: r for c, r in self._current.by_check.items() if c in checks}
            if len(kept) != len(self._current.by_check):
                self._current = Snapshot(kept)

    def current(self) -> Snapshot:
        """Every reading standing now (immutable: keep it as long as needed)."""
        with self._lock:
            return self._current

    def get(self, kind: type[R]) -> R | None:
        """The current reading of this kind."""
        return self.current().get(kind)
