"""Backfill: users whose new columns are still NULL, against all users (the plan's data check)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric

from monitor import sql
from monitor.checks.base import NotApplicable
from monitor.checks.nulls import missing_by_column, missing_counts
from monitor.config import Config
from monitor.db import Database
from monitor.metrics import gauge, labelled_gauge


class BackfillCheck:
    """Counts users missing each new column that exists, and all users."""

    name = "backfill"

    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self._schema = config.app.schema_name
        self._users = config.app.users
        self.interval = config.checks.backfill.interval

    def run(self) -> Sequence[Metric]:
        """Count; not applicable while none of the new columns exists."""
        table = self._users.table
        with self._db.session() as session:
            have = session.existing_columns(self._schema, table, self._users.new_columns)
            columns = [c for c in self._users.new_columns if c in have]
            if not columns:
                raise NotApplicable(f"{table} has none of {', '.join(self._users.new_columns)}")
            session.guard(self._schema, [table])
            query = sql.query(
                "users_backfill",
                users=sql.table(self._schema, table),
                missing_counts=missing_counts(columns),
            )
            row = session.row(query)
        return [
            labelled_gauge(
                "rollout_users_missing_field",
                "Users whose new column is still NULL.",
                ["column"],
                missing_by_column(row, columns),
            ),
            gauge("rollout_users", "Rows in the users table.", row["users"]),
        ]
