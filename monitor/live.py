"""The daemon's own view of the rollout: the plan's success criteria, decided from memory.

SKELETON (issue 5): the interface is fixed; the helper owning it fills in the behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric

from monitor.baseline import Baseline
from monitor.criteria import Decision, Observation, Thresholds, decide
from monitor.metrics import Snapshots
from monitor.migration import MigrationTracker
from monitor.probe import ProbeResult


class LiveView:
    """A collector of rollout_success_criterion{criterion}; records probes once applied."""

    def __init__(
        self,
        snapshots: Snapshots,
        tracker: MigrationTracker,
        baseline: Baseline,
        thresholds: Thresholds,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._snapshots = snapshots
        self._tracker = tracker
        self._baseline = baseline
        self._thresholds = thresholds
        self._clock = clock

    def record(self, result: ProbeResult) -> None:
        """Keep the probe while the migration is applied (the window since it was applied)."""

    def observation(self) -> Observation:
        """What the daemon knows now about the window since the migration."""
        return Observation(
            state=self._tracker.known_state(),
            stayed_applied=None,
            indexes_valid=None,
            trigger_enabled=None,
            wrongly_invalid=None,
            logins=None,
            logins_missing_field=None,
            probes=0,
            successes=0,
            p95_seconds=None,
            baseline=None,
        )

    def decisions(self) -> list[Decision]:
        """Every criterion's decision now."""
        return decide(self.observation(), self._thresholds)

    def collect(self) -> Iterator[Metric]:
        """rollout_success_criterion and its companions (prometheus_client's collector API)."""
        return iter(())

    def describe(self) -> list[Metric]:
        """Nothing: the families change at run time (avoids a collect at registration)."""
        return []
