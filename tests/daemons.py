"""The monitor serving in a thread, and `rollout-monitor run` as a real process: fast
configurations, scrapes, log events, the monitor's sessions in pg_stat_activity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from databases import FreshDatabase
from monitoring import make_config
from prometheus_client.parser import text_string_to_metric_families

from monitor.config.schema import Config
from monitor.daemon.service import Monitor
from monitor.demo.postgres import free_port
from monitor.output.redact import Redactor

INTERVAL = 1.0  # seconds between two runs of every check in these tests


ALL_CHECKS = (
    "schema",
    "drift",
    "migration_run",
    "backfill",
    "connections",
    "activity",
    "query_performance",
    "pool",
)


# A check that finds no connection starts a fresh attempt, and a pending one retries within a
# second (db.RECONNECT_TIMEOUT): up again within one interval plus that second, plus a margin
# for a busy machine.
RECOVERY_BOUND = INTERVAL + 1.0 + 1.5


def fast_config(url: str, **sections: Any) -> Config:
    """Every database check each second, /metrics on a free port, the probe off."""
    checks: dict[str, Any] = {name: {"interval": "1s"} for name in ALL_CHECKS}
    checks.update(sections.pop("checks", {}))
    return make_config(
        url,
        listen_address=f"127.0.0.1:{free_port()}",
        checks={**checks, "callback": checks.get("callback", {"enabled": False})},
        **sections,
    )


@dataclass
class Running:
    """A monitor serving in a background thread, and where to scrape it."""

    monitor: Monitor
    base_url: str

    def scrape(self) -> dict[str, float]:
        """Every sample on /metrics, keyed like name{a="b"} (labels sorted); must answer 200."""
        response = httpx.get(f"{self.base_url}/metrics", timeout=2)
        assert response.status_code == 200
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def value(self, key: str) -> float | None:
        return self.scrape().get(key)

    def status_page(self) -> str:
        """The status page (/), which must answer 200."""
        response = httpx.get(f"{self.base_url}/", timeout=5)
        assert response.status_code == 200
        return response.text

    def wait_for(self, key: str, wanted: float, timeout: float) -> float:
        """Seconds until /metrics shows the value; fails after timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.value(key) == wanted:
                return time.monotonic() - started
            time.sleep(0.05)
        pytest.fail(f"{key} never became {wanted} within {timeout}s (last {self.value(key)})")


@contextmanager
def serving(config: Config) -> Iterator[Running]:
    """Monitor.serve in a thread until the block ends; the thread must end within 10 s."""
    monitor = Monitor(config, Redactor())
    stop = threading.Event()
    thread = threading.Thread(target=monitor.serve, args=(stop,), name="monitor-under-test")
    thread.start()
    try:
        yield Running(monitor, f"http://{config.listen_address}")
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the monitor did not stop within 10 s"


@dataclass(frozen=True)
class Sessions:
    """What pg_stat_activity shows about the monitor's sessions at one moment."""

    count: int
    longest_lock_wait: float
    longest_transaction: float


SESSIONS = """
SELECT count(*),
       coalesce(max(extract(epoch FROM clock_timestamp() - state_change))
                FILTER (WHERE wait_event_type = 'Lock'), 0),
       coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
FROM pg_stat_activity
WHERE application_name = 'rollout-monitor' AND datname = %s
"""


def monitor_sessions(conn: psycopg.Connection[Any], dbname: str) -> Sessions:
    row = conn.execute(SESSIONS, (dbname,)).fetchone()
    assert row is not None
    return Sessions(int(row[0]), float(row[1]), float(row[2]))


def settle_sessions(fresh_db: FreshDatabase, at_most: int, timeout: float = 5) -> int:
    """The monitor's session count once it is at most `at_most` (the server may take a moment
    to notice a cut connection); fails if it stays above."""
    conn = fresh_db.conn()
    deadline = time.monotonic() + timeout
    while True:
        count = monitor_sessions(conn, fresh_db.name).count
        if count <= at_most or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


@dataclass
class Process:
    """`rollout-monitor run` as a real process, its stderr in a file."""

    popen: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def events(self) -> list[dict[str, Any]]:
        """Every JSON log line so far."""
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for_event(self, name: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [event for event in self.events() if event["event"] == name]
            if found:
                return found[-1]
            time.sleep(0.1)
        pytest.fail(f"no {name} event within {timeout}s: {self.log_path.read_text()}")

    def scrape(self) -> dict[str, float]:
        return Running.scrape(self)  # type: ignore[arg-type]

    def value(self, key: str) -> float | None:
        return self.scrape().get(key)

    def wait_for(self, key: str, wanted: float, timeout: float) -> float:
        return Running.wait_for(self, key, wanted, timeout)  # type: ignore[arg-type]

    def status_page(self) -> str:
        return Running.status_page(self)  # type: ignore[arg-type]

    def stop(self) -> tuple[int, float]:
        """SIGTERM; the exit code and how long it took to exit."""
        self.popen.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = self.popen.wait(timeout=30)
        return code, time.monotonic() - started


@contextmanager
def daemon(tmp_path: Path, *args: str, **env: str) -> Iterator[Process]:
    """`rollout-monitor run` with a clean environment plus env; killed if the test left it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    address = f"127.0.0.1:{free_port()}"
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", *args],
            env={**base, "ROLLOUT_LISTEN_ADDRESS": address, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    process = Process(popen, f"http://{address}", log_path)
    try:
        process.wait_for_event("started")
        yield process
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()


def fast_config_file(path: Path, callback_url: str, callback_interval: str = "2s") -> Path:
    """A config file: every check each second, the probe of this URL."""
    checks: dict[str, Any] = {name: {"interval": "1s"} for name in ALL_CHECKS}
    checks["callback"] = {"url": callback_url, "interval": callback_interval, "timeout": "500ms"}
    path.write_text(yaml.safe_dump({"checks": checks, "log": {"format": "json"}}))
    return path
