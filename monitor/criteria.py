"""The plan's six success criteria: their names, the plan's words, and one decision for each.

The same decisions serve the daemon's own view (rollout_success_criterion, the status page) and
`rollout-monitor verdict` over Prometheus; only where the Observation comes from differs. The
names are those of the recording rule rollout:success_criterion:ok{criterion}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

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


@dataclass(frozen=True)
class BaselineView:
    """The callback before the migration: probes behind it, success ratio, p95 latency."""

    probes: int
    success_ratio: float | None
    p95_seconds: float | None
    source: str  # where it came from: monitor, prometheus_history, configuration


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
    p95_seconds: float | None  # the window's p95 callback latency, from the histogram's buckets
    baseline: BaselineView | None
    window_complete: bool = True  # False: a pass is not final yet, so it is inconclusive


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
    if round(ratio, 9) < t.objective:
        return _fail(name, f"callback success {ratio:.2%} below the {t.objective:.2%}", **numbers)
    if o.wrongly_invalid is None:
        return _unknown(name, "no data on tokens wrongly flagged invalid", **numbers)
    if o.wrongly_invalid > 0:
        return _fail(name, f"{o.wrongly_invalid:g} unexpired tokens flagged invalid", **numbers)
    return _pass(name, f"callback success {ratio:.2%} of {o.probes} probes", **numbers)


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


def baseline_usable(baseline: BaselineView | None, thresholds: Thresholds) -> bool:
    """Enough probes behind it, or set by the operator (a configured baseline has no probes)."""
    if baseline is None:
        return False
    return baseline.source == "configuration" or baseline.probes >= thresholds.min_probes


def _baseline(name: str, o: Observation, t: Thresholds, value: str) -> float | Decision:
    """The baseline's value, or the inconclusive decision saying why there is none."""
    b = o.baseline
    known = getattr(b, value) if baseline_usable(b, t) else None
    if known is None:
        probes = 0 if b is None else b.probes
        reason = f"no baseline ({probes} probes before the migration, {t.min_probes} needed)"
        return _unknown(name, reason, baseline_probes=probes)
    return float(known)


def _comparable(name: str, o: Observation, t: Thresholds, value: str) -> float | Decision:
    """The baseline's value when the window can be compared with it, else why it cannot."""
    base = _baseline(name, o, t, value)
    if isinstance(base, Decision):
        return base
    return _too_few_probes(name, o, t) or base


def latency_within_10pct(o: Observation, t: Thresholds) -> Decision:
    """The window's p95 is at most the tolerance (1.1) times the baseline's p95."""
    name = "latency_within_10pct"
    base = _comparable(name, o, t, "p95_seconds")
    if isinstance(base, Decision):
        return base
    numbers = {"p95_seconds": o.p95_seconds, "baseline_p95_seconds": base}
    if o.p95_seconds is None:
        return _unknown(name, "no probe got an answer in the window", **numbers)
    ratio = o.p95_seconds / base
    text = f"p95 {o.p95_seconds * 1000:.1f} ms, {ratio:.2f}x the baseline {base * 1000:.1f} ms"
    if round(ratio, 9) > t.latency_tolerance:
        return _fail(name, f"{text}, above {t.latency_tolerance:.2f}x", **numbers)
    return _pass(name, text, **numbers)


def error_rate_within_baseline(o: Observation, t: Thresholds) -> Decision:
    """The window's error ratio is at most the baseline's, or the error budget if that is more."""
    name = "error_rate_within_baseline"
    base = _comparable(name, o, t, "success_ratio")
    if isinstance(base, Decision):
        return base
    # Rounded: 1 - 0.99 is 0.010000000000000009, and 99 of 100 must meet a 99% objective.
    errors = round(1 - o.successes / o.probes, 9)
    limit = round(max(1 - base, 1 - t.objective), 9)
    numbers = {"error_ratio": errors, "limit_ratio": limit, "probes": o.probes}
    text = f"errors {errors:.2%} of {o.probes} probes, limit {limit:.2%}"
    if errors > limit:
        return _fail(name, text, **numbers)
    return _pass(name, text, **numbers)
