"""The callback's latency and success before the migration: learned while pending, then frozen."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import structlog
from prometheus_client.metrics_core import Metric
from pydantic import BaseModel, ConfigDict, model_validator

from monitor.config import BaselineSettings, FixedBaseline
from monitor.criteria import BaselineView
from monitor.metrics import PROBE_BUCKETS, gauge, labelled_gauge, one_hot
from monitor.migration import MigrationTracker
from monitor.probe import ProbeResult
from monitor.probelog import Around, Observed, ProbeLog
from monitor.state_files import read_for_migration, write_atomically
from monitor.stats import Latencies

QUANTILES = ("0.5", "0.95", "0.99")
# 2 added the database context, 3 the latency buckets; older files are still read
STATE_VERSION = 3
SAVE_EVERY_SECONDS = 60.0
MAX_PROBES = 100_000
# Prometheus may be down when the baseline freezes; asking again each probe would hammer it.
FETCH_RETRY_SECONDS = 60.0
SOURCES = ("monitor", "configuration", "prometheus_history", "none")
Source = Literal["monitor", "configuration", "prometheus_history", "none"]

log = structlog.get_logger("monitor.baseline")


class Record(BaseModel):
    """Strict, immutable, and the same in memory as in the state file."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plan(Record):
    """How the user lookup reaches users: scan node and index (empty when none)."""

    node: str
    index: str


class Context(Record):
    """The database around a probe, as the checks last reported it."""

    user_lookup_seconds: float | None = None
    user_lookup_plan: Plan | None = None
    db_connections_ratio: float | None = None


class Probe(Record):
    """One callback probe: when (Unix time), its outcome, its duration if it got an answer, and
    the database's user-lookup time, plan and connection usage the checks last saw."""

    at: float
    outcome: str
    duration_seconds: float | None
    user_lookup_seconds: float | None = None
    user_lookup_plan: Plan | None = None
    db_connections_ratio: float | None = None


class Summary(Record):
    """What a set of probes says: how many, the share of successes, latency quantiles, and the
    database's median user-lookup time, last plan and highest connection usage."""

    probes: int
    success_ratio: float | None
    duration_seconds: dict[str, float]
    user_lookup_seconds: float | None = None
    user_lookup_plan: Plan | None = None
    db_connections_ratio: float | None = None
    # Answered probes no slower than each of PROBE_BUCKETS, and all answered: what the latency
    # test needs (a version 2 file and a configured baseline have none: p95 is taken as exact).
    bucket_counts: tuple[int, ...] = ()
    answered: int | None = None

    @property
    def p95_seconds(self) -> float | None:
        """The 0.95 latency quantile, if known."""
        return self.duration_seconds.get("0.95")

    def view(self, source: str) -> BaselineView:
        """The criteria's view of this baseline, from the given source."""
        return BaselineView(
            self.probes, self.success_ratio, self.p95_seconds, source, latencies=self.latencies
        )

    @property
    def latencies(self) -> Latencies | None:
        """The answered probes by bucket, when known."""
        if self.answered is None or len(self.bucket_counts) != len(PROBE_BUCKETS):
            return None
        return Latencies(PROBE_BUCKETS, self.bucket_counts, self.answered)


class SavedState(Record):
    """The state file: a learning window's probes, or the frozen summary and where it came from."""

    version: Literal[1, 2, 3]
    migration: str
    frozen: bool
    confirmed_until: float | None
    probes: tuple[Probe, ...] = ()
    baseline: Summary | None = None
    source: Literal["monitor", "prometheus_history"] = "monitor"

    @model_validator(mode="after")
    def _frozen_has_summary(self) -> SavedState:
        if self.frozen != (self.baseline is not None):
            raise ValueError("a frozen state holds a baseline, a learning one does not")
        return self


def bucket_quantile(q: float, bounds: Sequence[float], values: Sequence[float]) -> float | None:
    """The q-quantile of values in buckets with these upper bounds, as histogram_quantile does."""
    return Latencies.of(values, bounds).quantile(q)


def summarize(probes: Sequence[Probe], bounds: Sequence[float] = PROBE_BUCKETS) -> Summary:
    """The summary of these probes; latency from the answered ones only, like the histogram."""
    answered = [p.duration_seconds for p in probes if p.duration_seconds is not None]
    successes = sum(1 for p in probes if p.outcome == "success")
    latencies = Latencies.of(answered, bounds)
    quantiles = {q: latencies.quantile(float(q)) for q in QUANTILES}
    lookups = [p.user_lookup_seconds for p in probes if p.user_lookup_seconds is not None]
    plans = [p.user_lookup_plan for p in probes if p.user_lookup_plan is not None]
    ratios = [p.db_connections_ratio for p in probes if p.db_connections_ratio is not None]
    return Summary(
        probes=len(probes),
        success_ratio=successes / len(probes) if probes else None,
        duration_seconds={q: v for q, v in quantiles.items() if v is not None},
        user_lookup_seconds=statistics.median(lookups) if lookups else None,
        user_lookup_plan=plans[-1] if plans else None,
        db_connections_ratio=max(ratios) if ratios else None,
        bucket_counts=latencies.cumulative,
        answered=latencies.total,
    )


def configured(fixed: FixedBaseline, min_probes: int) -> Summary:
    """The operator's baseline; it stands for min_probes probes, so that it is used."""
    quantiles = {"0.5": fixed.p50, "0.95": fixed.p95, "0.99": fixed.p99}
    return Summary(
        probes=min_probes,
        success_ratio=fixed.success_ratio,
        duration_seconds={q: v for q, v in quantiles.items() if v is not None},
        user_lookup_seconds=fixed.user_lookup_execution,
        db_connections_ratio=fixed.db_connections_ratio,
    )


def probe_of(observed: Observed) -> Probe:
    """A logged probe as the baseline keeps it: with the database's context around it."""
    around = observed.around
    plan = around.lookup_plan
    return Probe(
        at=observed.at,
        outcome=observed.outcome,
        duration_seconds=observed.answered,
        user_lookup_seconds=around.lookup_seconds,
        user_lookup_plan=None if plan is None else Plan(node=plan[0], index=plan[1]),
        db_connections_ratio=around.connections_ratio,
    )


def observed_of(probe: Probe) -> Observed:
    """A probe of the state file back in the log, quiet (it was learned from)."""
    plan = probe.user_lookup_plan
    around = Around(
        lookup_seconds=probe.user_lookup_seconds,
        lookup_plan=None if plan is None else (plan.node, plan.index),
        connections_ratio=probe.db_connections_ratio,
    )
    answered = probe.duration_seconds
    status = None if answered is None else 0  # answered, the status not kept
    return Observed(probe.at, probe.outcome, status, answered, quiet=True, around=around)


def families(summary: Summary, frozen: bool, min_probes: int, source: str) -> list[Metric]:
    """The baseline gauges; the values only once enough probes are behind them."""
    result: list[Metric] = [
        gauge(
            "rollout_baseline_frozen",
            "1 once the migration left pending and the baseline is fixed, 0 while learning.",
            float(frozen),
        ),
        gauge(
            "rollout_baseline_auth_callback_probes",
            "Callback probes behind the baseline.",
            summary.probes,
        ),
        one_hot(
            "rollout_baseline_source",
            "1 for where the frozen baseline came from; none while it is being learned.",
            "source",
            SOURCES,
            source,
        ),
    ]
    if summary.probes < min_probes:
        return result
    return result + callback_families(summary) + database_families(summary)


def callback_families(summary: Summary) -> list[Metric]:
    """The callback's success ratio and latency quantiles, where known."""
    result: list[Metric] = []
    if summary.success_ratio is not None:
        result.append(
            gauge(
                "rollout_baseline_auth_callback_success_ratio",
                "Share of callback probes with outcome success before the migration.",
                summary.success_ratio,
            )
        )
    if summary.duration_seconds:
        result.append(
            labelled_gauge(
                "rollout_baseline_auth_callback_duration_seconds",
                "Callback probe latency before the migration, from the histogram's buckets.",
                ["quantile"],
                {(q,): v for q, v in summary.duration_seconds.items()},
            )
        )
    if (latencies := summary.latencies) is not None:
        result.append(answered_probes_family(latencies))
    return result


ANSWERED_PROBES = "rollout_baseline_auth_callback_answered_probes"


def answered_probes_family(latencies: Latencies) -> Metric:
    """The baseline's answered probes per latency bucket, cumulative like a histogram's: what
    the verdict's latency test needs of it."""
    bounds = [*(format_bound(b) for b in latencies.bounds), "+Inf"]
    counts = [*latencies.cumulative, latencies.total]
    return labelled_gauge(
        ANSWERED_PROBES,
        "Answered callback probes before the migration no slower than le seconds (cumulative).",
        ["le"],
        {(le,): float(count) for le, count in zip(bounds, counts, strict=True)},
    )


def format_bound(bound: float) -> str:
    """A bucket bound as prometheus_client writes le (0.005, 1.0, 10.0)."""
    return repr(float(bound))


def database_families(summary: Summary) -> list[Metric]:
    """The user lookup's time and plan and the connection usage, where known."""
    result: list[Metric] = []
    if summary.user_lookup_seconds is not None:
        result.append(
            gauge(
                "rollout_baseline_user_lookup_execution_seconds",
                "Median execution time of the login lookup before the migration (EXPLAIN ANALYZE).",
                summary.user_lookup_seconds,
            )
        )
    if (plan := summary.user_lookup_plan) is not None:
        result.append(
            labelled_gauge(
                "rollout_baseline_user_lookup_plan_info",
                "How the login lookup reached users before the migration: scan node and index.",
                ["node", "index"],
                {(plan.node, plan.index): 1.0},
            )
        )
    if summary.db_connections_ratio is not None:
        result.append(
            gauge(
                "rollout_baseline_db_connections_ratio",
                "Most client connections seen before the migration, over max_connections.",
                summary.db_connections_ratio,
            )
        )
    return result


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
