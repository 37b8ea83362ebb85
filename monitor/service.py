"""The assembled monitor: registry, pool, checks and their runners; run once or on a schedule."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry, generate_latest

from monitor.baseline import Baseline
from monitor.checks import build_checks
from monitor.checks.base import CheckRunner
from monitor.config import Config
from monitor.db import Database
from monitor.exporter import Exporter
from monitor.metrics import Metrics
from monitor.migration import MigrationTracker

log = structlog.get_logger("monitor")


class Monitor:
    """Every part the checks need, built from one Config."""

    def __init__(self, config: Config, redact: Callable[[str], str]) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.db = Database(config.database, config.database_url, self._report_postgres)
        tracker = MigrationTracker()
        self.baseline = Baseline(
            config.baseline, config.checks.callback.interval, tracker, config.migration.name
        )
        self.registry.register(self.baseline)
        checks = build_checks(config, self.db, self.metrics, tracker, self.baseline.record)
        self.runners = [CheckRunner(check, self.metrics, redact) for check in checks]

    def _report_postgres(self, up: bool) -> None:
        self.metrics.postgres_up.set(float(up))

    def ready(self) -> bool:
        """Whether every check has run at least once."""
        return all(runner.runs > 0 for runner in self.runners)

    def once(self) -> tuple[bytes, bool]:
        """Run every check once (schema first, the rest in parallel); the exposition and success."""
        self.db.open()
        first, rest = self.runners[:1], self.runners[1:]
        outcomes = [runner() for runner in first]
        with ThreadPoolExecutor(max_workers=max(1, len(rest))) as pool:
            outcomes += list(pool.map(lambda runner: runner(), rest))
        return generate_latest(self.registry), all(
            o not in {"failure", "skipped"} for o in outcomes
        )

    def close(self) -> None:
        """Persist the baseline and close the database pool."""
        self.baseline.close()
        self.db.close()

    def serve(self, stop: threading.Event) -> None:
        """Serve /metrics and run every check on its interval until stop is set."""
        exporter = Exporter(
            self.config.listen_host, self.config.listen_port, self.registry, self.ready
        )
        scheduler = schedule(self.runners)
        try:
            self.db.open()
            exporter.start()
            scheduler.start()
            log.info("started", listen_address=self.config.listen_address, checks=len(self.runners))
            stop.wait()
        finally:
            log.info("stopping")
            if scheduler.running:
                scheduler.shutdown(wait=True)
            exporter.stop()
            self.close()
            log.info("stopped")


def schedule(runners: Sequence[CheckRunner]) -> BackgroundScheduler:
    """A scheduler with one interval job per check; a late run is merged, never doubled."""
    scheduler = BackgroundScheduler(
        executors={"default": JobExecutor(max_workers=max(1, len(runners)))},
        timezone=UTC,
    )
    now = datetime.now(UTC)
    for runner in runners:
        interval = runner.check.interval
        scheduler.add_job(
            runner,
            "interval",
            seconds=interval,
            id=runner.check.name,
            next_run_time=now,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(interval)),
        )
    return scheduler
