"""Every check, built from the configuration; one file per check, each registering itself
(checks.registry); custom.py is the checks the configuration's `sql` entries make."""

from __future__ import annotations

from monitor.checks.base import Check
from monitor.checks.custom import SqlCheck
from monitor.checks.registry import Parts, registered
from monitor.config.schema import Config
from monitor.db.pool import Database
from monitor.observe.answers import ExpectedAnswers
from monitor.observe.metrics import Metrics
from monitor.observe.migration import MigrationTracker
from monitor.observe.probelog import ProbeLog
from monitor.observe.readings import Readings


def build_checks(
    config: Config,
    db: Database,
    metrics: Metrics,
    *,
    tracker: MigrationTracker,
    log: ProbeLog,
    readings: Readings,
    expected_answers: ExpectedAnswers | None = None,
) -> list[Check]:
    """The enabled checks, in the order `once` runs them (schema first: others read its view):
    the schema check publishes the migration's view to `tracker`, the callback check its probes
    to `log`, and those the judgment needs their readings to `readings`."""
    parts = Parts(
        db=db,
        app=config.app,
        migration=config.migration,
        large_tables=config.large_tables,
        application_name=config.database.application_name,
        tracker=tracker,
        readings=readings,
        metrics=metrics,
        log=log,
        expected_answers=expected_answers or ExpectedAnswers(),
    )
    checks = []
    for registration in registered():
        settings = getattr(config.checks, registration.key)
        if settings.wanted:
            checks.append(registration.factory(settings, parts))
    checks += [SqlCheck(db, config.app.schema_name, c) for c in config.checks.sql if c.enabled]
    return checks
