"""What Prometheus says about the window since the migration, as the criteria's Observation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.judge.history import (
    REQUESTS,
    STATE,
    choose_baseline,
    first_applied,
    last_pending,
    window_counts,
    window_latencies,
)
from monitor.judge.observation import Observation, Thresholds
from monitor.judge.stats import Latencies
from monitor.promql.query import Selector, promql_duration

if TYPE_CHECKING:  # httpx is loaded when Prometheus is first asked, not by the daemon's start
    from monitor.promql.api import Prometheus

INTERVAL = "rollout_check_interval_seconds"
DEFAULT_LOOK_SECONDS = 30.0  # the schema check's interval, when no replica exports its own
SCRAPE_SECONDS = 15.0  # a scrape after the look (history.PENDING_STEP finds scrapes this often)
# How far before --at to look for the applied time: it is exported only while the migration is
# applied, so after a roll-back the last value seen stands in (as in the recording rules).
APPLIED_LOOKBACK = "7d"
# Replicas disagreeing on the state (one's schema check ran later): the worst one counts.
WORST_FIRST = ("rolled_back", "partial", "pending", "applied")


@dataclass(frozen=True)
class Window:
    """The window evaluated: from the migration's start (its run, else its applied time) to
    `seconds` after it was applied, cut at the evaluation time."""

    name: str
    seconds: float
    at: float  # the evaluation time (--at, or now)
    applied_at: float | None  # None: the migration was not applied
    started_at: float | None = None  # when its run started, if a monitor saw or Prisma recorded it

    @property
    def start(self) -> float | None:
        """The window's start: the run's start when known (its lock queue is judged too)."""
        if self.applied_at is None:
            return None
        if self.started_at is None or self.started_at > self.applied_at:
            return self.applied_at
        return self.started_at

    @property
    def end(self) -> float | None:
        """The window's end: its full length after the applied time, or the evaluation time."""
        if self.applied_at is None:
            return None
        return max(self.applied_at, min(self.at, self.applied_at + self.seconds))

    @property
    def complete(self) -> bool:
        """The whole window is behind the evaluation time: a pass is final."""
        return self.applied_at is not None and self.at >= self.applied_at + self.seconds

    @property
    def span(self) -> float:
        """Seconds from the start to the end (0 without a start)."""
        start, end = self.start, self.end
        return 0.0 if end is None or start is None else end - start

    @property
    def run_seconds(self) -> float:
        """Seconds of the window the migration spent running, before it was applied."""
        start = self.start
        return 0.0 if start is None or self.applied_at is None else self.applied_at - start


def find_window(prom: Prometheus, select: Selector, name: str, seconds: float, at: float) -> Window:
    """The window since the migration started (the earliest time any replica reports)."""
    applied = f"last_over_time({select('rollout_migration_applied_timestamp_seconds')}"
    applied_at = prom.scalar(f"min({applied}[{APPLIED_LOOKBACK}]))", at)
    started = f"last_over_time({select('rollout_migration_started_timestamp_seconds')}"
    started_at = prom.scalar(f"min({started}[{APPLIED_LOOKBACK}]))", at)
    if started_at is not None and applied_at is not None:
        # A start from before the migration last looked quiet is another run's (one that was
        # not one, or an earlier attempt): this application's run started after it. The schema
        # check sees a run a look late, and a scrape shows that look later still: a start up to
        # a look and a scrape before the last quiet scrape is this run's.
        quiet = last_pending(prom, select, applied_at)
        look = prom.scalar(f"max({select(INTERVAL, check='schema')})", applied_at)
        late = (look or DEFAULT_LOOK_SECONDS) + SCRAPE_SECONDS
        if quiet is not None and started_at < quiet - late:
            started_at = None
    return Window(name, seconds, at, applied_at, started_at)


def observe(
    prom: Prometheus, select: Selector, window: Window, thresholds: Thresholds
) -> Observation:
    """The Observation of the window, every replica of the selector together."""
    if window.applied_at is None or window.end is None:
        return _not_applied(prom, select, window.at)
    end, span = window.end, window.span
    answer = _Answers(prom, end)
    range_ = f"[{promql_duration(span)}]" if span >= 0.001 else None
    # p95 comes from the bucket counts themselves, computed as histogram_quantile does.
    probes, successes, _ = window_counts(prom, select, end, span, ()) if range_ else (0, 0, {})
    latencies = window_latencies(prom, select, end, span) if range_ else None
    run = split_run(prom, select, window.applied_at, window.run_seconds, end)
    covered, minutes = probed_minutes(prom, select, window.applied_at, end)
    wrongly = select("rollout_token_validity_drift", kind="wrongly_invalid")
    state = state_at(prom, select, end)
    return Observation(
        state=state,
        stayed_applied=_stayed_applied(answer, select, range_),
        indexes_valid=_all_one(answer.value(f"min({select('rollout_schema_index_valid')})")),
        trigger_enabled=_trigger_enabled(answer, select, state),
        wrongly_invalid=answer.value(f"max(max_over_time({wrongly}{range_}))") if range_ else None,
        logins=answer.value(f"max({select('rollout_users_logged_in_since_migration')})"),
        logins_missing_field=answer.value(
            f"max({select('rollout_users_logged_in_since_migration_missing_field')})"
        ),
        probes=probes,
        successes=successes,
        latencies=latencies,
        baseline=choose_baseline(
            prom, select, window.applied_at, end, thresholds.min_probes, window.start
        ),
        window_complete=window.complete,
        run_probes=run.probes,
        run_failures=run.failures,
        run_seconds=window.run_seconds,
        run_latencies=run.latencies,
        post_latencies=run.after,
        covered_minutes=covered,
        window_minutes=minutes,
    )


@dataclass(frozen=True)
class RunSplit:
    """The window's probes split at the run's end: its probes and failures up to the applied
    time, its answered ones up to where their answers end, and the answered ones after."""

    probes: int = 0
    failures: int = 0
    latencies: Latencies | None = None
    after: Latencies | None = None


def split_run(
    prom: Prometheus, select: Selector, applied_at: float, run_seconds: float, end: float
) -> RunSplit:
    """The run's probes are those the scrapes counted until one showed the migration applied,
    a probe interval at least after the applied time: a probe started during the run is
    answered within its interval, and counted at the scrape after that."""
    if run_seconds < 0.001:
        after = window_latencies(prom, select, end, end - applied_at)
        return RunSplit(after=after if end - applied_at >= 0.001 else None)
    interval = prom.scalar(f"max({select(INTERVAL, check='callback')})", end) or 0.0
    found = first_applied(prom, select, applied_at + interval, end)
    split = end if found is None else min(found, end)
    start = applied_at - run_seconds
    # Failures are told at the applied time, as the error criteria count them; latencies where
    # the run's answers end.
    probes, successes, _ = window_counts(prom, select, applied_at, run_seconds, ())
    latencies = window_latencies(prom, select, split, split - start)
    after = window_latencies(prom, select, end, end - split) if end - split >= 0.001 else None
    return RunSplit(probes, probes - successes, latencies, after)


def probed_minutes(
    prom: Prometheus, select: Selector, applied_at: float, end: float
) -> tuple[int, int]:
    """Of the whole minutes (Unix time multiples of 60) from the applied time to the end, how
    many saw a probe counted, every replica together; and how many there are."""
    minutes = minute_steps(applied_at, end)
    if minutes <= 0:
        return 0, max(0, minutes)
    # The subquery's steps are the multiples of 60 s in (last - span, last]: exactly `minutes`.
    span = promql_duration((minutes - 1) * 60.0 + 30.0)
    probed = f"sum(increase({select(REQUESTS)}[1m])) > 0"
    found = prom.scalar(f"count_over_time(({probed})[{span}:1m])", math.floor(end / 60) * 60)
    return min(minutes, round(found or 0)), minutes


def minute_steps(start: float, end: float) -> int:
    """The multiples of 60 s in [start, end]: the minutes whose probes are counted."""
    return math.floor(end / 60) - math.ceil(start / 60) + 1


def state_at(prom: Prometheus, select: Selector, at: float) -> str | None:
    """The migration's state then: the worst any replica reports, None when none does."""
    states = {
        s.labels.get("state") for s in prom.vector(f"max by (state) ({select(STATE)}) == 1", at)
    }
    return next((state for state in WORST_FIRST if state in states), None)


@dataclass(frozen=True)
class _Answers:
    """Scalar queries at one time."""

    prom: Prometheus
    at: float

    def value(self, query: str) -> float | None:
        return self.prom.scalar(query, self.at)


def _all_one(value: float | None) -> bool | None:
    return None if value is None else value == 1


def _trigger_enabled(answer: _Answers, select: Selector, state: str | None) -> bool | None:
    """Enabled on every replica. Once the migration left pending, a replica whose schema check
    found the trigger missing (it exports no enabled gauge for it) fails, as the daemon's own
    view does; before, or with no data at all, a missing trigger is not known to be a fault."""
    enabled = _all_one(answer.value(f"min({select('rollout_schema_trigger_enabled')})"))
    if state in (None, "pending"):
        return enabled
    present = answer.value(f"min({select('rollout_schema_object_present', kind='trigger')})")
    return False if present == 0 else enabled


def _stayed_applied(answer: _Answers, select: Selector, range_: str | None) -> bool | None:
    """Applied at the end, and at most one change in the window (a late replica's first look).

    min_over_time would call the scrapes of a replica that had not yet seen the migration (its
    schema check runs after the applied time) a departure from applied.
    """
    applied = select(STATE, state="applied")
    last = answer.value(f"min({applied})")
    changes = answer.value(f"max(changes({applied}{range_}))") if range_ else 0.0
    if last is None or changes is None:
        return None
    return last == 1 and changes <= 1


def _not_applied(prom: Prometheus, select: Selector, at: float) -> Observation:
    """No applied time: only the state is known (pending, or rolled back long ago)."""
    return Observation(
        state=state_at(prom, select, at),
        stayed_applied=None,
        indexes_valid=None,
        trigger_enabled=None,
        wrongly_invalid=None,
        logins=None,
        logins_missing_field=None,
        probes=0,
        successes=0,
        latencies=None,
        baseline=None,
        window_complete=False,
    )
