"""The daemon's life: serve until SIGTERM or SIGINT, and load the configuration again on SIGHUP."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from monitor.config.schema import Config
from monitor.daemon.service import Monitor
from monitor.db.pool import PasswordFileError
from monitor.output.logs import configure_logging

log = structlog.get_logger("monitor.daemon.reload")
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
HANDLED = STOP_SIGNALS | {signal.SIGHUP}
# Loads the configuration again (file, environment, flags, password file), returning the new
# config and the redactor for its secrets, or raising with every problem found.
Loader = Callable[[], tuple[Config, Callable[[str], str]]]


class ReloadFailed(Exception):
    """The new configuration is invalid; the message lines are the problems, as check-config
    prints them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ReloadStatus:
    """rollout_config_last_reload_successful and _success_timestamp_seconds, as Prometheus
    exports them about itself; lives across the monitors a reload replaces."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.successful = True
        self.success_at = clock()

    def record(self, successful: bool) -> None:
        """Note the outcome of a reload."""
        self.successful = successful
        if successful:
            self.success_at = self._clock()

    def collect(self) -> Iterator[Metric]:
        """Both gauges (prometheus_client's collector interface)."""
        yield GaugeMetricFamily(
            "rollout_config_last_reload_successful",
            "1 when the last configuration reload (SIGHUP) succeeded, or none was asked for.",
            value=float(self.successful),
        )
        yield GaugeMetricFamily(
            "rollout_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load (start or SIGHUP).",
            value=self.success_at,
        )

    def describe(self) -> list[Metric]:
        """Nothing: avoid a collect at registration."""
        return []


class Daemon:
    """One running Monitor at a time, replaced by a new one when a reload succeeds."""

    def __init__(self, config: Config, redact: Callable[[str], str], load: Loader) -> None:
        self._load = load
        self._redact = redact
        self._status = ReloadStatus()
        self._monitor = self._build(config, redact, None)

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT (raises OSError if /metrics cannot listen at start)."""
        # Signals are taken synchronously (sigwait) rather than by handlers: a reload is then
        # plain sequential code in this thread, never interrupted by the next signal.
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        try:
            self._monitor.start()
            try:
                while signal.sigwait(HANDLED) not in STOP_SIGNALS:
                    self.reload()
            finally:
                self._monitor.stop()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)

    def reload(self) -> None:
        """Load the configuration again; keep the running one when the new one is invalid."""
        log.info("config_reload_requested")
        try:
            config, redact = self._load()
            new = self._build(config, redact, self._monitor)
        except (ReloadFailed, PasswordFileError) as failed:
            problems = failed.problems if isinstance(failed, ReloadFailed) else [str(failed)]
            self._fail(problems)
            return
        except Exception as error:  # whatever else: the running monitor goes on
            self._fail([self._one_line(error)])
            return
        self._replace(new, redact)

    def _one_line(self, error: BaseException) -> str:
        """An unexpected error as one redacted line: its kind and the first line of its text."""
        lines = str(error).strip().splitlines()
        text = lines[0][:200] if lines else ""
        return self._redact(f"{type(error).__name__}: {text}" if text else type(error).__name__)

    def _replace(self, new: Monitor, redact: Callable[[str], str]) -> None:
        """Stop the running monitor, start the new one; back to the old config if it cannot
        listen (the old address was released, so it can be bound again)."""
        old = self._monitor
        old.stop()
        try:
            new.start()
        except Exception as error:  # the old monitor's address was released: it binds again
            if isinstance(error, OSError):
                address = new.config.listen_address
                self._fail([f"listen_address: cannot listen on {address}: {error.strerror}"])
            else:
                self._fail([self._one_line(error)])
            new.stop()
            new = self._build(old.config, self._redact, old)
            new.start()
        else:
            self._status.record(True)
            self._redact = redact
            configure_logging(new.config.log.level, new.config.log.format, redact)
            log.info("config_reloaded", listen_address=new.config.listen_address)
        self._monitor = new

    def _fail(self, problems: list[str]) -> None:
        self._status.record(False)
        self._monitor.changed()
        log.error("config_reload_failed", problems=problems)

    def _build(
        self, config: Config, redact: Callable[[str], str], previous: Monitor | None
    ) -> Monitor:
        monitor = Monitor(config, redact, previous)
        monitor.registry.register(self._status)
        return monitor
