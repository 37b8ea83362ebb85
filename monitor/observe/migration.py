"""What the schema check concluded about the migration, shared with checks that depend on it."""

from __future__ import annotations

import threading
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


Follower = Callable[[MigrationView], None]


class MigrationTracker:
    """The latest MigrationView, written by the schema check and read by the others; whoever
    follows the migration (the baseline, the window since the migration) is told each time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._view = MigrationView()
        self._published = False
        self._followers: list[Follower] = []

    def subscribe(self, *followers: Follower) -> None:
        """Tell these, in this order, every view published from now on."""
        self._followers.extend(followers)

    def current(self) -> MigrationView:
        """The latest view (the default, pending, until the schema check first publishes)."""
        with self._lock:
            return self._view

    def known_state(self) -> str | None:
        """The state the schema check last published; None before it first did."""
        with self._lock:
            return self._view.state if self._published else None

    def quiet(self) -> bool:
        """Whether a probe now is one a baseline may learn from: the schema check has looked,
        and found the migration pending with no run under way."""
        with self._lock:
            return self._published and self._view.quiet

    def publish(self, view: MigrationView) -> None:
        """Replace the view, then tell the followers (outside the lock: they read it back)."""
        with self._lock:
            self._view = view
            self._published = True
        for follower in self._followers:
            follower(view)
