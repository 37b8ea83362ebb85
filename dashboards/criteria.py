"""The plan's six success criteria, twice: as the recording rules decide them over the last hour
(rollout:success_criterion:ok), and as the monitor itself does over the window since the
migration (rollout_success_criterion), the decision `rollout-monitor verdict` makes."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.judge.observation import CRITERIA

from .names import same_names
from .panels import GREY, Item, Query, row, series, stat_panel

# Each success criterion: its panel's title and what PASS and FAIL mean for it.
CRITERION_PANELS: Mapping[str, tuple[str, str]] = {
    "migration_completed": (
        "Migration completes",
        "State applied, every index valid and the trigger enabled. FAIL: partial, rolled back, a "
        "failed CREATE INDEX CONCURRENTLY or a disabled trigger.",
    ),
    "users_can_authenticate": (
        "Users can authenticate",
        "Callback success ratio over 1 h at or above the objective and no token wrongly flagged "
        "invalid. FAIL: the callback errors or users are locked out.",
    ),
    "new_fields_populated": (
        "New fields populated",
        "No user who logged in since the migration is still missing threadsFullName or "
        "threadsProfilePic. FAIL: the new code does not write the fields on login.",
    ),
    "token_validity_tracking": (
        "Token validity tracking",
        "The validity trigger is present and enabled and no unexpired token is flagged invalid. "
        "FAIL: the trigger is missing, disabled or wrong.",
    ),
    "latency_within_10pct": (
        "Latency within 10%",
        "Callback p95 over 1 h at most 1.1 x the pre-migration baseline p95. FAIL: a >10% "
        "regression. NO DATA: no baseline was learned before the migration.",
    ),
    "error_rate_within_baseline": (
        "Errors within baseline",
        "Callback error ratio over 1 h at or below the larger of the pre-migration error ratio "
        "and the error budget (1 - objective, the noise floor: with a 100% baseline one failed "
        "probe is no fail). FAIL: more errors than before and than the budget. NO DATA: no "
        "baseline was learned before the migration.",
    ),
}
PASS_FAIL = {0: ("FAIL", "red"), 1: ("PASS", "green")}
PASS_INCONCLUSIVE_FAIL = {0: ("FAIL", "red"), 1: ("INCONCLUSIVE", GREY), 2: ("PASS", "green")}
VERDICT_DESCRIPTION = (
    "The daemon's own decision over the window since the migration was applied (at most 24 h), "
    "the same decision rollout-monitor verdict makes from Prometheus and the status page at / "
    "shows: PASS, FAIL, or INCONCLUSIVE (no data, too few probes, no baseline, not applied yet). "
    "Worst of the selected instances: FAIL over INCONCLUSIVE over PASS (rollout_success_criterion,"
    " rollout_success_criterion_inconclusive)."
)


def criteria_rows() -> list[Item]:
    """The plan's criteria as the recording rules decide them over the last hour, then as the
    monitor itself does over the window since the migration."""
    same_names("success criteria", list(CRITERION_PANELS), [name for name, _ in CRITERIA])
    recorded = [
        stat_panel(
            title,
            f"{meaning} Worst of the selected instances (rollout:success_criterion:ok).",
            Query(f"min({series('rollout:success_criterion:ok', criterion=name)})", name),
            width=4,
            values=PASS_FAIL,
        )
        for name, (title, meaning) in CRITERION_PANELS.items()
    ]
    own = [
        stat_panel(
            f"{title} (since applied)",
            VERDICT_DESCRIPTION,
            Query(
                "min(\n"
                f"  2 * {series('rollout_success_criterion', criterion=name)}\n"
                "  or\n"
                f"  ({series('rollout_success_criterion_inconclusive', criterion=name)} == 1)\n"
                ")",
                name,
            ),
            width=4,
            values=PASS_INCONCLUSIVE_FAIL,
        )
        for name, (title, _) in CRITERION_PANELS.items()
    ]
    return [
        row("Success criteria (deployment plan), last hour per instance (recording rules)"),
        *recorded,
        row(
            "Success criteria since the migration (the monitor's own view, as rollout-monitor "
            "verdict decides them)"
        ),
        *own,
    ]
