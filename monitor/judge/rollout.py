"""The rollout as the deployment plan frames it: its windows, the phase it is in, and the
thresholds it is judged by."""

from __future__ import annotations

from monitor.config.schema import Config
from monitor.judge.observation import Thresholds
from monitor.observe.migration import MigrationView

CRITICAL_SECONDS = 3600.0  # the plan's first hour after the migration, as the recording rule
WINDOW_SECONDS = 86400.0  # the plan's 24-hour monitoring period: the verdict's longest window
# The windows a gate asks about (/verdict?window=, rollout_verdict{window}): the plan's two.
VERDICT_WINDOWS = {"1h": CRITICAL_SECONDS, "24h": WINDOW_SECONDS}

PHASES = {
    "unknown": "unknown: the schema check has not reported yet",
    "not_applied": "not applied: the migration is not in place",
    "migrating": "migrating: the migration's run is under way; logins failing now count",
    "critical": "critical: the first hour after the migration",
    "monitoring": "monitoring: within 24 hours of the migration",
    "done": "done: 24 hours have passed since the migration",
}


def phase(known_state: str | None, view: MigrationView, now: float) -> str:
    """Where the rollout is: unknown, not_applied, migrating, critical, monitoring or done."""
    if known_state is None:
        return "unknown"
    if known_state != "applied" and view.running:
        return "migrating"
    if known_state != "applied" or view.applied_at is None:
        return "not_applied"
    age = now - view.applied_at.timestamp()
    if age < CRITICAL_SECONDS:
        return "critical"
    return "monitoring" if age < WINDOW_SECONDS else "done"


def thresholds(config: Config) -> Thresholds:
    """The criteria's thresholds from the configuration (min_probes: the baseline's by default)."""
    settings = config.criteria
    return Thresholds(
        objective=settings.objective,
        min_probes=settings.min_probes or config.baseline.min_probes,
        latency_tolerance=settings.latency_tolerance,
    )
