"""What the schema check concluded about the migration, shared with checks that depend on it."""

from __future__ import annotations

import threading
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
    """The migration's state and, while it is applied, when that happened (UTC) and who says so."""

    state: str = "pending"
    seen_applied: bool = False
    observed_applied_at: datetime | None = None
    applied_at: datetime | None = None
    applied_source: str | None = None


class MigrationTracker:
    """The latest MigrationView, written by the schema check and read by the others."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._view = MigrationView()

    def current(self) -> MigrationView:
        """The latest view."""
        with self._lock:
            return self._view

    def publish(self, view: MigrationView) -> None:
        """Replace the view."""
        with self._lock:
            self._view = view
