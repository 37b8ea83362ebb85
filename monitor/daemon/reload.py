"""The daemon's life: serve until SIGTERM or SIGINT, and load the configuration again on SIGHUP."""

from __future__ import annotations

import signal
import threading
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
# Every signal whose default would end the process, but the faults (SIGSEGV, SIGBUS, SIGFPE,
# SIGILL, SIGABRT, SIGTRAP, SIGSYS: the process itself is broken) and SIGKILL, is taken here:
# a stop signal stops cleanly (SIGQUIT too: no core dump of a monitor; SIGXCPU: the CPU limit
# is near, stop while it can), SIGHUP reloads, and the rest (a stray `kill -USR1`, an alarm
# nobody set) are logged and ignored.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGXCPU})
IGNORED = frozenset(
    {
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGALRM,
        signal.SIGVTALRM,
        signal.SIGPROF,
        signal.SIGIO,
        signal.SIGPWR,
        signal.SIGSTKFLT,
        *range(signal.SIGRTMIN, signal.SIGRTMAX + 1),
    }
)
HANDLED = STOP_SIGNALS | IGNORED | {signal.SIGHUP}
IGNORED_LOG_INTERVAL = 10.0  # seconds between two `signal_ignored` lines for one signal
# Loads the configuration again (file, environment, flags, password file), returning the new
# config and the redactor for its secrets, or raising with every problem found.
Loader = Callable[[], tuple[Config, Callable[[str], str]]]


def signal_name(signum: int) -> str:
    """SIGUSR1, or SIGRTMIN+3 (the real-time signals between the two ends have no name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"


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
        # Held to swap the running monitor or stop it: never while loading, which may wait.
        self._swap = threading.Lock()
        self._stopping = False
        self._reload_wanted = threading.Event()
        self._ignored_logged: dict[int, float] = {}

    def run(self) -> None:
        """Serve until a stop signal (raises OSError if /metrics cannot listen at start)."""
        # Signals are taken synchronously (sigwait) in this thread, blocked in every other (the
        # threads started from here inherit the mask). A reload runs in a thread of its own,
        # one at a time, so that a stop signal is taken while a reload waits on anything.
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        try:
            self._monitor.start()
            threading.Thread(target=self._reloads, name="reload", daemon=True).start()
            try:
                self._wait_for_stop()
            finally:
                with self._swap:
                    self._stopping = True
                    self._monitor.stop()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)

    def _wait_for_stop(self) -> None:
        while (signum := signal.sigwait(HANDLED)) not in STOP_SIGNALS:
            if signum == signal.SIGHUP:
                self._reload_wanted.set()  # SIGHUPs during a reload make one more, not many
            else:
                self._ignore(signum)
        log.info("stop_signal", signal=signal_name(signum))

    def _ignore(self, signum: int) -> None:
        """One `signal_ignored` line per signal number at most every IGNORED_LOG_INTERVAL."""
        now = time.monotonic()
        if now - self._ignored_logged.get(signum, -IGNORED_LOG_INTERVAL) >= IGNORED_LOG_INTERVAL:
            self._ignored_logged[signum] = now
            log.info("signal_ignored", signal=signal_name(signum))

    def _reloads(self) -> None:
        while True:
            self._reload_wanted.wait()
            self._reload_wanted.clear()
            if self._stopping:
                return
            self.reload()

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
        with self._swap:
            if not self._stopping:  # a monitor built but never started holds nothing
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
