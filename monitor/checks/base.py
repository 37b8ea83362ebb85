"""The one interface every check has, and the one wrapper that does their bookkeeping."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog
from prometheus_client.metrics_core import Metric

from monitor.db.pool import Session, TableLocked
from monitor.observe.metrics import Metrics
from monitor.observe.readings import Readings


class Check(Protocol):
    """A check: a name, how often it runs, and a run() that returns its metric families."""

    @property
    def name(self) -> str:
        """The value of the `check` label."""

    @property
    def interval(self) -> float:
        """Seconds between runs."""

    def run(self) -> Sequence[Metric]:
        """Query, measure, and return fresh families; raise to report a failure."""


class NotApplicable(Exception):
    """The check has nothing to measure yet (say, the columns it reads do not exist)."""


class CheckFailed(Exception):
    """The check ran and found its target unhealthy; its families are still worth exporting."""

    def __init__(self, reason: str, families: Sequence[Metric] = ()) -> None:
        super().__init__(reason)
        self.families = tuple(families)


class CheckRunner:
    """Runs one check: times it, catches its errors, logs them, and sets the per-check metrics."""

    def __init__(
        self,
        check: Check,
        metrics: Metrics,
        redact: Callable[[str], str],
        clock: Callable[[], float] = time.time,
        readings: Readings | None = None,
    ) -> None:
        self.check = check
        self._metrics = metrics
        self._readings = readings or Readings()
        self._redact = redact
        self._clock = clock
        self._log = structlog.get_logger("monitor.check").bind(check=check.name)
        self.runs = 0
        metrics.add_check(check.name, check.interval)

    def __call__(self) -> str:
        """Run the check once; return success, failure, skipped or not_applicable."""
        started = time.perf_counter()
        outcome = self._attempt()
        name = self.check.name
        self._metrics.check_duration.labels(name).set(time.perf_counter() - started)
        self._metrics.check_runs.labels(name, outcome).inc()
        self._metrics.check_skipped.labels(name).set(float(outcome == "skipped"))
        if outcome != "skipped":
            self._metrics.check_success.labels(name).set(float(outcome != "failure"))
            self._metrics.check_applicable.labels(name).set(float(outcome != "not_applicable"))
        if outcome in ("success", "not_applicable"):
            self._metrics.check_last_success.labels(name).set(self._clock())
        self.runs += 1
        self._metrics.changes += 1  # what a scrape would render changed
        return outcome

    def _attempt(self) -> str:
        snapshots = self._metrics.snapshots
        try:
            families = self.check.run()
        except TableLocked as locked:
            self._log.warning("check_skipped", reason=str(locked), tables=list(locked.tables))
            return "skipped"
        except NotApplicable as reason:
            self.withdraw()
            self._log.info("check_not_applicable", reason=str(reason))
            return "not_applicable"
        except CheckFailed as failed:
            snapshots.replace(self.check.name, failed.families)
            self._log.warning("check_failed", reason=self._redact(str(failed)))
            return "failure"
        except Exception as error:
            self.withdraw()
            self._log.error(
                "check_failed", reason=self._describe(error), error=type(error).__name__
            )
            return "failure"
        snapshots.replace(self.check.name, families)
        return "success"

    def withdraw(self) -> None:
        """Nothing of the check stands any more: neither its families nor its reading."""
        self._metrics.snapshots.replace(self.check.name, ())
        self._readings.withdraw(self.check.name)

    def _describe(self, error: Exception) -> str:
        lines = str(error).strip().splitlines()
        return self._redact(lines[0] if lines else type(error).__name__)


def require_columns(session: Session, schema: str, table: str, columns: Sequence[str]) -> None:
    """Raise NotApplicable while the table lacks any of these columns (before the migration)."""
    missing = sorted(set(columns) - session.existing_columns(schema, table, columns))
    if missing:
        raise NotApplicable(f"{table} has no column {', '.join(missing)}")
