"""The daemon's memory of a rollout over a settable clock, wired as the daemon wires it
(daemon/memory.py): the tracker tells the baseline and the live view each view of the migration
the schema check publishes, the log each probe. Tests publish and record by hand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clocks import Clock

from monitor.config.schema import BaselineSettings
from monitor.judge.baseline import Baseline, Fetch
from monitor.judge.baseline.learning import Spawn, in_background
from monitor.judge.judgement import Judgement
from monitor.judge.live import LiveView
from monitor.judge.observation import Thresholds
from monitor.observe.migration import MigrationTracker, MigrationView
from monitor.observe.probe import ProbeResult
from monitor.observe.probelog import Around, Observed, ProbeLog
from monitor.observe.readings import Drift, Readings


@dataclass
class Learning:
    """A baseline learning from a log, following a tracker."""

    clock: Clock
    tracker: MigrationTracker
    readings: Readings
    log: ProbeLog
    baseline: Baseline


def learning(
    clock: Clock,
    *,
    probe_interval: float = 10.0,
    fetch: Fetch | None = None,
    spawn: Spawn = in_background,
    readings: Readings | None = None,
    **settings: Any,
) -> Learning:
    """A baseline with these settings (window, min_probes, state_file, ...) over the clock."""
    tracker, readings = MigrationTracker(), readings or Readings()
    baseline_settings = BaselineSettings.model_validate(settings)
    log = ProbeLog(readings, tracker.quiet, clock, span=baseline_settings.window)
    baseline = Baseline(
        baseline_settings, probe_interval, log, "m", clock, fetch=fetch, spawn=spawn
    )
    tracker.subscribe(baseline.follow)
    log.subscribe(baseline.observe)
    return Learning(clock, tracker, readings, log, baseline)


class Watching:
    """A live view and its judgement over a settable clock, a tracker, readings and a baseline."""

    def __init__(
        self,
        state_path: Path | None = None,
        migration: str = "m",
        thresholds: Thresholds | None = None,
        *,
        clock: Clock | None = None,
        probe_interval: float = 10.0,
        **baseline: Any,
    ) -> None:
        self.clock = clock or Clock()
        parts = learning(self.clock, probe_interval=probe_interval, **{"min_probes": 2, **baseline})
        self.tracker, self.readings, self.log = parts.tracker, parts.readings, parts.log
        self.baseline = parts.baseline
        self.live = LiveView(
            self.log,
            self.readings,
            self.tracker,
            self.baseline,
            self.clock,
            state_path=state_path,
            migration=migration,
        )
        self.tracker.subscribe(self.live.follow)
        self.log.subscribe(self.live.observe)
        self.judgement = Judgement(self.live, thresholds or Thresholds(min_probes=2))

    def publish(
        self,
        state: str,
        applied_at: float | None = None,
        started_at: float | None = None,
        *,
        running: bool = False,
    ) -> None:
        """What the schema check would publish."""
        when = None if applied_at is None else datetime.fromtimestamp(applied_at, UTC)
        start = None if started_at is None else datetime.fromtimestamp(started_at, UTC)
        view = MigrationView(
            state, state != "pending", when, when, "observed", running=running, started_at=start
        )
        self.tracker.publish(view)

    def probe(self, duration: float, outcome: str = "success", after: float = 10.0) -> None:
        """A probe `after` seconds on."""
        self.clock.now += after
        status = None if outcome == "timeout" else 401
        self.log.record(ProbeResult(outcome, duration, status))

    def report_drift(self, wrongly_invalid: float) -> None:
        """What the drift check would report."""
        self.readings.publish("drift", Drift(0.0, wrongly_invalid))


def run_now(task: Callable[[], None]) -> None:
    """Run a background task at once (a baseline's fetch from Prometheus, in a test)."""
    task()


def moment(  # noqa: PLR0917  # the record's own fields, in its order
    at: float,
    outcome: str,
    answered: float | None,
    drift: dict[str, float] | None = None,
    missing: dict[str, float] | None = None,
    status: int | None = None,
    detail: str = "",
    *,
    waited: float | None = None,
) -> Observed:
    """A probe's record as the log would keep it, with the drift and backfill reported then."""
    drift = drift or {}
    around = Around(
        stale_valid=drift.get("stale_valid"),
        wrongly_invalid=drift.get("wrongly_invalid"),
        missing=tuple((missing or {}).items()),
    )
    return Observed(at, outcome, status, answered, detail, around=around, waited=waited)
