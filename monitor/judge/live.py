"""The daemon's own view of the rollout: the plan's success criteria, decided from memory.

The window is the one the verdict judges: from the migration's run (else its applied time) to 24
hours after it was applied. The window counts the probe log's records from its start, holding
references to them for up to a day (the log itself keeps an hour); the rest (indexes, trigger,
drift, logins) is what the checks last reported, their typed readings.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import Metric

from monitor.judge import window_state
from monitor.judge.baseline import Baseline
from monitor.judge.criteria import (
    BASELINE_HEALTH,
    BaselineView,
    Decision,
    Observation,
    Thresholds,
    decide,
    judge_baseline,
)
from monitor.judge.rollout import WINDOW_SECONDS
from monitor.judge.stats import Latencies
from monitor.observe.metrics import PROBE_BUCKETS, labelled_gauge, one_hot
from monitor.observe.migration import MigrationTracker
from monitor.observe.probe import ProbeResult
from monitor.observe.probelog import MAX_PROBES, Around, Observed, ProbeLog
from monitor.observe.readings import Drift, Logins, Readings, SchemaHealth

SAVE_EVERY_SECONDS = 60.0  # how often the window goes to its file while probes come in
HEALTH_STATES = ("learning", *BASELINE_HEALTH)


class ProbeWindow:
    """Probes in the window with running totals, so that a scrape does not walk a day of them."""

    def __init__(self) -> None:
        self.probes: deque[Observed] = deque()
        self.successes = 0
        self.buckets = [0] * (len(PROBE_BUCKETS) + 1)
        # Probes whose wrongly_invalid no later probe matches or exceeds: the first is the max.
        self._highest: deque[Observed] = deque()

    def copy(self) -> ProbeWindow:
        """An independent copy (a reload hands it on; the old monitor may still add a probe)."""
        twin = ProbeWindow()
        twin.probes, twin.successes = deque(self.probes), self.successes
        twin.buckets, twin._highest = list(self.buckets), deque(self._highest)
        return twin

    def add(self, seen: Observed) -> None:
        """Count a probe in; the oldest falls out beyond MAX_PROBES."""
        if len(self.probes) >= MAX_PROBES:
            self._drop()
        self.probes.append(seen)
        self._count(seen, 1)
        if (value := seen.around.wrongly_invalid) is not None:
            while self._highest and (self._highest[-1].around.wrongly_invalid or 0.0) <= value:
                self._highest.pop()
            self._highest.append(seen)

    @property
    def last_at(self) -> float:
        """When the newest probe counted was taken (-inf when none is)."""
        return self.probes[-1].at if self.probes else -math.inf

    def holds(self, observed: Observed) -> bool:
        """Whether this very record is counted (looking back only as far as its time)."""
        for seen in reversed(self.probes):
            if seen is observed:
                return True
            if seen.at < observed.at:
                return False
        return False

    def highest_wrongly_invalid(self) -> float | None:
        """The most tokens wrongly invalid any probe in the window saw."""
        return self._highest[0].around.wrongly_invalid if self._highest else None

    def trim(self, start: float) -> None:
        """Drop the probes taken before start."""
        while self.probes and self.probes[0].at < start:
            self._drop()

    def latencies(self) -> Latencies:
        """The answered probes by bucket (cumulative counts, as the histogram exports them)."""
        running = tuple(itertools.accumulate(self.buckets))
        return Latencies(PROBE_BUCKETS, running[:-1], running[-1])

    def _drop(self) -> None:
        gone = self.probes.popleft()
        self._count(gone, -1)
        if self._highest and self._highest[0] is gone:
            self._highest.popleft()

    def _count(self, seen: Observed, sign: int) -> None:
        self.successes += sign * seen.success
        if (bucket := seen.bucket) is not None:
            self.buckets[bucket] += sign


@dataclass(slots=True)
class RunCounts:
    """Probes taken while the migration ran, and how many of them failed."""

    probes: int = 0
    failures: int = 0

    def add(self, success: bool) -> None:
        """Count one probe."""
        self.probes += 1
        self.failures += not success


class LiveView:
    """A collector of rollout_success_criterion{criterion}; records probes once applied."""

    def __init__(
        self,
        readings: Readings,
        tracker: MigrationTracker,
        baseline: Baseline,
        thresholds: Thresholds,
        clock: Callable[[], float] = time.time,
        *,
        state_path: Path | None = None,
        migration: str = "",
        log: ProbeLog | None = None,
    ) -> None:
        self._readings = readings
        # Whether another replica leads (monitor.daemon.leader): set by the monitor that has one.
        self.follower: Callable[[], bool] = lambda: False
        self._log = log or ProbeLog(readings, clock=clock)
        self._tracker = tracker
        self._baseline = baseline
        self._thresholds = thresholds
        self._clock = clock
        self._lock = threading.Lock()
        self._window = ProbeWindow()
        self._applied_at: float | None = None  # of the latest application seen
        self._started_at: float | None = None  # when its run started, if seen or recorded
        self._left_at: float | None = None  # last seen leaving the applied state
        self._last_look: str | None = None  # the state at the last look
        self._state_path, self._migration = state_path, migration
        self._saved_at = clock()
        if state_path is not None and (kept := window_state.load(state_path, migration)):
            self._restore(kept)

    def _restore(self, kept: window_state.WindowState) -> None:
        """Carry on the window a previous process of this monitor kept in its file."""
        self._applied_at, self._started_at = kept.applied_at, kept.started_at
        self._left_at, self._last_look = kept.left_at, kept.last_look
        for at, success, bucket, wrongly_invalid in kept.probes:
            self._window.add(restored(at, success, bucket, wrongly_invalid))

    def _state(self) -> window_state.WindowState:
        return window_state.WindowState(
            version=window_state.STATE_VERSION,
            migration=self._migration,
            applied_at=self._applied_at,
            started_at=self._started_at,
            left_at=self._left_at,
            last_look=self._last_look,
            probes=tuple(
                (s.at, s.success, s.bucket, s.around.wrongly_invalid) for s in self._window.probes
            ),
        )

    def close(self) -> None:
        """Keep the window in its file (the monitor is stopping)."""
        if self._state_path is None:
            return
        with self._lock:
            state = self._state()
        window_state.save(self._state_path, state)

    def _save_due(self) -> window_state.WindowState | None:
        """The state to write, at most once a minute and only with a file (lock held)."""
        now = self._clock()
        if self._state_path is None or now - self._saved_at < SAVE_EVERY_SECONDS:
            return None
        self._saved_at = now
        return self._state()

    def inherit(self, previous: LiveView) -> None:
        """Carry on the previous monitor's window (a reload watching the same migration)."""
        with previous._lock:
            window, applied_at = previous._window.copy(), previous._applied_at
            started_at, left_at = previous._started_at, previous._left_at
            last_look = previous._last_look
        with self._lock:
            self._window, self._applied_at, self._left_at = window, applied_at, left_at
            self._last_look, self._started_at = last_look, started_at

    def record(self, result: ProbeResult) -> None:
        """Record the probe in the view's own log and observe it (tests; the daemon's log is
        shared, and the monitor calls observe)."""
        self.observe(self._log.record(result))

    def observe(self, observed: Observed) -> None:
        """Count the probe once the migration's window started (its run, else its application);
        before, the log holds it, and the window takes it from there once its start is known."""
        with self._lock:
            start = self._follow()
            if self._tracker.known_state() is None or start is None:
                return
            # Once the window started, every probe counts, whatever the state: logins during a
            # rollback or a flap are the rollout's too (the verdict counts them alike).
            if not self._window.holds(observed):
                self._window.add(observed)
            due = self._save_due()
        if due is not None and self._state_path is not None:
            window_state.save(self._state_path, due)  # outside the lock: scrapes go on

    def _admit_logged(self, start: float) -> None:
        """The probes logged since the window's start that it does not count yet: those taken
        before the run's start was known (Prisma's started_at is learned at the next look)."""
        for observed in self._log.since(max(start, self._window.last_at)):
            # left-open at the start, as the verdict's range
            if observed.at > start and not self._window.holds(observed):
                self._window.add(observed)

    def _follow(self) -> float | None:
        """Follow the schema check's state; the window's start (the run's start, else the
        applied time), None before the migration started."""
        now, view = self._clock(), self._tracker.current()
        known = self._tracker.known_state()
        if view.quiet and known is not None and self._applied_at is None:
            self._started_at = None  # a run that was not one (it went quiet again)
            self._window = ProbeWindow()
        if view.started_at is not None and (view.running or view.state == "applied"):
            self._started_at = view.started_at.timestamp()
        if view.state == "applied" and view.applied_at is not None:
            self._applied_at = view.applied_at.timestamp()
        elif self._last_look == "applied" and known is not None:
            # Left the applied state: a transition, not every look at a migration not applied
            # (a re-apply's own run, still rolled back, is not a departure from its window).
            self._left_at = now
        if known is not None:
            self._last_look = known
        if self._applied_at is None and not view.running:
            return None
        first = self._applied_at if self._started_at is None else self._started_at
        if first is None:
            return None
        # The verdict's window is the run and WINDOW_SECONDS after the applied time: at most
        # that much before now is kept, the run included.
        run = 0.0 if self._applied_at is None else max(0.0, self._applied_at - first)
        start = max(first, now - WINDOW_SECONDS - run)
        self._admit_logged(start)
        self._window.trim(start)
        return start

    def _run_counts(self) -> RunCounts:
        """The window's probes taken before the applied time (all of them while it runs)."""
        counts = RunCounts()
        for seen in self._window.probes:
            if self._applied_at is not None and seen.at >= self._applied_at:
                break
            counts.add(seen.success)
        return counts

    def observation(self) -> Observation:
        """What the daemon knows now about the window since the migration."""
        now = self._readings.current()
        drift, schema, logins = now.get(Drift), now.get(SchemaHealth), now.get(Logins)
        with self._lock:
            start = self._follow()
            probes = len(self._window.probes)
            successes = self._window.successes
            latencies = self._window.latencies()
            seen = self._window.highest_wrongly_invalid()
            stayed = None if start is None else self._left_at is None or self._left_at < start
            run = self._run_counts()
        return Observation(
            state=self._tracker.known_state(),
            stayed_applied=stayed,
            indexes_valid=None if schema is None else schema.indexes_valid,
            trigger_enabled=self._trigger_enabled(schema),
            wrongly_invalid=highest([None if drift is None else drift.wrongly_invalid, seen]),
            logins=None if logins is None else logins.users,
            logins_missing_field=None if logins is None else logins.missing_field,
            probes=probes,
            successes=successes,
            latencies=latencies,
            baseline=self._baseline_view(),
            run_probes=run.probes,
            run_failures=run.failures,
            database_elsewhere=self.follower(),
        )

    def decisions(self) -> list[Decision]:
        """Every criterion's decision now."""
        return decide(self.observation(), self._thresholds)

    def collect(self) -> Iterator[Metric]:
        """rollout_success_criterion and its companions (prometheus_client's collector API)."""
        decisions = self.decisions()
        yield labelled_gauge(
            "rollout_success_criterion",
            "1 when the plan's success criterion passes, 0 when it fails, absent while"
            " inconclusive (the daemon's own view of the window since the migration).",
            ["criterion"],
            {
                (d.criterion,): float(d.result == "pass")
                for d in decisions
                if d.result != "inconclusive"
            },
        )
        yield labelled_gauge(
            "rollout_success_criterion_inconclusive",
            "1 while the success criterion cannot be decided (no data, too few probes, no"
            " baseline), else 0.",
            ["criterion"],
            {(d.criterion,): float(d.result == "inconclusive") for d in decisions},
        )
        health, _ = self.baseline_health()
        yield one_hot(
            "rollout_baseline_health",
            "1 for the baseline's health: learning while the migration is pending, then usable,"
            " or unusable as evidence because missing, too_short or unhealthy (its success"
            " below the objective).",
            "health",
            HEALTH_STATES,
            health,
        )

    def baseline_health(self) -> tuple[str, str | None]:
        """The baseline's health and, when it is unusable, why (learning: not frozen yet)."""
        view = self._baseline_view()
        if view is None:
            return "learning", None
        return judge_baseline(view, self._thresholds)

    def describe(self) -> list[Metric]:
        """Nothing: the families change at run time (avoids a collect at registration)."""
        return []

    def _trigger_enabled(self, schema: SchemaHealth | None) -> bool | None:
        """Enabled when present; a trigger the schema check found missing is a failure once the
        migration left pending (before, it is not there yet)."""
        if schema is None:
            return None
        enabled = schema.trigger_enabled
        if enabled is not None or self._tracker.known_state() in (None, "pending"):
            return enabled
        return False if schema.trigger_missing else None

    def _baseline_view(self) -> BaselineView | None:
        summary, source = self._baseline.frozen()
        if summary is None:
            return None
        return summary.view(source)


def highest(values: list[float | None]) -> float | None:
    """The largest known value; None when none is known."""
    known = [v for v in values if v is not None]
    return max(known) if known else None


def restored(
    at: float, success: bool, bucket: int | None, wrongly_invalid: float | None
) -> Observed:
    """A probe of the window as its file keeps it (the bucket's bound stands for its latency)."""
    answered = None if bucket is None else ([*PROBE_BUCKETS, math.inf])[bucket]
    return Observed(
        at,
        "success" if success else "failed",
        answered=answered,
        around=Around(wrongly_invalid=wrongly_invalid),
    )
