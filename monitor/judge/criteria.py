"""The plan's six success criteria: their names, the plan's words, and one decision for each.

The same decisions serve the daemon's own view (rollout_success_criterion, the status page) and
`rollout-monitor verdict` over Prometheus; only where the Observation comes from differs. The
names are those of the recording rule rollout:success_criterion:ok{criterion}.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.judge.latency import WITHIN_CHANCE, latency_within_10pct
from monitor.judge.observation import (
    Decision,
    Observation,
    Result,
    Thresholds,
    baseline_problem,
    failing,
    passing,
    undecided,
)
from monitor.judge.stats import errors_exceed


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


def decide(observation: Observation, thresholds: Thresholds | None = None) -> list[Decision]:
    """Every criterion's decision, in the plan's order."""
    o, t = observation, thresholds or Thresholds()
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
    return [final(covered(d, o, t), o.window_complete) for d in decisions]


# Decided from the callback's probes: a monitor that saw too little of the window cannot pass them.
PROBE_CRITERIA = frozenset(
    {"users_can_authenticate", "latency_within_10pct", "error_rate_within_baseline"}
)


def covered(decision: Decision, o: Observation, t: Thresholds) -> Decision:
    """A pass from probes that cover too little of the time since the migration is not one: the
    minutes nobody probed may hold the outage. A failure stands: what was seen happened."""
    coverage = o.coverage
    if decision.result != "pass" or decision.criterion not in PROBE_CRITERIA:
        return decision
    if coverage is None or coverage >= t.min_coverage:
        return decision
    reason = (
        f"probes in only {o.covered_minutes} of the {o.window_minutes} minutes since the"
        f" migration was applied ({coverage:.0%}, {t.min_coverage:.0%} needed): too little of"
        f" the window to vouch for it ({decision.reason})"
    )
    return Decision(decision.criterion, "inconclusive", reason, decision.observed)


def final(decision: Decision, window_complete: bool) -> Decision:
    """A pass before the window is over is not a pass yet."""
    if decision.result != "pass" or window_complete:
        return decision
    reason = f"passing so far; the window is not over ({decision.reason})"
    return Decision(decision.criterion, "inconclusive", reason, decision.observed)


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
    return passing(name, "applied; every index valid; the trigger enabled")


def _too_few_probes(name: str, o: Observation, t: Thresholds) -> Decision | None:
    if o.probes < t.min_probes:
        reason = f"{o.probes} callback probes in the window, fewer than {t.min_probes}"
        return undecided(name, reason, probes=o.probes)
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
        return failing(name, f"{text}, below the {t.objective:.2%} objective{_run(o)}", **numbers)
    if o.wrongly_invalid is not None and o.wrongly_invalid > 0:
        return failing(name, f"{o.wrongly_invalid:g} unexpired tokens flagged invalid", **numbers)
    if judged == "inconclusive":
        return undecided(name, f"{text}: below {t.objective:.2%}, {WITHIN_CHANCE}", **numbers)
    if o.wrongly_invalid is None and not o.database_elsewhere:
        return undecided(name, "no data on tokens wrongly flagged invalid", **numbers)
    # A follower judges its own pod's callback; the tokens are the leader's to judge.
    return passing(
        name, f"{text} (tokens: judged by the leader)" if o.database_elsewhere else text, **numbers
    )


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
        return undecided(name, "no data on logins since the migration", **numbers)
    if o.logins == 0:
        return undecided(name, "nobody logged in since the migration", **numbers)
    if o.logins_missing_field > 0:
        missing = f"{o.logins_missing_field:g} of {o.logins:g}"
        return failing(name, f"{missing} users who logged in miss a new field", **numbers)
    return passing(name, f"all {o.logins:g} users who logged in have both fields", **numbers)


def token_validity_tracking(o: Observation) -> Decision:
    """The trigger exists and is enabled, and no unexpired token is flagged invalid."""
    name = "token_validity_tracking"
    numbers = {"wrongly_invalid": o.wrongly_invalid}
    if o.trigger_enabled is False:
        return failing(name, "the trigger is missing or disabled", **numbers)
    if o.wrongly_invalid is not None and o.wrongly_invalid > 0:
        return failing(name, f"{o.wrongly_invalid:g} unexpired tokens flagged invalid", **numbers)
    if o.trigger_enabled is None or o.wrongly_invalid is None:
        return undecided(name, "no data on the trigger or the tokens", **numbers)
    return passing(name, "the trigger is enabled; no token wrongly invalid", **numbers)


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
        return undecided(name, f"{text}: above the limit, {WITHIN_CHANCE}", **numbers)
    return Decision(name, judged, text + (_run(o) if judged == "fail" else ""), numbers)
