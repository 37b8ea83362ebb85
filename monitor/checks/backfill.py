"""Backfill: users whose new columns are still NULL, against all users (the plan's data check).

Above large_tables.estimate_above_rows the counts come from a block sample of users
(counting/estimates.py). pg_stats.null_frac would be free, but it does not exist for a column
until ANALYZE runs after ALTER TABLE ADD COLUMN, and then only moves when autoanalyze does
(after ~10% of the rows changed): too coarse to follow a backfill. The sample costs a constant
~sample_rows rows and follows every run.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric

from monitor.checks.base import NotApplicable
from monitor.checks.counting.estimates import marker_families, plan_for
from monitor.checks.counting.nulls import missing_by_column, missing_counts
from monitor.checks.registry import Parts, register
from monitor.config.checks import CheckSettings
from monitor.config.schema import AppConfig, LargeTablesSettings
from monitor.db import sql
from monitor.db.pool import Database
from monitor.observe.metrics import gauge, labelled_gauge
from monitor.observe.readings import Backfill, Readings


class BackfillCheck:
    """Counts users missing each new column that exists, and all users."""

    name = "backfill"

    def __init__(
        self,
        db: Database,
        settings: CheckSettings,
        app: AppConfig,
        large_tables: LargeTablesSettings,
        readings: Readings | None = None,
    ) -> None:
        self._readings = readings or Readings()
        self._db = db
        self._schema = app.schema_name
        self._users = app.users
        self._large = large_tables
        self.interval = settings.interval

    def run(self) -> Sequence[Metric]:
        """Count; not applicable while none of the new columns exists."""
        table = self._users.table
        with self._db.session() as session:
            have = session.existing_columns(self._schema, table, self._users.new_columns)
            columns = [c for c in self._users.new_columns if c in have]
            if not columns:
                raise NotApplicable(f"{table} has none of {', '.join(self._users.new_columns)}")
            plan = plan_for(session, self._schema, table, self._large)
            session.guard(self._schema, [table])
            query = sql.query(
                "users_backfill",
                users=plan.relation(sql.table(self._schema, table)),
                missing_counts=missing_counts(columns),
            )
            row = session.row(query)
        sampled = row["users"]
        missing = {c: plan.scale(n, sampled) for c, n in missing_by_column(row, columns).items()}
        self._readings.publish(self.name, Backfill(missing))
        return [
            labelled_gauge(
                "rollout_users_missing_field",
                "Users whose new column is still NULL.",
                ["column"],
                {(column,): count for column, count in missing.items()},
            ),
            gauge("rollout_users", "Rows in the users table.", plan.total(sampled)),
            *marker_families(self.name, plan, sampled),
        ]


@register("backfill", order=2)
def _build(settings: CheckSettings, parts: Parts) -> BackfillCheck:
    return BackfillCheck(parts.db, settings, parts.app, parts.large_tables, parts.readings)
