"""What one replica runs when several monitors watch one database (monitor.daemon.leader decides who
leads): the leader runs every check; a follower runs its own pod's checks (the callback, its own
pool) and the schema check unexported, for its own judgement, and shows none of the database's
series. A replica that cannot reach the server does not know who leads, and shows the database's
side as unreachable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from monitor.checks.base import CheckRunner
from monitor.config.schema import Config
from monitor.daemon.leader import Leadership, lock_key
from monitor.db.pool import Database
from monitor.observe.metrics import Metrics

log = structlog.get_logger("monitor")
# Checks every replica runs for itself: its own pod's callback, its own pool, the alerts its
# status page shows. The others query the database, and only the leader runs them.
PER_REPLICA = frozenset({"callback", "pool", "alerts"})


class Replica:
    """The database checks gated by leadership, and what a change of leadership withdraws or
    brings back; without leader election, a replica that always leads."""

    def __init__(
        self,
        config: Config,
        db: Database,
        runners: Sequence[CheckRunner],
        metrics: Metrics,
    ) -> None:
        self._metrics = metrics
        self._database = [r for r in runners if r.check.name not in PER_REPLICA]
        self._rejoining: set[str] = set()  # database checks not yet run since this one leads
        self._scheduler: Any = None  # APScheduler's, once started
        self.leadership: Leadership | None = None
        if config.leader.enabled:
            key = config.leader.lock_key
            self.leadership = Leadership(
                db,
                lock_key(config.migration.name) if key is None else key,
                config.database.pool_max_size,
                self._on_leadership,
            )

    def leads(self) -> bool:
        """Whether this replica holds the lead (always, without leader election)."""
        return self.leadership is None or self.leadership.leading

    def follows(self) -> bool:
        """Whether another replica is known to run the database checks."""
        return self.leadership is not None and self.leadership.following

    def runs(self, runner: CheckRunner) -> bool:
        """Whether this replica runs the check now (for readiness)."""
        return not self.follows() or runner.check.name in PER_REPLICA

    def start(self, scheduler: Any, interval: float) -> None:
        """Poll for the lead every interval on the scheduler (not started yet)."""
        self._scheduler = scheduler
        if self.leadership is not None:
            # Who leads is unknown until the first poll, before the first checks: a lone
            # monitor leads from the start, a follower never runs them.
            self.leadership.start()
            scheduler.add_job(
                self.leadership.poll, "interval", seconds=interval, id="leader", name="leader"
            )

    def first_poll(self) -> None:
        """The first poll, before the scheduler starts the checks."""
        if self.leadership is not None:
            self.leadership.poll()

    def close(self) -> None:
        """Release the lock (its session closes): a follower takes over at its next poll."""
        if self.leadership is not None:
            self.leadership.close()

    def gated(self, runner: CheckRunner) -> Callable[[], object]:
        """A database check as scheduled: run by the leader only (a follower runs the schema
        check for itself, unexported); a run that ends after leadership was lost is forgotten."""
        if runner.check.name in PER_REPLICA:
            return runner

        def run() -> object:
            if not self.follows():
                outcome = runner()
                if self.follows():
                    self._forget(runner)
                elif runner.check.name in self._rejoining:
                    self._rejoining.discard(runner.check.name)
                    self._metrics.rejoin_check(runner.check.name, runner.check.interval)
                return outcome
            if runner.check.name == "schema":
                _quietly(runner)
            return "not_leader"

        return run

    def describe(self) -> str:
        """The status page's line on leadership (none without leader election)."""
        leadership = self.leadership
        if leadership is None:
            return ""
        if leadership.leading:
            return (
                "This replica leads: it runs the database checks for every monitor of this"
                f" database (its lock session is PostgreSQL backend {leadership.own_pid})."
            )
        holder = leadership.holder
        leader = f"the leader, at {holder.describe()}" if holder else "the leader (none seen yet)"
        return (
            f"This replica follows: the database checks run in {leader}; its page shows them."
            " This page judges this pod's callback."
        )

    def _on_leadership(self, leading: bool) -> None:
        """Following: withdraw the database checks. Leading, or not knowing who leads (the
        server does not answer): export them and run them now."""
        if self.follows():
            self._follow()
            return
        if not leading:  # the server did not answer the poll: it is down from here
            self._metrics.postgres.report(False)
        if not self._metrics.database_shown:
            # Each check's series come back with its first run here (its last success is the
            # run's, not a "never" a scrape might catch in between).
            self._rejoining = {runner.check.name for runner in self._database}
            self._metrics.database_shown = True
            self._metrics.changes += 1
        if self._scheduler is not None:
            now = datetime.now(UTC)
            for runner in self._database:
                self._scheduler.modify_job(runner.check.name, next_run_time=now)

    def _follow(self) -> None:
        """Nothing of the database checks stands on a follower: the leader exports them."""
        self._metrics.database_shown = False
        for runner in self._database:
            self._forget(runner)
        self._metrics.changes += 1

    def _forget(self, runner: CheckRunner) -> None:
        runner.withdraw()
        self._metrics.drop_check(runner.check.name)


def _quietly(runner: CheckRunner) -> None:
    try:
        runner.check.run()  # the migration's state, for this replica's judgement
    except Exception as error:
        log.info("follower_schema_failed", error=type(error).__name__)
