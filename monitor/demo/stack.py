"""The whole demo, brought up in order on 127.0.0.1 and torn down in reverse, whatever happens."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from monitor.demo import data
from monitor.demo.app import ActionError, StandInApp
from monitor.demo.load import Load
from monitor.demo.pager import Pager, rewired
from monitor.demo.postgres import PostgresServer, free_port
from monitor.demo.processes import Process
from monitor.demo.settings import DemoSettings

DATABASE = "app"
APP_POOL_SIZE = 8
MIGRATION_RETRY_SECONDS = 5.0


@dataclass
class Endpoints:
    """Where each part of the running demo listens."""

    app: str = ""
    callback: str = ""
    database: str = ""
    database_dir: str = ""
    metrics: str = ""
    prometheus: str | None = None
    alertmanager: str | None = None
    processes: dict[str, int] = field(default_factory=dict)


class DemoStack:
    """PostgreSQL, the stand-in app and its load, the daemon, and Prometheus with Alertmanager."""

    def __init__(self, settings: DemoSettings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.endpoints = Endpoints()
        self._say = say
        self._started = time.monotonic()
        self._exit = contextlib.ExitStack()
        self.workdir = Path(tempfile.mkdtemp(prefix="rollout-demo-"))
        self._exit.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        self._app: StandInApp | None = None
        self._closing = threading.Event()
        self.load: Load | None = None
        self.pager: Pager | None = None

    def __enter__(self) -> DemoStack:
        """Start everything; on any failure, stop what was started."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop everything."""
        self.close()

    def step(self, message: str) -> None:
        """Report progress, with the seconds since the demo started."""
        self._say(f"[{time.monotonic() - self._started:6.1f}s] {message}")

    def start(self) -> None:
        """Bring every part up, in dependency order."""
        url = self._start_postgres()
        self._start_app(url)
        # Its address first: Prometheus scrapes it, and it asks Alertmanager for the alerts
        # firing and Prometheus for the verdict of every replica (/verdict).
        self.endpoints.metrics = f"http://127.0.0.1:{free_port()}/metrics"
        self._start_prometheus()
        self._start_monitor(url)
        self._schedule_migration()

    def close(self) -> None:
        """Stop every part in reverse order and remove the working directory."""
        self._closing.set()
        self._exit.close()

    def act(self, action: str) -> str:
        """Inject a failure mode, heal, migrate or roll back (see StandInApp.act)."""
        if self._app is None:
            raise RuntimeError("the demo is not running")
        return self._app.act(action)

    def _start_postgres(self) -> str:
        self.step(f"starting PostgreSQL and loading {self.settings.users:,} users ...")
        server = PostgresServer(timezone="UTC")  # its own temp dir: the postgres user must reach it
        server.start()
        self._exit.callback(server.stop)
        server.create_database(DATABASE)
        with server.connect(DATABASE) as conn:
            data.create(conn, self.settings.users)
        self.endpoints.database = server.url(DATABASE)
        self.endpoints.database_dir = str(server.log_path.parent)
        return self.endpoints.database

    def _start_app(self, url: str) -> None:
        self.step("starting the stand-in app and its logins ...")
        app = StandInApp(url, announce=self.step)
        app.start()
        self._exit.callback(app.stop)
        self._app = app
        self.endpoints.app, self.endpoints.callback = app.base_url, app.callback_url
        load = Load(app.callback_url, self.settings.users, self.settings.logins_per_second)
        load.start()
        self._exit.callback(load.stop)
        self.load = load

    def _start_monitor(self, url: str) -> None:
        self.step("starting rollout-monitor ...")
        address = self.endpoints.metrics.removeprefix("http://").removesuffix("/metrics")
        config = self._write("rollout-monitor.yaml", self._monitor_config(address))
        process = self._spawn(
            "rollout-monitor",
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            env={**os.environ, "DATABASE_URL": url},
        )
        process.wait_ready(f"http://{address}/readyz")

    def _monitor_config(self, address: str) -> dict[str, Any]:
        every = f"{self.settings.check_interval:g}s"
        probe = self.settings.probe_interval
        checks: dict[str, Any] = {
            name: {"interval": every}
            for name in ("schema", "drift", "backfill", "connections", "activity", "pool")
        }
        checks["query_performance"] = {"interval": every, "threads_user_id": "tu_1"}
        checks["connections"].update(
            app_application_name="threads-app",
            app_pool_size=APP_POOL_SIZE,
            application_names=["threads-app", "prisma-migrate"],
        )
        checks["callback"] = {
            "url": self.endpoints.callback,
            "interval": f"{probe:g}s",
            "timeout": f"{min(probe * 0.75, 5.0):g}s",
        }
        baseline: dict[str, Any] = {"state_file": str(self.workdir / "baseline.json")}
        if self.endpoints.alertmanager is not None:
            checks["alerts"] = {
                "url": self.endpoints.alertmanager,
                "interval": every,
                "timeout": f"{min(self.settings.check_interval * 0.75, 5.0):g}s",
            }
        if self.endpoints.prometheus is not None:
            baseline["prometheus_url"] = self.endpoints.prometheus
        return {
            "listen_address": address,
            "log": {"format": "json"},
            "checks": checks,
            "baseline": baseline,
        }

    def _start_prometheus(self) -> None:
        prometheus = shutil.which("prometheus")
        alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if not self.settings.prometheus:
            return
        if prometheus is None:
            self.step("prometheus is not installed: skipping Prometheus and Alertmanager")
            return
        if alertmanager is not None:
            self._start_alertmanager(alertmanager)
        if not any(self.settings.alerts_dir.glob("*.rules.yml")):
            self.step(f"no *.rules.yml in {self.settings.alerts_dir}: Prometheus has no alerts")
        self.step("starting Prometheus with the rules in alerts/ ...")
        address = f"127.0.0.1:{free_port()}"
        config = self._write("prometheus.yml", self._prometheus_config())
        process = self._spawn(
            "prometheus",
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                f"--web.listen-address={address}",
            ],
        )
        self.endpoints.prometheus = f"http://{address}"
        process.wait_ready(f"http://{address}/-/ready")

    def _prometheus_config(self) -> dict[str, Any]:
        every = f"{self.settings.scrape_interval:g}s"
        target = self.endpoints.metrics.removeprefix("http://").removesuffix("/metrics")
        config: dict[str, Any] = {
            "global": {"scrape_interval": every, "evaluation_interval": every},
            "rule_files": [
                str(path) for path in sorted(self.settings.alerts_dir.glob("*.rules.yml"))
            ],
            "scrape_configs": [
                {"job_name": "rollout-monitor", "static_configs": [{"targets": [target]}]}
            ],
        }
        if self.endpoints.alertmanager is not None:
            manager = self.endpoints.alertmanager.removeprefix("http://")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [manager]}]}]}
        return config

    def _start_alertmanager(self, binary: str) -> None:
        example = self.settings.alerts_dir / "alertmanager.example.yml"
        if not example.is_file():
            self.step(f"{example} is missing: skipping Alertmanager")
            return
        self.step("starting Alertmanager (alerts/alertmanager.example.yml, receivers here) ...")
        pager = Pager(self.step)
        pager.server.start()
        self._exit.callback(pager.server.stop)
        self.pager = pager
        config = self._write(
            "alertmanager.yml", rewired(yaml.safe_load(example.read_text()), pager.server.base_url)
        )
        address = f"127.0.0.1:{free_port()}"
        process = self._spawn(
            "alertmanager",
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={self.workdir / 'alertmanager-data'}",
                f"--web.listen-address={address}",
                "--cluster.listen-address=",  # no gossip port on 0.0.0.0
            ],
        )
        self.endpoints.alertmanager = f"http://{address}"
        process.wait_ready(f"http://{address}/-/ready")

    def _schedule_migration(self) -> None:
        delay = self.settings.migrate_after
        if delay is None:
            return
        timer = threading.Timer(delay, self._migrate_on_schedule)
        timer.daemon = True
        timer.start()
        self._exit.callback(timer.cancel)

    def _migrate_on_schedule(self) -> None:
        self.step("applying migration 001 (as `prisma migrate deploy` would) ...")
        while not self._closing.is_set():  # the app announces each attempt's outcome
            try:
                self.act("migrate")
            except ActionError:  # locked: retry, as a deploy job would
                self.step(f"migration 001 not applied: retrying in {MIGRATION_RETRY_SECONDS:g}s")
                self._closing.wait(MIGRATION_RETRY_SECONDS)
            except Exception:  # the demo goes on; the monitor reports it
                return
            else:
                return

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, argv, self.workdir / f"{name}.log", env)
        self._exit.callback(process.stop)
        self.endpoints.processes[name] = process.pid
        return process

    def _write(self, name: str, content: dict[str, Any]) -> Path:
        path = self.workdir / name
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path
