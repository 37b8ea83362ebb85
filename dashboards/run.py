"""The migration's run, live: the statement it runs or waits on, its lock wait against the page's
30 s, the age of the transaction blocking it, and how far an index build is (Risk 1 as it
happens; from the `migration_run` check)."""

from __future__ import annotations

from grafana_foundation_sdk.models import common

from .names import alert
from .panels import GREY, Item, Query, bars_panel, row, series, stat_panel, trend_panel

# The migration's wait that pages, with sessions queued behind it (alerts/alerting.rules.yml).
PAGED_WAIT_SECONDS = 30


def run_row() -> list[Item]:
    return [
        row("Migration run"),
        stat_panel(
            "Statement",
            "The migration's statement (numbered as `rollout-monitor plan` numbers them) that "
            "its session runs or waits on, with its kind, and the lock it waits for "
            "(rollout_migration_statement_info; its line is a label there). NOT RUNNING: no "
            "session of the migration is seen. Bad: the same statement for long with a lock "
            "named (it waits).",
            # Not running: the statement gauge's 0, named so (the query always has data).
            Query(
                f"{series('rollout_migration_statement_info')}\nor on (instance, job)\n"
                "label_replace("
                f"{series('rollout_migration_statement')} == 0, "
                '"kind", "NOT RUNNING", "", "")',
                "{{statement}} {{kind}} {{mode}} {{table}}",
            ),
            width=6,
            no_value="NOT RUNNING",
        ).text_mode(common.BigValueTextMode.NAME),
        trend_panel(
            "Lock wait and blocker",
            "How long the migration has waited for its lock, and the age of the oldest "
            "transaction blocking it. Bad: the wait in the red area (past "
            f"{PAGED_WAIT_SECONDS} s) with sessions queued behind it pages "
            f"({alert('RolloutSessionsBlockedByDDL')}); end the blocker or cancel the migration.",
            [
                Query(series("rollout_migration_lock_wait_seconds"), "lock wait {{instance}}"),
                Query(
                    series("rollout_migration_blocker_transaction_seconds"),
                    "blocking transaction {{instance}}",
                ),
            ],
            width=12,
            unit="s",
            limit=PAGED_WAIT_SECONDS,
        ),
        bars_panel(
            "Index build",
            "How far the index the migration builds is through its phase "
            "(pg_stat_progress_create_index: the table's blocks while scanning it, the tuples "
            'while loading them). "none" when no index is being built. Bad: a build on a large '
            "table while the migration holds an ACCESS EXCLUSIVE lock: everything waits for it.",
            # No build: a bar at 0 named "none" (the query always has data).
            Query(
                f"{series('rollout_migration_index_build_progress_ratio')}\nor on (instance, job)\n"
                "label_replace("
                f"0 * {series('rollout_migration_statement')}, "
                '"index", "none", "", "")',
                "{{index}} {{phase}} {{instance}}",
            ),
            width=6,
            unit="percentunit",
            values={},
            thresholds=((None, GREY),),
        ),
    ]
