"""Exact counts on small tables, block-sample estimates on large ones (large_tables settings).

A check that counts rows of `users` or `threads_tokens` asks `read_plan` how to read the table
this run. The size comes from the catalog (`pg_class.reltuples`, never pg_relation_size, which
opens the relation and would queue behind ALTER TABLE). Up to `estimate_above_rows` the check
counts exactly, as it always did. Above, it reads the table through `TABLESAMPLE SYSTEM (p)`:
whole pages picked at random, about `sample_rows` rows, under the same ACCESS SHARE lock as any
SELECT, so the work stays constant however large the table grows. Counts in the sample are
scaled by reltuples / rows sampled and rounded.

REPEATABLE with a fixed seed makes every run read the same pages (and, as the table grows, the
same share of the new ones): the series moves when the data does, not with each draw, so
`delta()` alerts are not fed sampling noise. The price is that a bias of those pages persists;
raise `sample_rows` for a tighter estimate (cost grows linearly).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from psycopg import sql

from monitor.config.schema import LargeTablesSettings
from monitor.db import sql as queries
from monitor.db.pool import Session
from monitor.observe.metrics import labelled_gauge

# Fixed, so every run samples the same pages (see the module docstring).
SAMPLE_SEED = 4
# Rows per 8 kB page assumed for a table never vacuumed or analyzed, whose reltuples is unknown;
# users and threads_tokens rows are ~60-120 bytes wide.
ROWS_PER_PAGE = 100


@dataclass(frozen=True)
class TableSize:
    """What the catalog says about a table's size; no lock taken to learn it."""

    reltuples: float
    relpages: int
    live_tuples: int

    @property
    def rows(self) -> float:
        """Estimated rows: reltuples, or for a never-analyzed table pages and live tuples."""
        if self.reltuples >= 0:
            return self.reltuples
        # reltuples is -1 until the first VACUUM/ANALYZE (PostgreSQL 14+); relpages is usually
        # 0 then too, and n_live_tup counts the rows inserted since (a bulk load before
        # autovacuum got to it). Small only if both say so.
        return float(max(self.relpages * ROWS_PER_PAGE, self.live_tuples))


def table_size(session: Session, schema: str, table: str) -> TableSize:
    """The table's size from pg_class and pg_stat_user_tables (catalog and statistics only)."""
    rows = session.rows(queries.query("table_size"), {"schema": schema, "table": table})
    if not rows:
        return TableSize(reltuples=0.0, relpages=0, live_tuples=0)
    row = rows[0]
    return TableSize(float(row["reltuples"]), int(row["relpages"]), int(row["live_tuples"]))


@dataclass(frozen=True)
class ReadPlan:
    """How a check reads one table this run: all of it, or a block sample of `percent`."""

    table_rows: float
    percent: float | None
    # False for a never-analyzed table: table_rows is then only a guess, and the sample itself
    # (rows read / share of pages read) is the better estimate of the table's rows.
    rows_known: bool = True

    @property
    def estimated(self) -> bool:
        """Whether counts from this read are estimates."""
        return self.percent is not None

    def relation(self, table: sql.Composable) -> sql.Composable:
        """The table, or the table TABLESAMPLE SYSTEM (percent) REPEATABLE (seed)."""
        if self.percent is None:
            return table
        return sql.SQL("{} TABLESAMPLE SYSTEM ({}) REPEATABLE ({})").format(
            table, sql.Literal(self.percent), sql.Literal(SAMPLE_SEED)
        )

    def rows(self, sampled: float) -> float:
        """The table's rows, given the rows this read saw."""
        if self.percent is None:
            return float(sampled)
        return self.table_rows if self.rows_known else sampled * 100.0 / self.percent

    def scale(self, count: float, sampled: float) -> float:
        """A count from this read as a count over the whole table (whole rows when estimated)."""
        if self.percent is None:
            return float(count)
        return float(round(count * self.rows(sampled) / sampled)) if sampled else 0.0

    def total(self, sampled: float) -> float:
        """The table's rows: counted exactly, or estimated (rounded)."""
        return float(round(self.rows(sampled)))

    def ratio(self, sampled: float) -> float:
        """Share of the table's rows this read saw (1 when exact)."""
        rows = self.rows(sampled)
        if self.percent is None or rows <= 0:
            return 1.0
        return min(1.0, sampled / rows)


def read_plan(size: TableSize, settings: LargeTablesSettings) -> ReadPlan:
    """Exact up to estimate_above_rows; above, a sample of about sample_rows rows."""
    rows = size.rows
    percent = 100.0 * settings.sample_rows / rows if rows > 0 else 100.0
    if rows <= settings.estimate_above_rows or percent >= 100.0:
        return ReadPlan(rows, None)  # small, or the sample would be the whole table: count it
    return ReadPlan(rows, percent, rows_known=size.reltuples >= 0)


def plan_for(session: Session, schema: str, table: str, settings: LargeTablesSettings) -> ReadPlan:
    """read_plan for the table's current size."""
    return read_plan(table_size(session, schema, table), settings)


def marker_families(check: str, plan: ReadPlan, sampled: float) -> list[Metric]:
    """rollout_check_estimated and rollout_check_sample_ratio for the check's run."""
    return [
        labelled_gauge(
            "rollout_check_estimated",
            "1 when the check's counts are estimated from a sample of a large table, 0 if exact.",
            ["check"],
            {(check,): float(plan.estimated)},
        ),
        labelled_gauge(
            "rollout_check_sample_ratio",
            "Share of the table's rows the check read for its counts (1 when exact).",
            ["check"],
            {(check,): plan.ratio(sampled)},
        ),
    ]
