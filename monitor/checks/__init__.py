"""Every check, built from the configuration; one file per check."""

from __future__ import annotations

from collections.abc import Callable

from monitor.checks.activity import ActivityCheck
from monitor.checks.backfill import BackfillCheck
from monitor.checks.base import Check
from monitor.checks.callback import CallbackCheck
from monitor.checks.connections import ConnectionsCheck
from monitor.checks.custom import SqlCheck
from monitor.checks.drift import DriftCheck
from monitor.checks.own_pool import PoolCheck
from monitor.checks.performance import QueryPerformanceCheck
from monitor.checks.schema import SchemaCheck
from monitor.config import Config
from monitor.db import Database
from monitor.metrics import Metrics
from monitor.migration import MigrationTracker
from monitor.probe import CallbackProbe, ProbeResult
from monitor.readings import Readings


def build_checks(
    config: Config,
    db: Database,
    metrics: Metrics,
    tracker: MigrationTracker,
    observe_probe: Callable[[ProbeResult], None],
    *,
    readings: Readings | None = None,
) -> list[Check]:
    """The enabled checks, in the order `once` runs them (schema first: others read its view);
    those the judgment needs publish their readings to `readings`."""
    settings = config.checks
    readings = readings or Readings()
    callback = settings.callback
    candidates: list[tuple[bool, Check]] = [
        (settings.schema_check.enabled, SchemaCheck(db, config, tracker, readings=readings)),
        (settings.drift.enabled, DriftCheck(db, config, readings)),
        (settings.backfill.enabled, BackfillCheck(db, config, readings)),
        (settings.connections.enabled, ConnectionsCheck(db, config, readings)),
        (settings.activity.enabled, ActivityCheck(db, config, tracker, readings)),
        (settings.query_performance.enabled, QueryPerformanceCheck(db, config, readings)),
        (settings.pool.enabled, PoolCheck(db.stats, settings.pool.interval)),
        (
            callback.enabled,
            CallbackCheck(CallbackProbe(callback), metrics, callback.interval, observe_probe),
        ),
    ]
    candidates += [(c.enabled, SqlCheck(db, config.app.schema_name, c)) for c in settings.sql]
    return [check for enabled, check in candidates if enabled]
