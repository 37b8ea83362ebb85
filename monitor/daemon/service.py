"""The assembled monitor: registry, pool, checks and their runners; run once or on a schedule."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from monitor.checks import build_checks
from monitor.checks.base import CheckRunner
from monitor.config.schema import Config
from monitor.daemon.leader import LeaderGauge
from monitor.daemon.memory import Memory
from monitor.daemon.replica import Replica
from monitor.db.pool import Database
from monitor.http.exporter import Exporter
from monitor.http.status.now import read_vitals
from monitor.http.status.page import StatusPage
from monitor.http.webconfig import BasicAuth, load_web_config
from monitor.judge.gate import Gate
from monitor.judge.judgement import Judgement
from monitor.judge.rollout import thresholds
from monitor.observe.identity import BuildInfo
from monitor.observe.metrics import Metrics
from monitor.observe.readings import Alerts

log = structlog.get_logger("monitor")
STOP_GRACE_SECONDS = 2.0


class Monitor:
    """Every part the checks need, built from one Config (and, after a reload, the previous
    monitor's memory of the rollout when it watches the same one)."""

    def __init__(
        self, config: Config, redact: Callable[[str], str], previous: Monitor | None = None
    ) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        # What every exporter exports about itself: its build, its process, its Python.
        self.registry.register(BuildInfo())
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.metrics = Metrics(self.registry)
        self.memory: Memory = Memory.carried(config, None if previous is None else previous.memory)
        self.db = Database(config.database, config.database_url, self.metrics.postgres.report)
        checks = build_checks(
            config,
            self.db,
            self.metrics,
            tracker=self.memory.tracker,
            log=self.memory.log,
            readings=self.memory.readings,
            expected_answers=self.memory.expected_answers,
        )
        self.runners = [
            CheckRunner(check, self.metrics, redact, readings=self.memory.readings)
            for check in checks
        ]
        self.memory.readings.keep_only({runner.check.name for runner in self.runners})
        self.replica = Replica(config, self.db, self.runners, self.metrics)
        self.judgement = Judgement(self.memory.live, thresholds(config), self.replica.follows)
        self.gate = Gate(self.judgement, config.baseline, redact)
        for collector in (self.memory.baseline, self.judgement, LeaderGauge(self.replica.leads)):
            self.registry.register(collector)
        self.status_page = StatusPage(
            migration=config.migration.name,
            tracker=self.memory.tracker,
            judgement=self.judgement,
            baseline=self.memory.baseline,
            log=self.memory.log,
            vitals=lambda: read_vitals(self.memory.readings, self.metrics.postgres.up),
            redact=redact,
            replica=self.replica.describe,
            alerts=lambda: self.memory.readings.get(Alerts),
            expected=self.memory.expected_answers.current,
        )
        self._inflight = Inflight()
        # The passwords the previous monitor's endpoint verified: a reload keeps them.
        self._auth_before = None if previous is None else previous.exporter_auth
        self._exporter: Exporter | None = None
        self._scheduler: BackgroundScheduler | None = None

    @property
    def exporter_auth(self) -> BasicAuth | None:
        """The endpoint's basic-auth checker, once serving."""
        return None if self._exporter is None else self._exporter.auth

    def changed(self) -> None:
        """What a scrape shows changed outside the checks (a reload's outcome): the next scrape
        renders anew rather than serving the last rendering."""
        self.metrics.changes += 1

    def ready(self) -> bool:
        """Whether every check this replica runs has run at least once."""
        return all(r.runs > 0 for r in self.runners if self.replica.runs(r))

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
        """Persist the baseline and the window since the migration; close the database pool."""
        self.memory.close()
        self.replica.close()  # the lock goes with its session: a follower takes over
        self.db.close()

    def start(self) -> None:
        """Bind /metrics, then run every check on its interval in the background."""
        self._exporter = Exporter(
            self.config.listen_host,
            self.config.listen_port,
            self.registry,
            self.ready,
            load_web_config(self.config.web_config_file),
            page=self.status_page.render,
            auth_before=self._auth_before,
            changes=lambda: self.metrics.changes,
            gate=self.gate,
        )
        self._scheduler = schedule(self.runners, self._inflight, wrap=self.replica.gated)
        self.replica.start(self._scheduler, self.config.leader.interval)
        self.db.open()
        self._exporter.start()
        log.info("started", listen_address=self.config.listen_address, checks=len(self.runners))
        self.replica.first_poll()
        self._scheduler.start()

    def stop(self) -> None:
        """Stop scheduling, let running checks finish briefly, close the pool and /metrics."""
        log.info("stopping")
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        # A healthy check finishes in milliseconds; one waiting for a connection to a server
        # that is gone fails at once when the pool closes. A callback probe in flight ends by
        # its own deadline: it holds nothing of ours.
        self._inflight.wait(STOP_GRACE_SECONDS)
        self.close()
        self._inflight.wait(STOP_GRACE_SECONDS)
        if self._exporter is not None:
            self._exporter.stop()
        log.info("stopped")

    def serve(self, stop: threading.Event) -> None:
        """Serve /metrics and run every check on its interval until stop is set."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()


class Inflight:
    """Counts check runs in progress, so that stopping can wait for them, but not forever."""

    def __init__(self) -> None:
        self._done = threading.Condition()
        self._running = 0

    def wrap(self, runner: Callable[[], object]) -> Callable[[], object]:
        """The runner, counted while it runs."""

        def run() -> object:
            with self._done:
                self._running += 1
            try:
                return runner()
            finally:
                with self._done:
                    self._running -= 1
                    self._done.notify_all()

        return run

    def wait(self, timeout: float) -> bool:
        """Whether every run in progress ended within the timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._running == 0, timeout)


def schedule(
    runners: Sequence[CheckRunner],
    inflight: Inflight,
    wrap: Callable[[CheckRunner], Callable[[], object]] = lambda runner: runner,
) -> BackgroundScheduler:
    """A scheduler with one interval job per check (each run through `wrap`); a late run is
    merged, never doubled."""
    scheduler = BackgroundScheduler(
        # One thread per check, and one for the leader's poll.
        executors={"default": JobExecutor(max_workers=len(runners) + 1)},
        timezone=UTC,
    )
    now = datetime.now(UTC)
    for runner in runners:
        interval = runner.check.interval
        scheduler.add_job(
            inflight.wrap(wrap(runner)),
            "interval",
            seconds=interval,
            id=runner.check.name,
            name=f"check {runner.check.name}",  # APScheduler's log names the job by this
            next_run_time=now,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(interval)),
        )
    return scheduler
