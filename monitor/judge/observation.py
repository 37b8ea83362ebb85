"""What the criteria decide on and what they decide: the thresholds, the baseline's view, the
Observation of the window since the migration, one Decision per criterion; and whether a
baseline can be evidence at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from monitor.judge.stats import ERRORS_ALPHA, LATENCY_ALPHA, Latencies

Result = Literal["pass", "fail", "inconclusive"]
RESULTS: tuple[Result, ...] = ("pass", "fail", "inconclusive")

# (name, the plan's own words under "Success Criteria")
CRITERIA = (
    ("migration_completed", "Migration completes without errors"),
    ("users_can_authenticate", "All existing users can authenticate"),
    ("new_fields_populated", "New Threads OAuth fields populated"),
    ("token_validity_tracking", "Token validity tracking functional"),
    ("latency_within_10pct", "No performance degradation >10%"),
    ("error_rate_within_baseline", "Error rates remain below baseline"),
)


TITLES = dict(CRITERIA)


@dataclass(frozen=True)
class Thresholds:
    """What counts as good enough: the callback's objective, probes needed, latency tolerance."""

    objective: float = 0.99
    min_probes: int = 20
    latency_tolerance: float = 1.10
    errors_alpha: float = ERRORS_ALPHA  # one-sided false-alarm rate of the error tests
    latency_alpha: float = LATENCY_ALPHA  # of the latency test
    # Of the whole minutes since the migration was applied, the share with a probe below which
    # a pass cannot be vouched for (a monitor that died, a scrape target gone).
    min_coverage: float = 0.5


@dataclass(frozen=True)
class BaselineView:
    """The callback before the migration: probes behind it, success ratio, p95 latency."""

    probes: int
    success_ratio: float | None
    p95_seconds: float | None
    source: str  # where it came from: monitor, prometheus_history, configuration
    latencies: Latencies | None = None  # its answered probes by bucket; None: p95 taken as exact


@dataclass(frozen=True)
class Observation:
    """What is known about the window since the migration; None where there is no data."""

    state: str | None  # migration state at the end of the window; None when unknown
    stayed_applied: bool | None  # applied at every look since it was first seen applied
    indexes_valid: bool | None  # every index of the migration valid
    trigger_enabled: bool | None  # the trigger exists and is enabled
    wrongly_invalid: float | None  # most tokens flagged invalid though unexpired, in the window
    logins: float | None  # users who logged in since the migration
    logins_missing_field: float | None  # of those, the most still missing one new column
    probes: int  # callback probes in the window
    successes: int  # of those, outcome success
    latencies: Latencies | None  # the window's answered probes by latency bucket
    baseline: BaselineView | None
    window_complete: bool = True  # False: a pass is not final yet, so it is inconclusive
    run_probes: int = 0  # of the probes, those taken while the migration ran (before applied)
    run_failures: int = 0  # of those, the ones that failed
    run_seconds: float = 0.0  # how long the run took, from its start to the applied time
    run_latencies: Latencies | None = None  # the run's answered probes by latency bucket
    # The answered probes after the applied time; None: there was no run in the window, so
    # `latencies` are all after it.
    post_latencies: Latencies | None = None
    covered_minutes: int | None = None  # whole minutes since the applied time with a probe
    window_minutes: int | None = None  # whole minutes from the applied time to the window's end
    # Another replica, the leader of several monitors, judges what the database shows: this one
    # judges its own pod's callback only (monitor.daemon.leader).
    database_elsewhere: bool = False

    @property
    def p95_seconds(self) -> float | None:
        """The window's p95 callback latency, as histogram_quantile computes it."""
        return None if self.latencies is None else self.latencies.quantile(0.95)

    @property
    def after_run(self) -> Latencies | None:
        """The answered probes after the migration was applied."""
        return self.latencies if self.post_latencies is None else self.post_latencies

    @property
    def coverage(self) -> float | None:
        """The share of whole minutes since the applied time with a probe; None before two
        minutes have passed (too few to tell a gap from a slow start)."""
        if self.covered_minutes is None or self.window_minutes is None:
            return None
        return None if self.window_minutes < 2 else self.covered_minutes / self.window_minutes


@dataclass(frozen=True)
class Decision:
    """One criterion's result, a one-line reason, and the numbers behind it."""

    criterion: str
    result: Result
    reason: str
    observed: dict[str, float | None] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The plan's words for this criterion."""
        return TITLES[self.criterion]


def passing(criterion: str, reason: str, **observed: float | None) -> Decision:
    return Decision(criterion, "pass", reason, observed)


def failing(criterion: str, reason: str, **observed: float | None) -> Decision:
    return Decision(criterion, "fail", reason, observed)


def undecided(criterion: str, reason: str, **observed: float | None) -> Decision:
    return Decision(criterion, "inconclusive", reason, observed)


BaselineHealth = Literal["usable", "missing", "too_short", "unhealthy"]


BASELINE_HEALTH: tuple[BaselineHealth, ...] = ("usable", "missing", "too_short", "unhealthy")


def judge_baseline(
    baseline: BaselineView | None, thresholds: Thresholds
) -> tuple[BaselineHealth, str | None]:
    """Whether the baseline can be evidence, and if not, why: missing, too short or unhealthy.

    A configured baseline is the operator's word and always usable (it has no probes).
    """
    if baseline is None:
        return "missing", "no baseline"
    if baseline.source == "configuration":
        return "usable", None
    if baseline.probes < thresholds.min_probes:
        return "too_short", (
            f"too short: {baseline.probes} probes before the migration,"
            f" {thresholds.min_probes} needed"
        )
    ratio = baseline.success_ratio
    if ratio is not None and round(ratio, 9) < thresholds.objective:
        return "unhealthy", (
            f"unhealthy: callback success {ratio:.2%} before the migration,"
            f" below the {thresholds.objective:.2%} objective"
        )
    return "usable", None


def baseline_problem(baseline: BaselineView | None, thresholds: Thresholds) -> str | None:
    """Why the baseline cannot be evidence; None when it is usable."""
    return judge_baseline(baseline, thresholds)[1]


def baseline_usable(baseline: BaselineView | None, thresholds: Thresholds) -> bool:
    """Long enough and healthy, or set by the operator."""
    return baseline_problem(baseline, thresholds) is None
