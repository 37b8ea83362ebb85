"""A bounded soak: `rollout-monitor run` with every check every second, scraped every second.

    .venv/bin/python bench/soak.py --db bench/results/db-1000000.json            # 30 minutes
    .venv/bin/python bench/soak.py --rows 10000 --minutes 0.25 --warmup 10 --sample-every 5
                                                                    # a dry run, about 30 s

Against the bench database, with the demo's stand-in app serving the OAuth callback (a fake code
is looked up and refused with 400, as the real app does), it runs the daemon with every check and
the callback probe at a 1 s interval (instead of 15 s to 5 min) and scrapes /metrics every second
from a thread. After --warmup seconds it samples, then every minute until --minutes have passed:
RSS and its high-water mark, threads and open file descriptors (/proc/<pid>), the monitor's
connections in pg_stat_activity (application_name rollout-monitor) by state, check runs by
outcome, scrape latency and errors, log lines by level. The JSON is rewritten after every sample,
so an interrupted soak still leaves its figures. At the end it stops the daemon with SIGTERM and
checks its sessions are gone. It stops by itself.

Targets (bench/targets.py), from the first sample to the last: RSS grows at most 10 MiB (the
probe records alone grow by design, about 0.6 MiB an hour each for the log and the live window
at one probe a second: views.py), open fds and threads at most 2; the monitor's sessions at most
its pool's cap (database.pool_max_size, 3) throughout; no scrape error, no check run that
failed, no probe that did not succeed, no log line at level error or above; SIGTERM: exit code
0 within the HTTP server's graceful stop and a second (6 s), and no session left behind. Exit 0
when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    MONITOR_ROLE,
    VENV_BIN,
    BenchDb,
    Report,
    http_get,
    median,
    open_fds,
    proc_status,
    quantile,
    samples,
    say,
    stop_process,
    wait_http,
)
from exporters import start
from make_db import add_db_arguments, open_db
from targets import Targets

from monitor.config.schema import DatabaseConfig
from monitor.demo.app import StandInApp
from monitor.demo.postgres import free_port
from monitor.http.exporter import STOP_TIMEOUT

APPLICATION_NAME = "rollout-monitor"
SOAK_CONFIG = """\
checks:
  schema: {interval: 1s}
  drift: {interval: 1s}
  backfill: {interval: 1s}
  connections: {interval: 1s}
  activity: {interval: 1s}
  query_performance: {interval: 1s}
  pool: {interval: 1s}
  callback: {interval: 1s, timeout: 900ms}
log: {level: info, format: json}
"""
RSS_GROWTH_MIB = 10.0
FDS_GROWTH = 2  # a scrape's connection, a pool's reconnection in flight
THREADS_GROWTH = 2
STOP_SECONDS = STOP_TIMEOUT + 1  # the HTTP server's graceful stop, and a second
ERROR_LEVELS = ("error", "critical")


class Scraper:
    """Scrapes /metrics every second on a thread, keeping latencies, errors and the last body."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latencies: list[float] = []
        self.errors = 0
        self.scrapes = 0
        self.last: bytes = b""
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        """Begin scraping."""
        self._thread.start()

    def stop(self) -> None:
        """Stop scraping."""
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, body, seconds = http_get("127.0.0.1", self._port, "/metrics", timeout=5)
            except OSError:
                status, body, seconds = 0, b"", 0.0
            with self._lock:
                self.scrapes += 1
                if status == 200:
                    self._latencies.append(seconds * 1000)
                    self.last = body
                else:
                    self.errors += 1
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def take(self) -> tuple[list[float], int, int, bytes]:
        """(latencies since the last call, scrapes and errors so far, last body)."""
        with self._lock:
            latencies, self._latencies = self._latencies, []
            return latencies, self.scrapes, self.errors, self.last


def connections(db: BenchDb) -> dict[str, int]:
    """The monitor's sessions in pg_stat_activity by state, and every client session."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity"
            " WHERE application_name = %s GROUP BY 1",
            (APPLICATION_NAME,),
        ).fetchall()
        everyone = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        ).fetchone()
    out = {state: int(count) for state, count in rows}
    out["total"] = sum(out.values())
    out["all_clients"] = int(everyone[0]) if everyone else 0
    return out


def check_runs(body: bytes) -> dict[str, float]:
    """rollout_check_runs_total summed by outcome, and callback probes by outcome."""
    found = samples(body)
    out: dict[str, float] = {}
    for labels, value in found.get("rollout_check_runs_total", []):
        key = f"checks_{labels.get('outcome', '?')}"
        out[key] = out.get(key, 0.0) + value
    for labels, value in found.get("rollout_auth_callback_requests_total", []):
        key = f"probe_{labels.get('outcome', '?')}"
        out[key] = out.get(key, 0.0) + value
    for _labels, value in found.get("rollout_postgres_up", []):
        out["postgres_up"] = value
    return out


def log_levels(path: Path) -> dict[str, int]:
    """Lines of the daemon's JSON log by level (and events of warnings and errors)."""
    out: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            out["not_json"] = out.get("not_json", 0) + 1
            continue
        level = str(entry.get("level", "?"))
        out[level] = out.get(level, 0) + 1
        if level in ("warning", "error", "critical"):
            key = f"{level}:{entry.get('event')}:{entry.get('check', '')}"
            out[key] = out.get(key, 0) + 1
    return out


def main() -> int:
    """Run the soak for --minutes after --warmup, then stop and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_db_arguments(parser)
    parser.add_argument("--minutes", type=float, default=30, help="soak length after warm-up")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before the first sample")
    parser.add_argument("--sample-every", type=float, default=60, help="seconds between samples")
    args = parser.parse_args()
    targets = Targets()
    db = open_db(args)
    report = Report("soak", db.rows)
    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    report.data.update(
        {"rows": db.rows, "args": vars(args) | {"db": str(args.db)}, "logs": str(workdir)}
    )
    app = StandInApp(db.url())
    monitor = None
    try:
        app.start()
        port = free_port()
        (workdir / "monitor.yaml").write_text(SOAK_CONFIG, encoding="utf-8")
        monitor = start(
            "rollout-monitor",
            [str(VENV_BIN / "rollout-monitor"), "run", "--config", str(workdir / "monitor.yaml")],
            {
                "DATABASE_URL": db.url(MONITOR_ROLE),
                "ROLLOUT_CALLBACK_URL": app.callback_url,
                "ROLLOUT_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            },
            workdir,
        )
        wait_http(port, "/readyz", 120)
        scraper = Scraper(port)
        scraper.start()
        rows = soak(args, db, monitor.pid, scraper, workdir, report)
        scraper.stop()
        stop_seconds = stop_process(monitor)
        time.sleep(1)
        report.data["stop"] = {
            "seconds": stop_seconds,
            "exit_code": monitor.returncode,
            "sessions_after": connections(db),
        }
        print_report(report, rows)
        judge(targets, rows, report.data["stop"])
        return targets.finish(report)
    finally:
        if monitor is not None:
            stop_process(monitor)
        app.stop()
        report.save()
        db.close()
        say(f"results: {report.path} (daemon log in {workdir})")


def soak(  # noqa: PLR0917 - one call site
    args: Any, db: BenchDb, pid: int, scraper: Scraper, workdir: Path, report: Report
) -> list[dict[str, Any]]:
    """The warm-up, then a sample every --sample-every until --minutes have passed; the JSON
    rewritten after each."""
    say(f"warm-up {args.warmup:.0f} s, then {args.minutes:g} minutes (pid {pid})")
    time.sleep(args.warmup)
    scraper.take()
    began = time.monotonic()
    end = began + args.minutes * 60
    rows: list[dict[str, Any]] = []
    while True:
        rows.append(sample(db, pid, scraper, workdir, began))
        report.data["samples"] = rows
        report.save()
        last = rows[-1]
        say(
            f"t={last['minute']:.1f} min: RSS {last['rss_mb']:.1f} MiB, fds {last['fds']},"
            f" pg {last['pg']['total']}, scrape p99 {last['scrape_p99_ms']:.1f} ms,"
            f" failures {last['runs'].get('checks_failure', 0):.0f}"
        )
        if time.monotonic() >= end - 1:
            return rows
        time.sleep(max(0.0, min(args.sample_every, end - time.monotonic())))


def sample(db: BenchDb, pid: int, scraper: Scraper, workdir: Path, began: float) -> dict[str, Any]:
    """One row of the soak."""
    status = proc_status(pid)
    latencies, scrapes, errors, body = scraper.take()
    return {
        "minute": (time.monotonic() - began) / 60,
        "rss_mb": status["VmRSS"] / 1024,
        "hwm_mb": status["VmHWM"] / 1024,
        "threads": status["Threads"],
        "fds": open_fds(pid),
        "pg": connections(db),
        "scrapes": scrapes,
        "scrape_errors": errors,
        "scrape_p50_ms": median(latencies),
        "scrape_p99_ms": quantile(latencies, 0.99),
        "runs": check_runs(body),
        "log": log_levels(workdir / "rollout-monitor.log"),
    }


def print_report(report: Report, rows: list[dict[str, Any]]) -> None:
    """Every sample, then start against end."""
    report.print(
        f"# soak: {report.data['rows']:,} rows, every check and the probe every 1 s, scraped every"
        f" 1 s, {report.data['args']['minutes']:g} minutes after"
        f" {report.data['args']['warmup']:g} s warm-up"
    )
    report.table(
        "samples",
        [
            "minute",
            "RSS MiB",
            "HWM MiB",
            "threads",
            "fds",
            "pg sessions",
            "pg idle",
            "scrapes",
            "scrape err",
            "scrape p50",
            "scrape p99",
            "check runs ok",
            "check failures",
            "probes ok",
            "log warn+err",
        ],
        [
            [
                round(r["minute"], 1),
                r["rss_mb"],
                r["hwm_mb"],
                r["threads"],
                r["fds"],
                r["pg"]["total"],
                r["pg"].get("idle", 0),
                r["scrapes"],
                r["scrape_errors"],
                r["scrape_p50_ms"],
                r["scrape_p99_ms"],
                int(r["runs"].get("checks_success", 0)),
                int(r["runs"].get("checks_failure", 0)),
                int(r["runs"].get("probe_success", 0)),
                r["log"].get("warning", 0) + r["log"].get("error", 0),
            ]
            for r in rows
        ],
    )
    first, last = rows[0], rows[-1]
    report.table(
        "start against end",
        ["measure", "start", "end", "change"],
        [
            ["RSS MiB", first["rss_mb"], last["rss_mb"], last["rss_mb"] - first["rss_mb"]],
            [
                "RSS high-water MiB",
                first["hwm_mb"],
                last["hwm_mb"],
                last["hwm_mb"] - first["hwm_mb"],
            ],
            ["threads", first["threads"], last["threads"], last["threads"] - first["threads"]],
            ["open fds", first["fds"], last["fds"], last["fds"] - first["fds"]],
            [
                "pg sessions (rollout-monitor)",
                first["pg"]["total"],
                last["pg"]["total"],
                last["pg"]["total"] - first["pg"]["total"],
            ],
        ],
    )
    stop = report.data["stop"]
    other = {k: v for k, v in last["log"].items() if ":" in k}
    report.print(
        f"SIGTERM: exited {stop['exit_code']} in {stop['seconds']:.2f} s; rollout-monitor sessions"
        f" left in pg_stat_activity: {stop['sessions_after']['total']}\n"
        f"log lines by level: { {k: v for k, v in last['log'].items() if ':' not in k} }"
        + (f"\nwarnings and errors: {other}" if other else "")
    )


def judge(targets: Targets, rows: list[dict[str, Any]], stop: dict[str, Any]) -> None:
    """Growth from the first sample to the last, errors over the whole run, the stop."""
    first, last = rows[0], rows[-1]
    targets.at_most("RSS growth", last["rss_mb"] - first["rss_mb"], RSS_GROWTH_MIB, "MiB", digits=1)
    targets.at_most("open fds growth", last["fds"] - first["fds"], FDS_GROWTH)
    targets.at_most("threads growth", last["threads"] - first["threads"], THREADS_GROWTH)
    cap = DatabaseConfig.model_fields["pool_max_size"].default
    most = max(r["pg"]["total"] for r in rows)
    targets.at_most("the monitor's sessions, most at any sample", most, cap)
    targets.equal("scrape errors", last["scrape_errors"], 0)
    runs = last["runs"]
    targets.equal("check runs that failed", runs.get("checks_failure", 0), 0)
    failed = sum(v for k, v in runs.items() if k.startswith("probe_") and k != "probe_success")
    targets.equal("probes not successful", failed, 0)
    errors = sum(last["log"].get(level, 0) for level in ERROR_LEVELS)
    targets.equal("log lines at level error or above", errors, 0)
    targets.equal("exit code after SIGTERM", stop["exit_code"], 0)
    targets.at_most("seconds to exit after SIGTERM", stop["seconds"], STOP_SECONDS, "s")
    targets.equal("sessions left after the stop", stop["sessions_after"]["total"], 0)


if __name__ == "__main__":
    raise SystemExit(main())
