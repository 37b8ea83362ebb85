"""The status page's success criteria: as the verdict decides them over its default window,
each with the alerts of it firing, or whether one that failed still fails now."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from monitor.judge.observation import Decision
from monitor.observe.readings import Alerts

PAGE_WINDOW = "24h"  # the criteria shown are the verdict's on this window, as `verdict` decides


def criteria_section(
    decisions: Sequence[Decision],
    verdict: str,
    now: Sequence[Decision] = (),
    alerts: Alerts | None = None,
) -> str:
    """The plan's success criteria as the verdict decides them over its default window, each
    with its result in words and the reason, whether one that failed still fails now, and the
    alerts of it firing."""
    current = {d.criterion: d for d in now}
    items = "".join(
        f'<li id="criterion-{escape(d.criterion)}" class="criterion {escape(d.result)}">'
        f'<span class="result {escape(d.result)}">{escape(d.result)}</span> '
        f'<strong class="title">{escape(d.title)}</strong>'
        f'<p class="reason">{escape(d.reason)}</p>'
        f"{now_note(d, current.get(d.criterion), firing_for(d.criterion, alerts))}</li>"
        for d in decisions
    )
    return (
        f'<section id="criteria"><h2>Success criteria, the verdict\'s {PAGE_WINDOW} window: '
        f'<span id="verdict" class="result {escape(verdict)}">{escape(verdict)}</span></h2>'
        f'<ol class="criteria">{items}</ol></section>'
    )


# The alerts of alerts/alerting.rules.yml that speak for each criterion now.
CRITERION_ALERTS = {
    "migration_completed": (
        "RolloutMigrationPartial",
        "RolloutMigrationRolledBack",
        "RolloutIndexInvalid",
    ),
    "users_can_authenticate": (
        "RolloutCallbackDown",
        "RolloutLoginsFailing",
        "RolloutLoginsFailingSlowly",
    ),
    "new_fields_populated": ("RolloutBackfillStalled",),
    "token_validity_tracking": ("RolloutTokensWronglyInvalid",),
    "latency_within_10pct": ("RolloutCallbackLatencyRegression",),
    "error_rate_within_baseline": (
        "RolloutCallbackErrorBudgetBurnFast",
        "RolloutCallbackErrorBudgetBurnSlow",
    ),
}


def firing_for(criterion: str, alerts: Alerts | None) -> list[str]:
    """The criterion's alerts firing now, as last asked."""
    names = CRITERION_ALERTS.get(criterion, ())
    return [] if alerts is None else [a.name for a in alerts.firing if a.name in names]


def now_note(window: Decision, now: Decision | None, firing: Sequence[str] = ()) -> str:
    """The criterion's alerts firing, or, for one that failed in the window: does it still
    fail now, or pass again? Never "passing now" while an alert of it fires."""
    if firing:
        words = f"Alert firing: {', '.join(firing)}."
        return f'<p class="now fail">{escape(words)}</p>'
    if window.result != "fail" or now is None or now.result == "inconclusive":
        return ""
    words = (
        f"Still failing now: {now.reason}."
        if now.result == "fail"
        else f"Failed earlier in the window, passing now (last 5 minutes): {now.reason}."
    )
    return f'<p class="now {escape(now.result)}">{escape(words)}</p>'
