"""The rollout overview dashboard, read top to bottom: the rollout's state, the migration's run,
the plan's success criteria twice (Prometheus's recording rules, then the monitor's own verdict),
the OAuth callback, tokens and backfill, database pressure, and the monitor's own health.

Built from the project's own names: the criteria (monitor.judge.criteria), the migration's states
(monitor.observe.migration), the rollout's phases (the status page's), and the alerts of
alerts/alerting.rules.yml. A name here that the project does not have stops the build.
`python -m dashboards` writes it to rollout-overview.json.
"""

from __future__ import annotations

from collections.abc import Mapping

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from monitor.judge.rollout import PHASES
from monitor.observe.migration import STATES

from .criteria import criteria_rows
from .names import alert, same_names
from .panels import (
    GREY,
    TARGET,
    Item,
    Line,
    Query,
    Reading,
    bars_panel,
    row,
    series,
    stat_panel,
    states_panel,
    trend_panel,
)
from .run import run_row
from .templating import annotation_queries, variables

UID = "rollout-overview"
# The version of Grafana's dashboard JSON this is written for (the SDK's models default to 36).
SCHEMA_VERSION = 39
UNKNOWN: Reading = ("UNKNOWN", GREY)

# Each migration state and each rollout phase, in the order of its value on a stat panel (from 1;
# 0 is UNKNOWN, when none is exported).
STATE_READINGS: Mapping[str, Reading] = {
    "pending": ("PENDING", "blue"),
    "partial": ("PARTIAL", "red"),
    "applied": ("APPLIED", "green"),
    "rolled_back": ("ROLLED BACK", "orange"),
}
PHASE_READINGS: Mapping[str, Reading] = {
    "not_applied": ("NOT APPLIED", "blue"),
    "critical": ("CRITICAL", "orange"),
    "monitoring": ("MONITORING", "yellow"),
    "done": ("DONE", "green"),
    "migrating": ("MIGRATING", "purple"),
}


def ranked_panel(
    title: str, description: str, name: str, label: str, readings: Mapping[str, Reading]
) -> stat.Panel:
    """One stat per instance from a gauge per label value (1 on the value that holds): that
    value's rank in `readings`, shown as its reading; 0, when none is exported, as UNKNOWN."""
    terms = "\n  or ".join(
        f"{series(name, **{label: value})} * {rank}" for rank, value in enumerate(readings, 1)
    )
    return stat_panel(
        title,
        description,
        Query(f"max without ({label}) (\n    {terms}\n)", "{{instance}}"),
        width=5,
        values={0: UNKNOWN, **dict(enumerate(readings.values(), 1))},
    )


def status_row() -> list[Item]:
    same_names("migration states", list(STATE_READINGS), STATES)
    same_names("rollout phases", list(PHASE_READINGS), [p for p in PHASES if p != "unknown"])
    return [
        row("Rollout status"),
        ranked_panel(
            "Migration state",
            "Which state the monitor sees for migration 001 (from rollout_migration_state): "
            "APPLIED is the goal; PARTIAL (some objects missing: the migration failed half-way) "
            "and ROLLED BACK need a human now. PENDING before the migration runs.",
            "rollout_migration_state",
            "state",
            STATE_READINGS,
        ),
        ranked_panel(
            "Rollout phase",
            "Where the rollout is in the plan's timeline (rollout:migration_phase): CRITICAL is "
            "the first hour after the migration was applied (watch closely, tighter alerts), "
            "MONITORING up to 24 h, DONE after. MIGRATING while the migration's run is under way "
            "(Prisma's lock or record, its ALTER TABLE holding or queued for a lock, objects "
            "appearing): logins that fail then count against it. NOT APPLIED while pending, "
            "partial or rolled back.",
            "rollout:migration_phase",
            "phase",
            PHASE_READINGS,
        ),
        stat_panel(
            "Time since applied",
            "How long ago migration 001 was applied (rollout:migration_applied:age_seconds). The "
            "first hour is the critical period, 24 h the end of full monitoring. Empty while not "
            "applied.",
            Query(series("rollout:migration_applied:age_seconds"), "{{instance}}"),
            width=5,
            thresholds=((None, "orange"), (3600, "yellow"), (86400, "green")),
            unit="s",
            no_value="not applied",
            color_by=common.BigValueColorMode.VALUE,
        ),
        stat_panel(
            "PostgreSQL",
            "Whether the monitor's last poll could connect to and query the database "
            "(rollout_postgres_up). DOWN: the database (or the monitor's access to it) is gone "
            "and every database panel below is stale. NO DATA: the monitor itself is not scraped.",
            Query(series("rollout_postgres_up"), "{{instance}}"),
            width=4,
            values={0: ("DOWN", "red"), 1: ("UP", "green")},
        ),
        stat_panel(
            "Firing rollout alerts",
            "Rollout* alerts firing now in Prometheus (ALERTS) for the selected job and instance. "
            f"With All (the default) this includes {alert('RolloutMonitorAbsent')}'s "
            "no-monitor-at-all variant, which has neither label; a chosen instance shows only its "
            "own. Anything above 0 has a runbook link in its notification.",
            Query(
                f'count(ALERTS{{alertstate="firing", alertname=~"Rollout.*", {TARGET}}})'
                " or vector(0)",
                "firing",
            ),
            width=5,
            thresholds=((None, "green"), (1, "red")),
            no_value=None,
            decimals=0,
        ),
    ]


def callback_row() -> list[Item]:
    callback_p = "rollout:auth_callback_duration_seconds"
    baseline_p95 = series("rollout_baseline_auth_callback_duration_seconds", quantile="0.95")
    return [
        row("OAuth callback"),
        trend_panel(
            "Callback success ratio",
            "Share of synthetic callback probes answered as a healthy app would, over 1 h and "
            "24 h, against the objective (dashed) set once in the recording rules. Bad: the 1 h "
            "line drops below the objective; RolloutLoginsFailing pages (and the burn rates raise "
            "tickets) before the 24 h line does.",
            [
                Query(series("rollout:auth_callback_success:ratio_rate1h"), "1h {{instance}}"),
                Query(series("rollout:auth_callback_success:ratio_rate24h"), "24h {{instance}}"),
                Query("rollout:auth_callback_success:objective_ratio", "objective"),
            ],
            width=8,
            unit="percentunit",
            low=None,
            high=1,
            lines=[Line("red", ref_id="C", dashed=True)],
        ),
        trend_panel(
            "Callback latency vs baseline",
            "Callback probe latency percentiles against the p95 learned before the migration "
            "(dashed blue) and 1.1 x that baseline (dashed red, the plan's 10% limit). Bad: p95 "
            f"1h above the red line ({alert('RolloutCallbackLatencyRegression')}).",
            [
                Query(series(f"{callback_p}:p95_rate1h"), "p95 1h {{instance}}"),
                Query(series(f"{callback_p}:p95_rate24h"), "p95 24h {{instance}}"),
                Query(series(f"{callback_p}:p50_rate5m"), "p50 5m {{instance}}"),
                Query(series(f"{callback_p}:p99_rate5m"), "p99 5m {{instance}}"),
                Query(baseline_p95, "baseline p95 {{instance}}"),
                Query(f"1.1 * {baseline_p95}", "1.1 x baseline p95 {{instance}}"),
            ],
            width=8,
            unit="s",
            lines=[Line("blue", ref_id="E", dashed=True), Line("red", ref_id="F", dashed=True)],
        ),
        trend_panel(
            "Callback probes by outcome",
            "Probes per second by outcome. Healthy: only success. Bad: server_error (5xx from the "
            "app: incompatible code, Risk 2), timeout, connection_error (app down) or "
            "unexpected_status.",
            [
                Query(
                    "sum by (instance, outcome) (\n"
                    f"  rate({series('rollout_auth_callback_requests_total')}[$__rate_interval])\n"
                    ")",
                    "{{outcome}} {{instance}}",
                )
            ],
            width=8,
            unit="reqps",
            stacked=True,
            lines=[Line("green", name="success"), Line("red", name="server_error")],
        ),
    ]


def tokens_row() -> list[Item]:
    return [
        row("Tokens and backfill"),
        trend_panel(
            "Token validity drift",
            "Tokens whose isValid flag disagrees with expiresAt, per instance. wrongly_invalid "
            "(red) locks users out and must stay 0: the validity trigger is wrong. stale_valid is "
            "expired tokens nobody wrote since they expired: isValid is only recomputed when a "
            "row is written, so it grows on a healthy rollout too until the token refresh script "
            "runs (a ticket, not an emergency).",
            [
                Query(
                    f"max by (instance, kind) ({series('rollout_token_validity_drift')})",
                    "{{kind}} {{instance}}",
                )
            ],
            width=8,
            unit="none",
            lines=[
                Line("red", pattern="^wrongly_invalid "),
                Line("yellow", pattern="^stale_valid "),
            ],
        ),
        trend_panel(
            "Users missing a new field",
            "Users whose new column is still NULL (all users), and of the users who logged in "
            "since the migration (should be 0: the new code fills the fields on login), per "
            "instance. Bad: logged-in users missing a field (the alert fires above 10% of them, "
            "with at least 10 logins).",
            [
                Query(
                    f"max by (instance, column) ({series('rollout_users_missing_field')})",
                    "all users: {{column}} {{instance}}",
                ),
                Query(
                    "max by (instance, column) "
                    f"({series('rollout_users_logged_in_since_migration_missing_field')})",
                    "logged in since migration: {{column}} {{instance}}",
                ),
            ],
            width=8,
            unit="none",
        ),
        trend_panel(
            "Backfill progress",
            "Share of all users that have the new column filled (1 - missing / users). Expect it "
            "to rise towards 100% as users log in. Bad: flat for hours while logins continue "
            f"({alert('RolloutBackfillStalled')}).",
            [
                Query(
                    "1 - (\n"
                    f"  {series('rollout_users_missing_field')}\n"
                    "  / on (instance, job) group_left ()\n"
                    f"  {series('rollout_users')}\n"
                    ")",
                    "{{column}} {{instance}}",
                )
            ],
            width=8,
            unit="percentunit",
            high=1,
        ),
    ]


def database_row() -> list[Item]:
    return [
        row("Database"),
        trend_panel(
            "Connections vs max",
            "Client connections to the server (all states and applications) against "
            "max_connections (dashed red). Bad: the gap closes; new sessions, the app's included, "
            "will be refused.",
            [
                Query(
                    f"sum without (state, application_name) ({series('rollout_db_connections')})",
                    "connections {{instance}}",
                ),
                Query(series("rollout_db_max_connections"), "max_connections {{instance}}"),
            ],
            width=6,
            unit="none",
            lines=[Line("red", ref_id="B", dashed=True)],
        ),
        trend_panel(
            "Connection utilization",
            "Client connections / max_connections. Bad: above 80% (the red area) for 5 minutes "
            f"pages ({alert('RolloutDBConnectionsHigh')}).",
            [Query(series("rollout_db_connections_utilization_ratio"), "{{instance}}")],
            width=6,
            unit="percentunit",
            high=1,
            limit=0.8,
        ),
        trend_panel(
            "Lock waits and DDL",
            "Sessions waiting on any lock, sessions waiting for an ACCESS EXCLUSIVE lock (the "
            "migration's ALTER TABLE), and sessions queued behind DDL (Risk 1: the app stalls). "
            "Healthy: all 0; blocked by DDL above 0 for a minute pages.",
            [
                Query(series("rollout_db_lock_waiting_sessions"), "waiting on a lock {{instance}}"),
                Query(series("rollout_db_ddl_waiting_sessions"), "DDL waiting {{instance}}"),
                Query(series("rollout_db_sessions_blocked_by_ddl"), "blocked by DDL {{instance}}"),
            ],
            width=6,
            unit="none",
        ),
        trend_panel(
            "Longest lock wait",
            "The longest current lock wait and the oldest open transaction. Bad: either grows "
            "past a few seconds during the migration; a long transaction makes the ALTER TABLE "
            "wait, and everything queues behind it.",
            [
                Query(
                    series("rollout_db_longest_lock_wait_seconds"), "longest lock wait {{instance}}"
                ),
                Query(
                    series("rollout_db_oldest_transaction_age_seconds"),
                    "oldest transaction {{instance}}",
                ),
            ],
            width=6,
            unit="s",
        ),
    ]


def health_row() -> list[Item]:
    last_success = series("rollout_check_last_success_timestamp_seconds")
    return [
        row("Monitor health"),
        states_panel(
            "Check success",
            "Whether each check's last completed run succeeded (rollout_check_success). A failing "
            "check withdraws its own gauges, so panels fed by it go empty. Bad: red for more than "
            f"a few intervals ({alert('RolloutCheckFailing')}).",
            Query(series("rollout_check_success"), "{{check}} {{instance}}"),
            width=12,
            values={0: ("FAIL", "red"), 1: ("OK", "green")},
        ),
        bars_panel(
            "Time since last check success",
            'Seconds since each check last succeeded. "never succeeded" (red): the check has not '
            "succeeded once since the monitor started (its timestamp is 0). Each check runs on "
            "its own interval; bad is several intervals without a success (the alert fires at "
            "4), unless the check is skipped because a table is locked.",
            # A timestamp of 0 would read as 56 years ago: it is shown as -1, "never succeeded".
            Query(
                f"(time() - {last_success}) and {last_success} > 0\nor\n({last_success} == 0) - 1",
                "{{check}} {{instance}}",
            ),
            width=8,
            unit="s",
            values={-1: ("never succeeded", "red")},
            thresholds=((None, "green"), (300, "yellow"), (900, "red")),
        ),
        stat_panel(
            "Skipped checks",
            "Checks whose last run was skipped because a table they read was locked "
            "(rollout_check_skipped): they keep showing their last values. Expected briefly while "
            "the migration's ALTER TABLE holds its lock; for long, see the lock panels.",
            Query(f"sum({series('rollout_check_skipped')})", "skipped"),
            width=4,
            height=8,
            thresholds=((None, "green"), (1, "orange")),
            no_value=None,
            decimals=0,
        ),
    ]


def overview() -> model.Dashboard:
    """The whole dashboard, panels numbered from 1 in reading order."""
    dashboard = (
        dashboard_builders.Dashboard("Rollout: 001_threads_oauth_enhancements")
        .uid(UID)
        .description(
            "Migration 001_threads_oauth_enhancements: state, its run, the plan's success "
            "criteria, the OAuth callback, tokens, backfill, database pressure and the monitor's "
            "own health. Read top to bottom."
        )
        .tags(["rollout", "migration", "postgresql"])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("")
        .week_start("")
        .fiscal_year_start_month(0)
        .version(1)
        .links([])
        .variables(variables())
        .annotations(annotation_queries())
    )
    bands = (status_row, run_row, criteria_rows, callback_row, tokens_row, database_row, health_row)
    for band in bands:
        for item in band():
            dashboard = place(dashboard, item)
    built = dashboard.build()
    built.schema_version = SCHEMA_VERSION
    for number, panel in enumerate(built.panels or [], 1):
        panel.id_val = number
    return built


def place(builder: dashboard_builders.Dashboard, item: Item) -> dashboard_builders.Dashboard:
    """A row starts a new band of the grid; a panel goes right of the last, or below."""
    if isinstance(item, dashboard_builders.Row):
        return builder.with_row(item)
    return builder.with_panel(item)
