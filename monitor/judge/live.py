"""The daemon's own view of the window since the migration, kept from memory.

The window is the one the verdict judges: from the migration's run (else its applied time) to 24
hours after it was applied. It holds references to the probe log's records from its start, for up
to a day (the log itself keeps an hour); the rest (indexes, trigger, drift, logins) is what the
checks last reported, their typed readings. It changes on events only: a probe logged, the
migration's view published. Reading it (a scrape, a page) changes nothing: what the passing of time
moves out of the window is left out of the counts, and dropped at the next event.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitor.judge import window_state
from monitor.judge.baseline import Baseline
from monitor.judge.observation import BaselineView, Observation
from monitor.judge.probewindow import Counted, ProbeWindow
from monitor.judge.rollout import VERDICT_WINDOWS, WINDOW_SECONDS
from monitor.judge.stats import Latencies
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.migration import MigrationTracker, MigrationView
from monitor.observe.probelog import Around, Observed, ProbeLog
from monitor.observe.readings import Drift, Logins, Readings, SchemaHealth, Snapshot

SAVE_EVERY_SECONDS = 60.0  # how often the window goes to its file while probes come in


@dataclass(frozen=True)
class AfterRun:
    """The window split at the applied time: the run's length and answered probes, those after
    it, and the minutes since it that saw a probe."""

    run_seconds: float = 0.0
    run_latencies: Latencies | None = None
    post_latencies: Latencies | None = None
    covered_minutes: int | None = None
    window_minutes: int | None = None


class LiveView:
    """The window since the migration: follows the schema check's view of the migration and
    counts the probe log's records from the window's start."""

    def __init__(
        self,
        log: ProbeLog,
        readings: Readings,
        tracker: MigrationTracker,
        baseline: Baseline,
        clock: Callable[[], float] = time.time,
        *,
        state_path: Path | None = None,
        migration: str = "",
        longest_probe: float = 60.0,
    ) -> None:
        self._log = log
        self._longest_probe = longest_probe  # the callback's timeout: no answer comes later
        self._readings = readings
        self._tracker = tracker
        self._baseline = baseline
        self._clock = clock
        self._lock = threading.Lock()
        self._window = ProbeWindow()
        self._applied_at: float | None = None  # of the latest application seen
        self._started_at: float | None = None  # when its run started, if seen or recorded
        self._left_at: float | None = None  # last seen leaving the applied state
        self._last_look: str | None = None  # the state at the last look
        self._running = False  # the migration's run under way at the last look
        # Per verdict window (its seconds): the readings and state last seen inside it, as the
        # verdict reads the gauges at the window's end; kept once the window is over.
        self._at_end: dict[float, tuple[Snapshot, str | None]] = {}
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

    def follow(self, view: MigrationView) -> None:
        """The schema check published: follow the migration's run and application, and take in
        the probes logged since the window's start that it does not count yet (those taken
        before the run's start was known: Prisma's started_at is learned at the next look)."""
        now = self._clock()
        with self._lock:
            if view.quiet and self._applied_at is None:
                self._started_at = None  # a run that was not one (it went quiet again)
                self._window = ProbeWindow()
            if view.started_at is not None and (view.running or view.state == "applied"):
                self._started_at = view.started_at.timestamp()
            if view.state == "applied" and view.applied_at is not None:
                if self._applied_at != view.applied_at.timestamp():
                    self._at_end = {}  # another application: its own windows
                self._applied_at = view.applied_at.timestamp()
            elif self._last_look == "applied":
                # Left the applied state: a transition, not every look at a migration not applied
                # (a re-apply's own run, still rolled back, is not a departure from its window).
                self._left_at = now
            self._last_look, self._running = view.state, view.running
            self._note_window_ends(now, view.state)
            start = self._start(now)
            if start is not None:
                self._window.trim(start)
                for observed in self._log.since(max(start, self._window.last_at)):
                    # left-open at the start, as the verdict's range
                    if observed.at > start and not self._window.holds(observed):
                        self._window.add(observed)

    def observe(self, observed: Observed) -> None:
        """Count the probe once the migration's window started (its run, else its application);
        before, the log holds it, and the window takes it from there once its start is known.
        Once the window started, every probe counts, whatever the state: logins during a
        rollback or a flap are the rollout's too (the verdict counts them alike)."""
        with self._lock:
            start = self._start(self._clock())
            if self._tracker.known_state() is None or start is None:
                return
            self._note_window_ends(observed.at, self._tracker.known_state())
            self._window.trim(start)
            if not self._window.holds(observed):
                self._window.add(observed)
            due = self._save_due()
        if due is not None and self._state_path is not None:
            window_state.save(self._state_path, due)  # outside the lock: scrapes go on

    def _note_window_ends(self, now: float, state: str | None) -> None:
        """Keep the readings and state seen now for each verdict window still open (lock held):
        at its end they are what the window is judged on, within a probe or a look."""
        if self._applied_at is None:
            return
        for seconds in VERDICT_WINDOWS.values():
            if now < self._applied_at + seconds:
                self._at_end[seconds] = (self._readings.current(), state)

    def _save_due(self) -> window_state.WindowState | None:
        """The state to write, at most once a minute and only with a file (lock held)."""
        now = self._clock()
        if self._state_path is None or now - self._saved_at < SAVE_EVERY_SECONDS:
            return None
        self._saved_at = now
        return self._state()

    def _start(self, now: float) -> float | None:
        """The window's start now (the run's start, else the applied time; the verdict's window
        is the run and WINDOW_SECONDS after the applied time, so at most that much before now is
        kept, the run included); None before the migration started."""
        if self._applied_at is None and not self._running:
            return None
        first = self._applied_at if self._started_at is None else self._started_at
        if first is None:
            return None
        run = 0.0 if self._applied_at is None else max(0.0, self._applied_at - first)
        return max(first, now - WINDOW_SECONDS - run)

    def observation(
        self, *, database_elsewhere: bool = False, window: float | None = None
    ) -> Observation:
        """What the daemon knows now about the window since the migration (database_elsewhere:
        another replica leads and judges the database; this one judges its own callback). With
        `window` seconds, the window that ends that long after the applied time: complete once
        it is behind now, judged on its probes and on the readings and state last seen in it
        (today's, when this process did not see its end)."""
        readings, state = self._readings.current(), self._tracker.known_state()
        with self._lock:
            now = self._clock()
            start = self._start(now)
            ends = None if window is None or self._applied_at is None else self._applied_at + window
            end = math.inf if ends is None or ends > now else ends
            if end != math.inf and window in self._at_end:
                readings, state = self._at_end[window]
            counted = self._window.counted(math.inf if start is None else start, end)
            left = self._left_at
            stayed = None if start is None else left is None or not start <= left < end
            run_probes, run_failures = self._run_counts(start)
            after = self._after_run(start, counted, min(end, now))
        drift, schema, logins = (
            readings.get(Drift),
            readings.get(SchemaHealth),
            readings.get(Logins),
        )
        return Observation(
            state=state,
            stayed_applied=stayed,
            indexes_valid=None if schema is None else schema.indexes_valid,
            trigger_enabled=trigger_enabled(schema, state),
            wrongly_invalid=highest(
                [None if drift is None else drift.wrongly_invalid, counted.highest_wrongly_invalid]
            ),
            logins=None if logins is None else logins.users,
            logins_missing_field=None if logins is None else logins.missing_field,
            probes=counted.probes,
            successes=counted.successes,
            latencies=counted.latencies,
            baseline=self.baseline_view(),
            window_complete=window is None or end != math.inf,
            run_probes=run_probes,
            run_failures=run_failures,
            run_seconds=after.run_seconds,
            run_latencies=after.run_latencies,
            post_latencies=after.post_latencies,
            covered_minutes=after.covered_minutes,
            window_minutes=after.window_minutes,
            database_elsewhere=database_elsewhere,
        )

    def moments(self) -> tuple[float, float | None, float | None]:
        """(now, when the run started, when the migration was applied), as this replica knows
        them."""
        with self._lock:
            return self._clock(), self._started_at, self._applied_at

    def _after_run(self, start: float | None, counted: Counted, end: float) -> AfterRun:
        """The run's answered probes apart from those after the applied time up to `end`, and
        how much of that time was probed (lock held)."""
        applied = self._applied_at
        if start is None:
            return AfterRun()
        if applied is None:  # still running: every probe so far is the run's
            none = Latencies(PROBE_BUCKETS, (0,) * len(PROBE_BUCKETS), 0)
            return AfterRun(max(0.0, self._clock() - start), counted.latencies, none)
        bounded = end if end < self._clock() else math.inf
        after = self._window.counted(applied, bounded).latencies
        covered, minutes = self._window.probed_minutes(applied, min(end, applied + WINDOW_SECONDS))
        if applied <= start:
            return AfterRun(0.0, None, after, covered, minutes)
        # A probe is the run's when it started before the applied time, answered after or not.
        answers = self._window.started_before(applied, self._longest_probe)
        late = Latencies.of(answers, PROBE_BUCKETS)
        run = counted.latencies.minus(after).plus(late)
        return AfterRun(applied - start, run, after.minus(late), covered, minutes)

    def _run_counts(self, start: float | None) -> tuple[int, int]:
        """Probes of the window taken before the applied time (all of them while it runs), and
        how many of them failed (lock held)."""
        if start is None:
            return 0, 0
        probes = failures = 0
        for seen in self._window.probes:
            if self._applied_at is not None and seen.at >= self._applied_at:
                break
            if seen.at >= start:
                probes += 1
                failures += not seen.success
        return probes, failures

    def baseline_view(self) -> BaselineView | None:
        """The criteria's view of the frozen baseline; None while it is being learned."""
        summary, source = self._baseline.frozen()
        return None if summary is None else summary.view(source)


def trigger_enabled(schema: SchemaHealth | None, state: str | None) -> bool | None:
    """Enabled when present; a trigger the schema check found missing is a failure once the
    migration left pending (before, it is not there yet)."""
    if schema is None:
        return None
    enabled = schema.trigger_enabled
    if enabled is not None or state in (None, "pending"):
        return enabled
    return False if schema.trigger_missing else None


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
