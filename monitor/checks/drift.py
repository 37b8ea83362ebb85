"""Token validity drift: tokens whose isValid flag disagrees with their expiry (plan's Risk 3).

Neither kind has an index that bounds the work ("isValid" and "expiresAt" are indexed apart, and
both predicates can match millions of rows), so above large_tables.estimate_above_rows both are
estimated from one block sample of the token table (counting/estimates.py). A handful of
wrongly invalid tokens in millions would fall outside the sample, and each is a user locked out:
so the check also sweeps the whole table a few slices a run (counting/sweep.py), and once a
pass is done reports its exact counts; and wrongly_invalid is counted exactly at once whenever
the planner costs that count as cheap (few invalid tokens, as right after the migration, or an
index on ("expiresAt") WHERE NOT "isValid"). rollout_token_validity_drift_exact says which counts
are exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import structlog
from prometheus_client.metrics_core import Metric
from psycopg.sql import SQL, Composable, Composed

from monitor.checks.base import require_columns
from monitor.checks.counting.estimates import ReadPlan, marker_families, read_plan, table_size
from monitor.checks.counting.sweep import TID_RANGE_SCAN_SINCE, Sweep, Tally, Totals
from monitor.checks.registry import Parts, register
from monitor.config.checks import CheckSettings
from monitor.config.schema import AppConfig, LargeTablesSettings
from monitor.db import sql
from monitor.db.pool import Database, Session, TableLocked
from monitor.observe.metrics import gauge, labelled_gauge
from monitor.observe.readings import Drift, Readings

log = structlog.get_logger("monitor.check").bind(check="drift")
WHOLE = SQL("")
SLICE = SQL("WHERE ctid >= %(first)s::tid AND ctid < %(last)s::tid")


class SweepOff(Exception):
    """The sweep cannot read the token table here: the sample's counts stand from now on."""


class DriftCheck:
    """Counts stale_valid and wrongly_invalid tokens in UTC: exactly, or from a sample if large."""

    name = "drift"

    def __init__(
        self,
        db: Database,
        settings: CheckSettings,
        app: AppConfig,
        large_tables: LargeTablesSettings,
        readings: Readings | None = None,
    ) -> None:
        self._db = db
        self._readings = readings or Readings()
        self._schema = app.schema_name
        self._tokens = app.tokens
        self._large = large_tables
        self.interval = settings.interval
        self._sweep: Sweep | None = None
        self._tid_ranges = False  # the server was seen to have TID Range Scans
        if self._large.sweep:
            self._sweep = Sweep(self._large.sweep_blocks, self._large.sweep_period, self.interval)
        self._slice = self._query("token_drift", sql.table(self._schema, self._tokens.table), SLICE)

    def run(self) -> Sequence[Metric]:
        """Query the drift; not applicable while isValid does not exist."""
        table = self._tokens.table
        with self._db.session() as session:
            require_columns(
                session, self._schema, table, [self._tokens.is_valid, self._tokens.expires_at]
            )
            size = table_size(session, self._schema, table)
            plan = read_plan(size, self._large)
            session.guard(self._schema, [table])
            tokens = plan.relation(sql.table(self._schema, table))
            row = session.row(self._query("token_drift", tokens))
            sampled = row["tokens"]
            sweep = self._sweep if plan.estimated and self._can_sweep(session) else None
            exact = self._exact_wrongly_invalid(session) if plan.estimated else None
        totals = None if sweep is None else self._advance(sweep, size.relpages)
        if self._sweep is None:  # off, or switched off in this run
            sweep = None
        if totals is not None:
            return self._swept(totals, exact, plan, size.relpages)
        return self._families(
            Tally(
                round(plan.scale(row["stale_valid"], sampled)),
                round(plan.scale(row["wrongly_invalid"], sampled)),
                round(plan.total(sampled)),
            ),
            stale_exact=not plan.estimated,
            wrongly_exact=exact,
            markers=marker_families(self.name, plan, sampled),
        ) + self._progress(sweep, size.relpages)

    def _swept(
        self, totals: Totals, exact: float | None, plan: ReadPlan, relpages: int
    ) -> list[Metric]:
        """The sweep's exact counts; wrongly_invalid fresher still when it was cheap to count."""
        tally = totals.tally
        whole = ReadPlan(float(tally.tokens), None)
        return [
            *self._families(
                tally,
                stale_exact=True,
                wrongly_exact=exact if exact is not None else float(tally.wrongly_invalid),
                markers=marker_families(self.name, whole, tally.tokens),
            ),
            *self._progress(self._sweep, relpages),
            gauge(
                "rollout_token_validity_sweep_oldest_timestamp_seconds",
                "When the oldest slice of the token table in the swept drift counts was read.",
                totals.oldest,
            ),
        ]

    def _families(
        self, tally: Tally, stale_exact: bool, wrongly_exact: float | None, markers: list[Metric]
    ) -> list[Metric]:
        wrongly = tally.wrongly_invalid if wrongly_exact is None else wrongly_exact
        self._readings.publish(self.name, Drift(tally.stale_valid, wrongly))
        return [
            labelled_gauge(
                "rollout_token_validity_drift",
                "Tokens flagged valid but expired (stale_valid), or invalid but unexpired.",
                ["kind"],
                {("stale_valid",): tally.stale_valid, ("wrongly_invalid",): wrongly},
            ),
            labelled_gauge(
                "rollout_token_validity_drift_exact",
                "1 when the drift count of this kind is exact, 0 when estimated from a sample.",
                ["kind"],
                {
                    ("stale_valid",): float(stale_exact),
                    ("wrongly_invalid",): float(stale_exact or wrongly_exact is not None),
                },
            ),
            gauge("rollout_tokens", "Rows in the token table.", tally.tokens),
            *markers,
        ]

    @staticmethod
    def _progress(sweep: Sweep | None, relpages: int) -> list[Metric]:
        if sweep is None:
            return []
        return [
            gauge(
                "rollout_token_validity_sweep_progress_ratio",
                "Share of the token table the drift sweep's current pass has read.",
                sweep.progress(relpages),
            )
        ]

    def _advance(self, sweep: Sweep, relpages: int) -> Totals | None:
        """This run's slices of the sweep; its exact counts once a pass is done. A sweep that
        cannot read the table here is switched off for good, and the sample stands."""
        try:
            sweep.advance(self._read_slice, relpages)
        except SweepOff as off:
            log.warning("drift_sweep_off", reason=str(off))
            self._sweep = None
            return None
        return sweep.totals()

    def _can_sweep(self, session: Session) -> bool:
        """Whether the sweep may run: enabled, and the server has TID Range Scans."""
        if self._sweep is None:
            return False
        if self._tid_ranges:  # a server does not lose them: asked once
            return True
        version = session.row(sql.query("server_version"))["version_num"]
        if version >= TID_RANGE_SCAN_SINCE:
            self._tid_ranges = True
            return True
        log.warning("drift_sweep_off", reason="PostgreSQL 14+ is needed for TID Range Scans")
        self._sweep = None
        return False

    def _read_slice(self, first: int, last: int) -> Tally | None:
        """One slice of the token table, in its own transaction (its lock held only for it)."""
        table = self._tokens.table
        try:
            with self._db.session() as session:
                session.guard(self._schema, [table])
                row = session.row(self._slice, {"first": f"({first},0)", "last": f"({last},0)"})
        except psycopg.errors.InsufficientPrivilege:
            raise SweepOff(
                f"no SELECT on {table}.ctid: grant it (docs/monitoring-role.sql)"
            ) from None
        except (TableLocked, psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
            return None  # resumed at this slice on the next run
        return Tally(int(row["stale_valid"]), int(row["wrongly_invalid"]), int(row["tokens"]))

    def _exact_wrongly_invalid(self, session: Session) -> float | None:
        """The exact count of wrongly invalid tokens when the planner says it is cheap."""
        query = self._query("wrongly_invalid_exact", sql.table(self._schema, self._tokens.table))
        if session.cost(query) > self._large.exact_max_cost:
            return None
        try:
            return float(session.row(query)["wrongly_invalid"])
        except psycopg.errors.QueryCanceled:  # slower than planned (stale statistics)
            return None  # the last statement of the session: the sample's counts stand

    def _query(self, name: str, tokens: Composable, where: Composable = WHOLE) -> Composed:
        return sql.query(
            name,
            tokens=tokens,
            where=where,
            is_valid=sql.column(self._tokens.is_valid),
            expires_at=sql.column(self._tokens.expires_at),
        )


@register("drift", order=1)
def _build(settings: CheckSettings, parts: Parts) -> DriftCheck:
    return DriftCheck(parts.db, settings, parts.app, parts.large_tables, parts.readings)
