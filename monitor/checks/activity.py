"""Auth activity seen in the database: sign-ups, tokens written, and logins since the migration.

The table counters come from pg_stat_user_tables (free). Logins since the migration need the
tokens issued or refreshed since then, and neither column is indexed: counted exactly while
threads_tokens is small, and above large_tables.estimate_above_rows from a block sample of the
tokens, each joined to its user by primary key (counting/estimates.py). The estimate counts
distinct users among the sampled tokens and scales by tokens / tokens sampled: right when each
user has one token row (the app refreshes it in place), high by the share of users holding
several recent tokens otherwise. The missing-field ratio the alerts use is not scaled at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client.metrics_core import Metric
from psycopg.sql import Composed

from monitor.checks.counting.estimates import ReadPlan, marker_families, plan_for
from monitor.checks.counting.nulls import missing_by_column, missing_counts
from monitor.checks.registry import Parts, register
from monitor.config.checks import CheckSettings
from monitor.config.schema import AppConfig, LargeTablesSettings
from monitor.db import sql
from monitor.db.pool import Database, Session
from monitor.observe.metrics import counter, gauge, labelled_gauge
from monitor.observe.migration import MigrationTracker
from monitor.observe.readings import Logins, Readings


class ActivityCheck:
    """Table counters from pg_stat_user_tables; logins since the migration missing new fields."""

    name = "activity"

    def __init__(
        self,
        db: Database,
        settings: CheckSettings,
        app: AppConfig,
        large_tables: LargeTablesSettings,
        *,
        tracker: MigrationTracker,
        readings: Readings | None = None,
    ) -> None:
        self._db = db
        self._readings = readings or Readings()
        self._schema = app.schema_name
        self._users = app.users
        self._tokens = app.tokens
        self._tracker = tracker
        self._large = large_tables
        self.interval = settings.interval

    def run(self) -> Sequence[Metric]:
        """Read the table counters, and the logins since the migration once it is applied."""
        applied_at = self._tracker.current().applied_at
        logins: Logins | None = None
        with self._db.session() as session:
            families = self._table_counters(session)
            if applied_at is not None:
                logins, since = self._logins_since(session, applied_at)
                families += since
        self._readings.publish(self.name, logins)
        if not any(f.name == "rollout_check_estimated" for f in families):
            families += marker_families(self.name, ReadPlan(0.0, None), 0.0)
        return families

    def _table_counters(self, session: Session) -> list[Metric]:
        users, tokens = self._users.table, self._tokens.table
        params = {"schema": self._schema, "tables": [users, tokens]}
        rows = {r["table_name"]: r for r in session.rows(sql.query("table_activity"), params)}
        empty = {"inserted": 0, "updated": 0}
        user_row, token_row = rows.get(users, empty), rows.get(tokens, empty)
        return [
            counter(
                "rollout_users_created_total",
                "Rows inserted into the users table (pg_stat_user_tables; resets with the stats).",
                user_row["inserted"],
            ),
            counter(
                "rollout_tokens_issued_total",
                "Rows inserted into the token table (pg_stat_user_tables; resets with the stats).",
                token_row["inserted"],
            ),
            counter(
                "rollout_tokens_refreshed_total",
                "Rows updated in the token table (pg_stat_user_tables; resets with the stats).",
                token_row["updated"],
            ),
        ]

    def _logins_since(
        self, session: Session, applied_at: datetime
    ) -> tuple[Logins | None, list[Metric]]:
        needed = [self._tokens.user_id, self._tokens.issued_at, self._tokens.last_refreshed_at]
        if len(session.existing_columns(self._schema, self._tokens.table, needed)) < len(needed):
            return None, []
        have = session.existing_columns(self._schema, self._users.table, self._users.new_columns)
        columns = [c for c in self._users.new_columns if c in have]
        plan = plan_for(session, self._schema, self._tokens.table, self._large)
        session.guard(self._schema, [self._users.table, self._tokens.table])
        row = session.row(self._logins_query(plan, columns), {"since": utc_naive(applied_at)})
        sampled = row["sampled"] if plan.estimated else 0.0
        missing = {c: plan.scale(n, sampled) for c, n in missing_by_column(row, columns).items()}
        users = plan.scale(row["users"], sampled)
        logins = Logins(users, max(missing.values()) if missing else None)
        return logins, [
            gauge(
                "rollout_users_logged_in_since_migration",
                "Users with a token issued or refreshed since the migration was applied.",
                users,
            ),
            labelled_gauge(
                "rollout_users_logged_in_since_migration_missing_field",
                "Of those, users whose new column is still NULL (the app should have filled it).",
                ["column"],
                {(column,): count for column, count in missing.items()},
            ),
            *marker_families(self.name, plan, sampled),
        ]

    def _logins_query(self, plan: ReadPlan, columns: Sequence[str]) -> Composed:
        tokens = sql.table(self._schema, self._tokens.table)
        return sql.query(
            "logins_since_migration_sample" if plan.estimated else "logins_since_migration",
            users=sql.table(self._schema, self._users.table),
            tokens=plan.relation(tokens),
            user_id=sql.column(self._users.id),
            token_user_id=sql.column(self._tokens.user_id),
            issued_at=sql.column(self._tokens.issued_at),
            last_refreshed_at=sql.column(self._tokens.last_refreshed_at),
            missing_counts=missing_counts(columns),
        )


def utc_naive(moment: datetime) -> datetime:
    """A UTC datetime without tzinfo, to compare with Prisma's timestamp-without-time-zone."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


@register("activity", order=4)
def _build(settings: CheckSettings, parts: Parts) -> ActivityCheck:
    return ActivityCheck(
        parts.db,
        settings,
        parts.app,
        parts.large_tables,
        tracker=parts.tracker,
        readings=parts.readings,
    )
