"""Token validity drift: tokens whose isValid flag disagrees with their expiry (plan's Risk 3).

Neither kind has an index that bounds the work ("isValid" and "expiresAt" are indexed apart, and
both predicates can match millions of rows), so above large_tables.estimate_above_rows both are
estimated from one block sample of the token table (monitor.checks.estimates). A handful of
wrongly invalid tokens in millions would fall outside the sample, and each is a user locked out:
so wrongly_invalid is counted exactly whenever the planner costs that count as cheap (few invalid
tokens, as right after the migration, or an index on ("expiresAt") WHERE NOT "isValid").
rollout_token_validity_drift_exact says which counts are exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from prometheus_client.metrics_core import Metric
from psycopg.sql import Composable, Composed

from monitor import sql
from monitor.checks.base import require_columns
from monitor.checks.estimates import marker_families, plan_for
from monitor.config import Config
from monitor.db import Database, Session
from monitor.metrics import gauge, labelled_gauge


class DriftCheck:
    """Counts stale_valid and wrongly_invalid tokens in UTC: exactly, or from a sample if large."""

    name = "drift"

    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self._schema = config.app.schema_name
        self._tokens = config.app.tokens
        self._large = config.large_tables
        self.interval = config.checks.drift.interval

    def run(self) -> Sequence[Metric]:
        """Query the drift; not applicable while isValid does not exist."""
        table = self._tokens.table
        with self._db.session() as session:
            require_columns(
                session, self._schema, table, [self._tokens.is_valid, self._tokens.expires_at]
            )
            plan = plan_for(session, self._schema, table, self._large)
            session.guard(self._schema, [table])
            tokens = plan.relation(sql.table(self._schema, table))
            row = session.row(self._query("token_drift", tokens))
            sampled = row["tokens"]
            wrongly = plan.scale(row["wrongly_invalid"], sampled)
            exact = self._exact_wrongly_invalid(session) if plan.estimated else None
        return [
            labelled_gauge(
                "rollout_token_validity_drift",
                "Tokens flagged valid but expired (stale_valid), or invalid but unexpired.",
                ["kind"],
                {
                    ("stale_valid",): plan.scale(row["stale_valid"], sampled),
                    ("wrongly_invalid",): wrongly if exact is None else exact,
                },
            ),
            labelled_gauge(
                "rollout_token_validity_drift_exact",
                "1 when the drift count of this kind is exact, 0 when estimated from a sample.",
                ["kind"],
                {
                    ("stale_valid",): float(not plan.estimated),
                    ("wrongly_invalid",): float(not plan.estimated or exact is not None),
                },
            ),
            gauge("rollout_tokens", "Rows in the token table.", plan.total(sampled)),
            *marker_families(self.name, plan, sampled),
        ]

    def _exact_wrongly_invalid(self, session: Session) -> float | None:
        """The exact count of wrongly invalid tokens when the planner says it is cheap."""
        query = self._query("wrongly_invalid_exact", sql.table(self._schema, self._tokens.table))
        if session.cost(query) > self._large.exact_max_cost:
            return None
        try:
            return float(session.row(query)["wrongly_invalid"])
        except psycopg.errors.QueryCanceled:  # slower than planned (stale statistics)
            return None  # the last statement of the session: the sample's counts stand

    def _query(self, name: str, tokens: Composable) -> Composed:
        return sql.query(
            name,
            tokens=tokens,
            is_valid=sql.column(self._tokens.is_valid),
            expires_at=sql.column(self._tokens.expires_at),
        )
