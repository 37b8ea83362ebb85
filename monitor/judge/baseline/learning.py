"""The learning state machine: learns from the probes logged while the migration is pending
with no run under way, freezes when the schema check sees it leave pending, keeps its state
file. It changes on events only (a probe logged, the migration's view published)."""

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
from monitor.observe.answers import ExpectedAnswers
from monitor.observe.migration import MigrationView
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
    """A collector of the baseline gauges. It learns from the probes the log records while the
    migration is pending with no run under way, and freezes when the schema check sees it leave
    pending; reading it changes nothing."""

    def __init__(
        self,
        settings: BaselineSettings,
        probe_interval: float,
        log: ProbeLog,
        migration: str,
        clock: Callable[[], float] = time.time,
        *,
        fetch: Fetch | None = None,
        spawn: Spawn = in_background,
        expected: ExpectedAnswers | None = None,
    ) -> None:
        self._expected = expected or ExpectedAnswers()
        self._settings = settings
        self._migration = migration
        self._clock = clock
        self._log = log
        self._fetch = fetch
        self._spawn = spawn
        self._lock = threading.Lock()
        self._capacity = min(MAX_PROBES, math.ceil(settings.window / probe_interval) + 1)
        self._view = MigrationView()  # the migration as the schema check last published it
        self._confirmed_until: float | None = None
        self._frozen: Summary | None = None
        self._source: Source = "monitor"
        self._saved_at = -math.inf
        self._fetched_at = -math.inf
        if settings.fixed is not None:
            self._frozen = configured(settings.fixed, settings.min_probes)
            self._source = "configuration"
        else:
            self._load()
        self._learned = self._learn()

    def follow(self, view: MigrationView) -> None:
        """The schema check published: confirm the probes still pending, freeze once the
        migration left pending (its run under way counts as left)."""
        with self._lock:
            self._view = view
            if self._frozen is not None:
                return
            if view.quiet:
                self._confirmed_until = self._clock()
                self._learned = self._learn()
                return
            # The migration's run (a lock queue, an index build) is not "before the migration":
            # probes after its start are left out even if a look still called them pending.
            if view.started_at is not None and self._confirmed_until is not None:
                started = view.started_at.timestamp()
                self._confirmed_until = min(self._confirmed_until, started)
            self._frozen = self._learned = self._learn()
            self._expected.learn(self._frozen.answers, self._frozen.answers_from)
            log.info(
                "baseline_frozen",
                state=view.state,
                running=view.running,
                probes=self._frozen.probes,
                answers=len(self._frozen.answers),
            )
            self._save()

    def observe(self, observed: Observed) -> None:
        """A probe was logged: learn from it, keep the state file, fetch if too thin."""
        with self._lock:
            if observed.quiet and self._frozen is None:
                self._learned = self._learn()
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

    def _learn(self) -> Summary:
        """Probes a later schema check confirmed were taken before the migration started."""
        until = self._confirmed_until
        if until is None:
            return summarize([])
        return summarize([probe_of(o) for o in self._learning() if o.at <= until])

    def _fetch_due(self) -> float | None:
        """The applied time to ask Prometheus about, when the frozen baseline is too thin."""
        frozen, view = self._frozen, self._view
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
            frozen = self._frozen is not None
            summary = self._frozen if self._frozen is not None else self._learned
            source = self._current_source()
        yield from families(summary, frozen, self._settings.min_probes, source)

    def describe(self) -> list[Metric]:
        """Nothing: the families change at run time (avoids a collect at registration)."""
        return []

    def summary(self) -> Summary | None:
        """The frozen baseline (what the window since the migration is judged against); None
        while it is still being learned."""
        with self._lock:
            return self._frozen

    def frozen(self) -> tuple[Summary | None, str]:
        """summary() and source, read together."""
        with self._lock:
            return self._frozen, self._current_source()

    @property
    def source(self) -> str:
        """Where summary() comes from: monitor, configuration, prometheus_history or none."""
        with self._lock:
            return self._current_source()

    def _current_source(self) -> Source:
        return "none" if self._frozen is None else self._source

    def close(self) -> None:
        """Persist what was learned (the monitor is stopping)."""
        with self._lock:
            self._save()

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
            if state.baseline is not None:
                self._expected.learn(state.baseline.answers, state.baseline.answers_from)
            self._confirmed_until = state.confirmed_until
            self._log.restore(map(observed_of, state.probes))


def read_state(path: Path, migration: str) -> SavedState | None:
    """The saved state, or None (with a warning if the file exists but cannot be used)."""
    return read_for_migration(
        path, SavedState, migration, "baseline_state_unreadable", action="relearn"
    )
