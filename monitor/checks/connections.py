"""Connections: pg_stat_activity by state, headroom to max_connections, and lock waits (Risk 1)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric

from monitor.checks.registry import Parts, register
from monitor.config.checks import ConnectionsSettings
from monitor.db import sql
from monitor.db.pool import Database, Row
from monitor.observe.metrics import gauge, labelled_gauge
from monitor.observe.readings import Connections, Readings

STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
    "unknown",
)
OTHER = "other"


class ConnectionsCheck:
    """Reads pg_stat_activity and pg_locks (views, no table locks) every interval."""

    name = "connections"

    def __init__(
        self,
        db: Database,
        settings: ConnectionsSettings,
        own_application_name: str,
        readings: Readings | None = None,
    ) -> None:
        self._db = db
        self._readings = readings or Readings()
        self.interval = settings.interval
        self._app_name = settings.app_application_name
        self._app_pool_size = settings.app_pool_size
        self._own_name = own_application_name
        named = [self._own_name, *settings.application_names]
        if self._app_name:
            named.append(self._app_name)
        self._names = tuple(dict.fromkeys(named))

    def run(self) -> Sequence[Metric]:
        """Count connections and lock waiters."""
        with self._db.session() as session:
            by_state = session.rows(sql.query("connections_by_state"), self._db.own_sessions())
            pressure = session.row(sql.query("connection_pressure"))
        reading = Connections(
            clients=float(sum(row["connections"] for row in by_state)),
            max_connections=float(pressure["max_connections"]),
            lock_waiting=float(pressure["lock_waiting_sessions"]),
            blocked_by_ddl=float(pressure["sessions_blocked_by_ddl"]),
        )
        self._readings.publish(self.name, reading)
        return [
            *self._connection_families(by_state),
            *self._pressure_families(pressure),
            *self._app_pool_families(by_state),
        ]

    def _bucket(self, row: Row) -> str:
        """The name itself when configured, else 'other': keeps label values bounded. The
        monitor's own name is its own sessions' (known by PID): another client (or monitor)
        taking that name counts as 'other'."""
        name = row["application_name"]
        if row["own"]:
            return self._own_name
        return name if name in self._names and name != self._own_name else OTHER

    def _connection_families(self, rows: list[Row]) -> list[Metric]:
        counts: dict[tuple[str, ...], float] = {
            (s, n): 0.0 for s in STATES for n in (*self._names, OTHER)
        }
        for row in rows:
            state = row["state"] if row["state"] in STATES else "unknown"
            key = (state, self._bucket(row))
            counts[key] += row["connections"]
        return [
            labelled_gauge(
                "rollout_db_connections",
                "Client connections by state and application_name (unlisted names are 'other').",
                ["state", "application_name"],
                counts,
            )
        ]

    def _pressure_families(self, row: Row) -> list[Metric]:
        return [
            gauge(
                "rollout_db_max_connections",
                "The server's max_connections.",
                row["max_connections"],
            ),
            gauge(
                "rollout_db_connections_utilization_ratio",
                "Client connections divided by max_connections.",
                row["client_connections"] / row["max_connections"],
            ),
            gauge(
                "rollout_db_oldest_transaction_age_seconds",
                "Age of the oldest open transaction of any client session.",
                float(row["oldest_transaction_seconds"]),
            ),
            gauge(
                "rollout_db_lock_waiting_sessions",
                "Sessions waiting on a lock right now.",
                row["lock_waiting_sessions"],
            ),
            gauge(
                "rollout_db_longest_lock_wait_seconds",
                "How long the longest current lock wait has lasted.",
                float(row["longest_lock_wait_seconds"]),
            ),
            gauge(
                "rollout_db_ddl_waiting_sessions",
                "Sessions waiting for an ACCESS EXCLUSIVE lock (DDL such as ALTER TABLE).",
                row["ddl_waiting_sessions"],
            ),
            gauge(
                "rollout_db_sessions_blocked_by_ddl",
                "Sessions queued behind a session holding or awaiting an ACCESS EXCLUSIVE lock.",
                row["sessions_blocked_by_ddl"],
            ),
        ]

    def _app_pool_families(self, rows: list[Row]) -> list[Metric]:
        if self._app_name is None:
            return []
        used = sum(r["connections"] for r in rows if r["application_name"] == self._app_name)
        families: list[Metric] = [
            gauge("rollout_app_pool_connections", "The app's connections to the database.", used)
        ]
        if self._app_pool_size is not None:
            families += [
                gauge(
                    "rollout_app_pool_size", "The app's configured pool size.", self._app_pool_size
                ),
                gauge(
                    "rollout_app_pool_utilization_ratio",
                    "The app's connections divided by its configured pool size.",
                    used / self._app_pool_size,
                ),
            ]
        return families


@register("connections", order=3)
def _build(settings: ConnectionsSettings, parts: Parts) -> ConnectionsCheck:
    return ConnectionsCheck(parts.db, settings, parts.application_name, parts.readings)
