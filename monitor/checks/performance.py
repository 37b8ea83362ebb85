"""Query performance: the plan's EXPLAIN ANALYZE of the login lookup by threadsUserId."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.metrics_core import Metric
from psycopg.sql import Literal

from monitor.checks.registry import Parts, register
from monitor.config.checks import QueryPerformanceSettings
from monitor.config.schema import AppConfig
from monitor.db import sql
from monitor.db.pool import Database
from monitor.observe.metrics import gauge, labelled_gauge
from monitor.observe.readings import Lookup, Readings

INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


def scan_of(plan: dict[str, Any]) -> tuple[str, str]:
    """(node type, index name or '') of the plan's first scan: how users was reached."""
    for node in plan_nodes(plan):
        kind = node["Node Type"]
        if kind in INDEX_NODES or kind == "Seq Scan":
            return kind, node.get("Index Name", "")
    return plan["Node Type"], ""


class QueryPerformanceCheck:
    """Times the user lookup and reports whether it uses an index (the plan's >10% criterion)."""

    name = "query_performance"

    def __init__(
        self,
        db: Database,
        settings: QueryPerformanceSettings,
        app: AppConfig,
        readings: Readings | None = None,
    ) -> None:
        self._db = db
        self._readings = readings or Readings()
        self._schema = app.schema_name
        users = app.users
        self._table = users.table
        self.interval = settings.interval
        self._query = sql.query(
            "user_lookup_plan",
            users=sql.table(self._schema, users.table),
            id=sql.column(users.id),
            threads_user_id=sql.column(users.threads_user_id),
            threads_username=sql.column(users.threads_username),
            value=Literal(settings.threads_user_id),
        )

    def run(self) -> Sequence[Metric]:
        """Run the lookup under EXPLAIN ANALYZE and export its timings and scan."""
        with self._db.session() as session:
            session.guard(self._schema, [self._table])
            result = session.row(self._query)["QUERY PLAN"][0]
        node, index = scan_of(result["Plan"])
        seconds = result["Execution Time"] / 1000
        self._readings.publish(self.name, Lookup(seconds, node, index))
        return [
            gauge(
                "rollout_user_lookup_execution_seconds",
                "Execution time of the login lookup by threadsUserId (EXPLAIN ANALYZE).",
                seconds,
            ),
            gauge(
                "rollout_user_lookup_planning_seconds",
                "Planning time of the login lookup by threadsUserId (EXPLAIN ANALYZE).",
                result["Planning Time"] / 1000,
            ),
            gauge(
                "rollout_user_lookup_index_scan",
                "1 when the login lookup reaches users through an index.",
                float(node in INDEX_NODES),
            ),
            labelled_gauge(
                "rollout_user_lookup_plan_info",
                "How the login lookup reaches users: scan node and index.",
                ["node", "index"],
                {(node, index): 1},
            ),
        ]


@register("query_performance", order=5)
def _build(settings: QueryPerformanceSettings, parts: Parts) -> QueryPerformanceCheck:
    return QueryPerformanceCheck(parts.db, settings, parts.app, parts.readings)
