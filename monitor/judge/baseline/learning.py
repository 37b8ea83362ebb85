"""The learning state machine: learns from the probes logged while the migration is pending
with no run under way, freezes when it leaves pending, keeps its state file."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import structlog
from prometheus_client.metrics_core import Metric

from monitor.config.schema import BaselineSettings
from monitor.judge.baseline.families import families
from monitor.judge.baseline.records import (
    STATE_VERSION,
    SavedState,
    Source,
    Summary,
    observed_of,
    probe_of,
)
from monitor.judge.baseline.summaries import configured, summarize
from monitor.judge.state_files import read_for_migration, write_atomically
from monitor.observe.migration import MigrationTracker
from monitor.observe.probe import ProbeResult
from monitor.observe.probelog import MAX_PROBES, Observed, ProbeLog

SAVE_EVERY_SECONDS = 60.0
# Prometheus may be down when the baseline freezes; asking again each probe would hammer it.
FETCH_RETRY_SECONDS = 60.0

log = structlog.get_logger("monitor.judge.baseline")


Fetch = Callable[[float], Summary | None]
Spawn = Callable[[Callable[[], None]], None]


def in_background(task: Callable[[], None]) -> None:
    """Run the task in a daemon thread: a slow or black-holed Prometheus never delays a probe."""
    threading.Thread(target=task, name="baseline-fetch", daemon=True).start()


class Baseline:
    """A collector of the baseline gauges; learns from the probes logged while the migration is
    pending with no run under way."""

    def __init__(
        self,
        settings: BaselineSettings,
        probe_interval: float,
        tracker: MigrationTracker,
        migration: str,
        clock: Callable[[], float] = time.time,
        *,
        log: ProbeLog | None = None,
        fetch: Fetch | None = None,
        spawn: Spawn = in_background,
    ) -> None:
        self._settings = settings
        self._tracker = tracker
        self._migration = migration
        self._clock = clock
        self._log = log or ProbeLog(quiet=lambda: quiet(tracker), clock=clock, span=settings.window)
        self._fetch = fetch
        self._spawn = spawn
        self._lock = threading.Lock()
        self._capacity = min(MAX_PROBES, math.ceil(settings.window / probe_interval) + 1)
        self._confirmed_until: float | None = None
        self._frozen: Summary | None = None
        self._source: Source = "monitor"
        self._learned_cache: tuple[float, Summary] | None = None  # O(window): once per probe
        self._saved_at = -math.inf
        self._unsaved = False  # frozen (by a scrape, say) and not written yet
        self._fetched_at = -math.inf
        if settings.fixed is not None:
            self._frozen = configured(settings.fixed, settings.min_probes)
            self._source = "configuration"
        else:
            self._load()

    def use_log(self, log: ProbeLog) -> None:
        """Learn from this log from now on (a reloaded monitor has its own, with the same
        records), keeping what the previous one holds of the probes being learned."""
        with self._lock:
            log.restore(self._learning())
            self._log = log
            self._learned_cache = None

    def record(self, result: ProbeResult) -> None:
        """Log the probe in the baseline's own log and observe it (tests; the daemon's log is
        shared, and the monitor calls observe)."""
        self.observe(self._log.record(result))

    def observe(self, observed: Observed) -> None:
        """A probe was logged: follow the migration, keep the state file, fetch if too thin."""
        with self._lock:
            self._settle()
            if self._unsaved:
                self._save()
            if observed.quiet and self._frozen is None:
                self._learned_cache = None
                if self._clock() - self._saved_at >= SAVE_EVERY_SECONDS:
                    self._save()
            applied_at = self._fetch_due()
        if applied_at is not None:  # at most once a minute (_fetch_due), so never two at once
            self._spawn(lambda: self._fetch_history(applied_at))

    def _learning(self) -> list[Observed]:
        """The quiet probes of the log within the baseline window of the newest one, at most as
        many as that window holds at the configured probe rate."""
        quiet = [o for o in self._log.entries() if o.quiet]
        if not quiet:
            return []
        newest = quiet[-1].at
        return [o for o in quiet if o.at > newest - self._settings.window][-self._capacity :]

    def _fetch_due(self) -> float | None:
        """The applied time to ask Prometheus about, when the frozen baseline is too thin."""
        frozen, view = self._frozen, self._tracker.current()
        thin = frozen is not None and frozen.probes < self._settings.min_probes
        if self._fetch is None or not thin or self._source != "monitor":
            return None
        if view.state != "applied" or view.applied_at is None:
            return None
        if self._clock() - self._fetched_at < FETCH_RETRY_SECONDS:
            return None
        self._fetched_at = self._clock()
        return view.applied_at.timestamp()

    def _fetch_history(self, applied_at: float) -> None:
        """Ask Prometheus for the window before the migration (in the background: it is slow)."""
        if self._fetch is None:
            return
        try:
            fetched = self._fetch(applied_at)
        except Exception as error:  # whatever the hook raises, the probes go on
            log.warning("baseline_fetch_failed", reason=str(error) or type(error).__name__)
            return
        with self._lock:
            current = self._frozen
            if fetched is None or current is None or fetched.probes <= current.probes:
                return
            self._frozen, self._source = fetched, "prometheus_history"
            log.info("baseline_from_prometheus", probes=fetched.probes)
            self._save()

    def collect(self) -> Iterator[Metric]:
        """The baseline gauges (prometheus_client's collector interface)."""
        with self._lock:
            self._settle()
            frozen = self._frozen is not None
            summary = self._frozen if self._frozen is not None else self._learned()
            source = self._current_source()
        yield from families(summary, frozen, self._settings.min_probes, source)

    def describe(self) -> list[Metric]:
        """Nothing: the families change at run time (avoids a collect at registration)."""
        return []

    def summary(self) -> Summary | None:
        """The frozen baseline (what the window since the migration is judged against); None
        while it is still being learned."""
        with self._lock:
            self._settle()
            return self._frozen

    def frozen(self) -> tuple[Summary | None, str]:
        """summary() and source, read together."""
        with self._lock:
            self._settle()
            return self._frozen, self._current_source()

    @property
    def source(self) -> str:
        """Where summary() comes from: monitor, configuration, prometheus_history or none."""
        with self._lock:
            self._settle()
            return self._current_source()

    def _current_source(self) -> Source:
        return "none" if self._frozen is None else self._source

    def close(self) -> None:
        """Persist what was learned (the monitor is stopping)."""
        with self._lock:
            self._settle()
            self._save()

    def _settle(self) -> None:
        """Follow the schema check: confirm probes still pending, freeze once it left pending."""
        if self._frozen is not None:
            return
        pending_at = self._tracker.last_pending_at()
        if pending_at is not None:
            known = self._confirmed_until
            self._confirmed_until = pending_at if known is None else max(known, pending_at)
            if self._confirmed_until != known:
                self._learned_cache = None
        state, view = self._tracker.known_state(), self._tracker.current()
        if state not in (None, "pending") or view.running:
            # The migration's run (a lock queue, an index build) is not "before the migration":
            # probes after its start are left out even if a look still called them pending.
            if view.started_at is not None and self._confirmed_until is not None:
                started = view.started_at.timestamp()
                self._confirmed_until = min(self._confirmed_until, started)
                self._learned_cache = None
            self._frozen = self._learned()
            log.info(
                "baseline_frozen", state=state, running=view.running, probes=self._frozen.probes
            )
            self._unsaved = True  # written by the next probe: never on the scrape path

    def _learned(self) -> Summary:
        """Probes a later schema check confirmed were taken before the migration started."""
        until = self._confirmed_until
        if until is None:
            return summarize([])
        cached = self._learned_cache
        if cached is None or cached[0] != until:
            confirmed = [probe_of(o) for o in self._learning() if o.at <= until]
            cached = self._learned_cache = (until, summarize(confirmed))
        return cached[1]

    def _state(self) -> SavedState:
        return SavedState(
            version=STATE_VERSION,
            migration=self._migration,
            frozen=self._frozen is not None,
            confirmed_until=self._confirmed_until,
            probes=() if self._frozen is not None else tuple(map(probe_of, self._learning())),
            baseline=self._frozen,
            source="prometheus_history" if self._source == "prometheus_history" else "monitor",
        )

    def _save(self) -> None:
        path = self._settings.state_file
        self._unsaved = False
        if path is None or self._source == "configuration":
            return
        self._saved_at = self._clock()
        try:
            write_atomically(path, self._state().model_dump_json())
        except OSError as error:
            log.warning("baseline_state_not_saved", file=str(path), reason=str(error))

    def _load(self) -> None:
        path = self._settings.state_file
        state = read_state(path, self._migration) if path is not None else None
        if state is not None:
            self._frozen = state.baseline
            self._source = state.source
            self._confirmed_until = state.confirmed_until
            self._log.restore(map(observed_of, state.probes))


def read_state(path: Path, migration: str) -> SavedState | None:
    """The saved state, or None (with a warning if the file exists but cannot be used)."""
    return read_for_migration(
        path, SavedState, migration, "baseline_state_unreadable", action="relearn"
    )


def quiet(tracker: MigrationTracker) -> bool:
    """Whether a probe now is one a baseline may learn from: the schema check has looked, and
    found the migration pending with no run under way."""
    return tracker.known_state() is not None and tracker.current().quiet
