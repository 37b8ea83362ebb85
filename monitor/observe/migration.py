"""What the schema check concluded about the migration, shared with checks that depend on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

STATES = ("pending", "partial", "applied", "rolled_back")


def migration_state(present: int, total: int, was_applied: bool) -> str:
    """CONTRACT.md's rules: all objects applied, some partial, none pending or rolled_back."""
    if present == total:
        return "applied"
    if present > 0:
        return "partial"
    return "rolled_back" if was_applied else "pending"


@dataclass(frozen=True)
class MigrationView:
    """The migration's state and, while it is applied, when that happened (UTC) and who says so;
    whether it is running now, and when its run started (UTC), once known."""

    state: str = "pending"
    seen_applied: bool = False
    observed_applied_at: datetime | None = None
    applied_at: datetime | None = None
    applied_source: str | None = None
    running: bool = False  # the migration's run is under way (its DDL holds or awaits locks)
    started_at: datetime | None = None  # when its run started: Prisma's started_at, else seen

    @property
    def quiet(self) -> bool:
        """Pending with no run under way: what a probe before the migration saw."""
        return self.state == "pending" and not self.running


class MigrationTracker:
    """The latest MigrationView, written by the schema check and read by the others."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._view = MigrationView()
        self._published = False
        self._pending_at: float | None = None

    def current(self) -> MigrationView:
        """The latest view (the default, pending, until the schema check first publishes)."""
        with self._lock:
            return self._view

    def known_state(self) -> str | None:
        """The state the schema check last published; None before it first did."""
        with self._lock:
            return self._view.state if self._published else None

    def last_pending_at(self) -> float | None:
        """Unix time the schema check last found the migration pending with no run under way;
        None if it never did."""
        with self._lock:
            return self._pending_at

    def publish(self, view: MigrationView) -> None:
        """Replace the view."""
        with self._lock:
            self._view = view
            self._published = True
            if view.quiet:
                self._pending_at = self._clock()
