"""The plan's six success criteria: their names, the plan's words, and one decision for each.

The same decisions serve the daemon's own view (rollout_success_criterion, the status page) and
`rollout-monitor verdict` over Prometheus; only where the Observation comes from differs. The
names are those of the recording rule rollout:success_criterion:ok{criterion}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from monitor.judge.stats import (
    ERRORS_ALPHA,
    LATENCY_ALPHA,
    Latencies,
    errors_exceed,
    quantile_ratio,
)

Result = Literal["pass", "fail", "inconclusive"]

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
    # Another replica, the leader of several monitors, judges what the database shows: this one
    # judges its own pod's callback only (monitor.daemon.leader).
    database_elsewhere: bool = False

    @property
    def p95_seconds(self) -> float | None:
        """The window's p95 callback latency, as histogram_quantile computes it."""
        return None if self.latencies is None else self.latencies.quantile(0.95)


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


def overall(decisions: Sequence[Decision]) -> Result:
    """Fail if any criterion fails, else inconclusive if any is, else pass."""
    results = {d.result for d in decisions}
    if "fail" in results:
        return "fail"
    return "inconclusive" if "inconclusive" in results or not decisions else "pass"


# Decided from the database alone: the leader's (a follower exports none of them).
DATABASE_CRITERIA = frozenset(
    {"migration_completed", "new_fields_populated", "token_validity_tracking"}
)


def decide(observation: Observation, thresholds: Thresholds = Thresholds()) -> list[Decision]:
    """Every criterion's decision, in the plan's order."""
    o, t = observation, thresholds
    decisions = [
        migration_completed(o),
        users_can_authenticate(o, t),
        new_fields_populated(o),
        token_validity_tracking(o),
        latency_within_10pct(o, t),
        error_rate_within_baseline(o, t),
    ]
    if o.database_elsewhere:
        decisions = [d for d in decisions if d.criterion not in DATABASE_CRITERIA]
    return [final(d, o.window_complete) for d in decisions]


def final(decision: Decision, window_complete: bool) -> Decision:
    """A pass before the window is over is not a pass yet."""
    if decision.result != "pass" or window_complete:
        return decision
    reason = f"passing so far; the window is not over ({decision.reason})"
    return Decision(decision.criterion, "inconclusive", reason, decision.observed)


def _pass(criterion: str, reason: str, **observed: float | None) -> Decision:
    return Decision(criterion, "pass", reason, observed)


def _fail(criterion: str, reason: str, **observed: float | None) -> Decision:
    return Decision(criterion, "fail", reason, observed)


def _unknown(criterion: str, reason: str, **observed: float | None) -> Decision:
    return Decision(criterion, "inconclusive", reason, observed)


def migration_completed(o: Observation) -> Decision:
    """Applied, stayed applied, every index valid and the trigger enabled."""
    name = "migration_completed"
    unknown_parts = None in (o.indexes_valid, o.trigger_enabled, o.stayed_applied)
    rules: list[tuple[bool, Result, str]] = [
        (o.state is None, "inconclusive", "no data on the migration's state"),
        (o.state == "pending", "inconclusive", "the migration is not applied yet"),
        (o.state != "applied", "fail", f"the migration is {o.state}"),
        (o.stayed_applied is False, "fail", "the migration left the applied state in the window"),
        (o.indexes_valid is False, "fail", "an index of the migration is invalid"),
        (o.trigger_enabled is False, "fail", "the trigger is missing or disabled"),
        (unknown_parts, "inconclusive", "no data on the indexes or the trigger"),
    ]
    for matches, result, reason in rules:
        if matches:
            return Decision(name, result, reason)
    return _pass(name, "applied; every index valid; the trigger enabled")


def _too_few_probes(name: str, o: Observation, t: Thresholds) -> Decision | None:
    if o.probes < t.min_probes:
        reason = f"{o.probes} callback probes in the window, fewer than {t.min_probes}"
        return _unknown(name, reason, probes=o.probes)
    return None


def users_can_authenticate(o: Observation, t: Thresholds) -> Decision:
    """The callback meets its objective and no unexpired token is flagged invalid."""
    name = "users_can_authenticate"
    if (few := _too_few_probes(name, o, t)) is not None:
        return few
    ratio = o.successes / o.probes
    numbers = {"success_ratio": ratio, "probes": o.probes, "wrongly_invalid": o.wrongly_invalid}
    judged = _errors_against(o, 1 - t.objective, t)
    text = f"callback success {ratio:.2%} of {o.probes} probes"
    if judged == "fail":
        return _fail(name, f"{text}, below the {t.objective:.2%} objective{_run(o)}", **numbers)
    if o.wrongly_invalid is not None and o.wrongly_invalid > 0:
        return _fail(name, f"{o.wrongly_invalid:g} unexpired tokens flagged invalid", **numbers)
    if judged == "inconclusive":
        return _unknown(name, f"{text}: below {t.objective:.2%}, {_WITHIN_CHANCE}", **numbers)
    if o.wrongly_invalid is None and not o.database_elsewhere:
        return _unknown(name, "no data on tokens wrongly flagged invalid", **numbers)
    # A follower judges its own pod's callback; the tokens are the leader's to judge.
    return _pass(
        name, f"{text} (tokens: judged by the leader)" if o.database_elsewhere else text, **numbers
    )


_WITHIN_CHANCE = "but not beyond chance yet"


def _run(o: Observation) -> str:
    """Where failures came while the migration ran, say how many (its lock queue, Risk 1)."""
    if o.run_failures == 0:
        return ""
    return f" ({o.run_failures} of {o.run_probes} failed during the migration)"


def _errors_against(o: Observation, limit: float, t: Thresholds) -> Result:
    """fail: the window's errors are above the limit beyond chance (exact binomial test);
    inconclusive: above it, but within chance; pass: at or below it."""
    errors = o.probes - o.successes
    if errors_exceed(errors, o.probes, limit, t.errors_alpha):
        return "fail"
    # Rounded: 1 - 0.99 is 0.010000000000000009, and 99 of 100 must meet a 99% objective.
    return "inconclusive" if round(errors / o.probes, 9) > round(limit, 9) else "pass"


def new_fields_populated(o: Observation) -> Decision:
    """Everyone who logged in since the migration has both new columns filled."""
    name = "new_fields_populated"
    numbers = {"logins": o.logins, "missing": o.logins_missing_field}
    if o.logins is None or o.logins_missing_field is None:
        return _unknown(name, "no data on logins since the migration", **numbers)
    if o.logins == 0:
        return _unknown(name, "nobody logged in since the migration", **numbers)
    if o.logins_missing_field > 0:
        missing = f"{o.logins_missing_field:g} of {o.logins:g}"
        return _fail(name, f"{missing} users who logged in miss a new field", **numbers)
    return _pass(name, f"all {o.logins:g} users who logged in have both fields", **numbers)


def token_validity_tracking(o: Observation) -> Decision:
    """The trigger exists and is enabled, and no unexpired token is flagged invalid."""
    name = "token_validity_tracking"
    numbers = {"wrongly_invalid": o.wrongly_invalid}
    if o.trigger_enabled is False:
        return _fail(name, "the trigger is missing or disabled", **numbers)
    if o.wrongly_invalid is not None and o.wrongly_invalid > 0:
        return _fail(name, f"{o.wrongly_invalid:g} unexpired tokens flagged invalid", **numbers)
    if o.trigger_enabled is None or o.wrongly_invalid is None:
        return _unknown(name, "no data on the trigger or the tokens", **numbers)
    return _pass(name, "the trigger is enabled; no token wrongly invalid", **numbers)


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


def latency_within_10pct(o: Observation, t: Thresholds) -> Decision:
    """The window's p95 is not above the tolerance (1.1) times the baseline's beyond chance."""
    name = "latency_within_10pct"
    b = o.baseline
    problem = baseline_problem(b, t)
    if b is None or problem is not None or b.p95_seconds is None:
        why = problem or "no baseline latency"
        return _unknown(name, f"baseline unusable ({why})", baseline_probes=_probes_of(b))
    if (few := _too_few_probes(name, o, t)) is not None:
        return few
    base = b.latencies if b.latencies is not None else b.p95_seconds
    ratio = (
        None if o.latencies is None else quantile_ratio(o.latencies, base, 0.95, t.latency_alpha)
    )
    numbers: dict[str, float | None] = {
        "p95_seconds": o.p95_seconds,
        "baseline_p95_seconds": b.p95_seconds,
    }
    if ratio is None or o.p95_seconds is None:
        return _unknown(name, "no probe got an answer in the window", **numbers)
    numbers["ratio_lower_bound"] = ratio.lower
    text = (
        f"p95 {o.p95_seconds * 1000:.1f} ms, {ratio.estimate:.2f}x the baseline"
        f" {b.p95_seconds * 1000:.1f} ms"
    )
    if round(ratio.estimate, 9) <= t.latency_tolerance:
        return _pass(name, text, **numbers)
    if ratio.lower > 1.0:
        return _fail(name, f"{text}, above {t.latency_tolerance:.2f}x beyond chance", **numbers)
    return _unknown(name, f"{text}: above {t.latency_tolerance:.2f}x, {_WITHIN_CHANCE}", **numbers)


def _probes_of(baseline: BaselineView | None) -> int:
    return 0 if baseline is None else baseline.probes


def error_rate_within_baseline(o: Observation, t: Thresholds) -> Decision:
    """The window's error ratio is not above the baseline's, or the error budget if that is
    more, beyond chance; an unusable baseline leaves the error budget alone as the limit."""
    name = "error_rate_within_baseline"
    if (few := _too_few_probes(name, o, t)) is not None:
        return few
    budget = 1 - t.objective
    problem = baseline_problem(o.baseline, t)
    base_ratio = None if problem is not None or o.baseline is None else o.baseline.success_ratio
    limit = budget if base_ratio is None else max(1 - base_ratio, budget)
    errors = round(1 - o.successes / o.probes, 9)
    numbers: dict[str, float | None] = {
        "error_ratio": errors,
        "limit_ratio": round(limit, 9),
        "probes": o.probes,
    }
    text = f"errors {errors:.2%} of {o.probes} probes, limit {limit:.2%}"
    if problem is not None:
        text += f" (the error budget alone: baseline unusable, {problem})"
    judged = _errors_against(o, limit, t)
    if judged == "inconclusive":
        return _unknown(name, f"{text}: above the limit, {_WITHIN_CHANCE}", **numbers)
    return Decision(name, judged, text + (_run(o) if judged == "fail" else ""), numbers)
