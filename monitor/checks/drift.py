"""Token validity drift: tokens whose isValid flag disagrees with their expiry (plan's Risk 3)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric

from monitor import sql
from monitor.checks.base import require_columns
from monitor.config import Config
from monitor.db import Database
from monitor.metrics import gauge, labelled_gauge


class DriftCheck:
    """Counts stale_valid and wrongly_invalid tokens, exactly, in UTC."""

    name = "drift"

    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self._schema = config.app.schema_name
        self._tokens = config.app.tokens
        self.interval = config.checks.drift.interval
        self._query = sql.query(
            "token_drift",
            tokens=sql.table(self._schema, self._tokens.table),
            is_valid=sql.column(self._tokens.is_valid),
            expires_at=sql.column(self._tokens.expires_at),
        )

    def run(self) -> Sequence[Metric]:
        """Query the drift; not applicable while isValid does not exist."""
        table = self._tokens.table
        with self._db.session() as session:
            require_columns(
                session, self._schema, table, [self._tokens.is_valid, self._tokens.expires_at]
            )
            session.guard(self._schema, [table])
            row = session.row(self._query)
        return [
            labelled_gauge(
                "rollout_token_validity_drift",
                "Tokens flagged valid but expired (stale_valid), or invalid but unexpired.",
                ["kind"],
                {
                    ("stale_valid",): row["stale_valid"],
                    ("wrongly_invalid",): row["wrongly_invalid"],
                },
            ),
            gauge("rollout_tokens", "Rows in the token table.", row["tokens"]),
        ]
