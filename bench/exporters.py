"""rollout-monitor against prometheus-postgres-exporter and prometheus-blackbox-exporter, same run.

    .venv/bin/python bench/exporters.py --db bench/results/db-1000000.json
    .venv/bin/python bench/exporters.py --rows 100000 --scrapes 50 --probes 20   # a dry run

On one database, at the same time:
- `rollout-monitor run` (the database checks at their default intervals, the callback probe every
  second so that it probes as often as the bench asks blackbox to) and
  `prometheus-postgres-exporter`
  (DATA_SOURCE_NAME, --web.listen-address, defaults otherwise): /metrics latency over --scrapes
  sequential scrapes of each, alternating, each on a fresh connection, after --warmup scrapes;
  RSS (VmRSS) after the warm-up and after the scrapes; pg_stat_statements time of each role;
- a callback server answering 401 after a fixed --delay, probed by rollout-monitor's callback
  check and by `prometheus-blackbox-exporter` (an http_post module like the plan's curl) through
  /probe, once a second for --probes seconds; compared: rollout-monitor's
  rollout_auth_callback_last_duration_seconds after each of its probes (and histogram_quantile over
  its histogram), blackbox's probe_duration_seconds, and this process's own POST on a fresh
  connection, against the server's true delay.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from common import (
    EXPORTER_ROLE,
    MONITOR_ROLE,
    VENV_BIN,
    BenchDb,
    Report,
    ensure_exporters,
    http_get,
    median,
    proc_status,
    quantile,
    sample_count,
    samples,
    say,
    stop_process,
    wait_http,
)
from make_db import add_db_arguments, open_db

from monitor.demo.postgres import free_port
from tests.callback_servers import delayed_server

BLACKBOX_MODULE = "callback_post"
BLACKBOX_CONFIG = """\
modules:
  callback_post:
    prober: http
    timeout: 5s
    http:
      method: POST
      headers:
        Content-Type: application/json
      body: '{"code":"test"}'
      valid_status_codes: [200, 201, 204, 301, 302, 303, 307, 308, 400, 401, 403, 404, 422]
      follow_redirects: false
      preferred_ip_protocol: ip4
"""
MONITOR_CONFIG = """\
checks:
  callback: {interval: 1s, timeout: 900ms}
log: {level: info, format: json}
"""


def start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    """Start a child process, its output in logs/<name>.log."""
    handle = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the child
    say(f"starting {name}: {' '.join(argv)}")
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=handle, stderr=handle)


def scrape(port: int, path: str = "/metrics") -> tuple[float, bytes]:
    """(seconds, body) of one GET on a fresh connection; raise unless 200."""
    status, body, seconds = http_get("127.0.0.1", port, path)
    if status != 200:
        raise RuntimeError(f"127.0.0.1:{port}{path} answered {status}")
    return seconds, body


def post_once(url: str) -> float:
    """The plan's curl, from this process, on a fresh connection: seconds to the whole answer."""
    parts = urlsplit(url)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("POST", parts.path, b'{"code":"test"}', {"Content-Type": "application/json"})
        conn.getresponse().read()
    finally:
        conn.close()
    return time.perf_counter() - started


def first(found: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float | None:
    """The value of the first sample with this name."""
    values = found.get(name)
    return values[0][1] if values else None


def buckets(found: dict[str, list[tuple[dict[str, str], float]]]) -> dict[float, float]:
    """le -> cumulative count of rollout_auth_callback_duration_seconds."""
    return {
        float(labels["le"]): value
        for labels, value in found.get("rollout_auth_callback_duration_seconds_bucket", [])
    }


def histogram_quantile(q: float, cumulative: dict[float, float]) -> float:
    """PromQL's histogram_quantile over cumulative bucket counts (linear within a bucket)."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def role_time(db: BenchDb) -> dict[str, tuple[float, int]]:
    """role -> (ms of execution + planning, calls) in pg_stat_statements since its reset."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT r.rolname::text, sum(total_exec_time + total_plan_time), sum(calls)"
            " FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid GROUP BY 1"
        ).fetchall()
    return {name: (float(ms), int(calls)) for name, ms, calls in rows}


def main() -> int:
    """Start everything, measure, stop everything, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_db_arguments(parser)
    parser.add_argument("--scrapes", type=int, default=200, help="/metrics scrapes of each")
    parser.add_argument("--warmup", type=int, default=20, help="scrapes of each before measuring")
    parser.add_argument("--probes", type=int, default=120, help="seconds of probing (1 a second)")
    parser.add_argument("--delay", type=float, default=0.05, help="callback server delay, s")
    args = parser.parse_args()
    ensure_exporters()
    db = open_db(args)
    report = Report("exporters", db.rows)
    workdir = Path(tempfile.mkdtemp(prefix="bench-exporters-"))
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with delayed_server(401, args.delay) as callback:
            run(db, args, report, workdir, callback.url, children)
    finally:
        for name, proc in children.items():
            seconds = stop_process(proc)
            report.data.setdefault("stop_seconds", {})[name] = round(seconds, 3)
            say(f"stopped {name} in {seconds:.2f}s (exit {proc.returncode})")
        report.data["logs"] = str(workdir)
        report.save()
        db.close()
        say(f"results: {report.path} (child logs in {workdir})")
    return 0


def start_exporters(
    db: BenchDb, workdir: Path, children: dict[str, subprocess.Popen[bytes]]
) -> dict[str, int]:
    """prometheus-postgres-exporter on the database and prometheus-blackbox-exporter (its
    callback_post module), each on a port of its own; name -> port, once both answer."""
    ports = {"postgres_exporter": free_port(), "blackbox": free_port()}
    (workdir / "blackbox.yml").write_text(BLACKBOX_CONFIG, encoding="utf-8")
    children["postgres_exporter"] = start(
        "postgres_exporter",
        [
            "prometheus-postgres-exporter",
            f"--web.listen-address=127.0.0.1:{ports['postgres_exporter']}",
        ],
        {"DATA_SOURCE_NAME": db.url(EXPORTER_ROLE, sslmode="disable")},
        workdir,
    )
    children["blackbox"] = start(
        "blackbox",
        [
            "prometheus-blackbox-exporter",
            f"--config.file={workdir / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{ports['blackbox']}",
        ],
        {},
        workdir,
    )
    wait_http(ports["postgres_exporter"], "/metrics", 60)
    wait_http(ports["blackbox"], "/", 60)
    return ports


def run(  # noqa: PLR0917 - one call site
    db: BenchDb,
    args: Any,
    report: Report,
    workdir: Path,
    callback_url: str,
    children: dict[str, subprocess.Popen[bytes]],
) -> None:
    """The benchmark proper; children are stopped by the caller."""
    ports = {"rollout-monitor": free_port()}
    (workdir / "monitor.yaml").write_text(MONITOR_CONFIG, encoding="utf-8")
    children["rollout-monitor"] = start(
        "rollout-monitor",
        [str(VENV_BIN / "rollout-monitor"), "run", "--config", str(workdir / "monitor.yaml")],
        {
            "DATABASE_URL": db.url(MONITOR_ROLE),
            "ROLLOUT_CALLBACK_URL": callback_url,
            "ROLLOUT_LISTEN_ADDRESS": f"127.0.0.1:{ports['rollout-monitor']}",
        },
        workdir,
    )
    wait_http(ports["rollout-monitor"], "/readyz", 180)
    ports.update(start_exporters(db, workdir, children))
    versions = {}
    for binary in ("prometheus-postgres-exporter", "prometheus-blackbox-exporter"):
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        versions[binary] = (out.stdout + out.stderr).splitlines()[0]
    report.data.update(
        {"rows": db.rows, "versions": versions, "args": vars(args) | {"db": str(args.db)}}
    )

    exporters = {
        "rollout-monitor": ports["rollout-monitor"],
        "postgres_exporter": ports["postgres_exporter"],
    }
    say(f"warm-up: {args.warmup} scrapes of each")
    for _ in range(args.warmup):
        for port in exporters.values():
            scrape(port)
    time.sleep(1)
    rss_before = {name: proc_status(children[name].pid) for name in exporters}
    with db.connect() as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    window_started = time.monotonic()
    latencies: dict[str, list[float]] = {name: [] for name in exporters}
    sizes: dict[str, tuple[int, int]] = {}
    say(f"{args.scrapes} sequential scrapes of each, alternating")
    for i in range(args.scrapes):
        order = list(exporters.items()) if i % 2 == 0 else list(exporters.items())[::-1]
        for name, port in order:
            seconds, body = scrape(port)
            latencies[name].append(seconds)
            sizes[name] = (len(body), sample_count(body))
    window = time.monotonic() - window_started
    db_time = role_time(db)
    rss_after = {name: proc_status(children[name].pid) for name in exporters}
    roles = {"rollout-monitor": MONITOR_ROLE, "postgres_exporter": EXPORTER_ROLE}
    scrape_rows = []
    for name in exporters:
        values = [s * 1000 for s in latencies[name]]
        ms, calls = db_time.get(roles[name], (0.0, 0))
        scrape_rows.append(
            [
                name,
                len(values),
                median(values),
                quantile(values, 0.99),
                max(values),
                sizes[name][0],
                sizes[name][1],
                rss_before[name]["VmRSS"] / 1024,
                rss_after[name]["VmRSS"] / 1024,
                ms,
                calls,
                ms / len(values) if name == "postgres_exporter" else None,
            ]
        )
        report.data.setdefault("scrapes", {})[name] = {
            "latency_ms": values,
            "bytes": sizes[name][0],
            "samples": sizes[name][1],
            "rss_before_kb": rss_before[name],
            "rss_after_kb": rss_after[name],
            "db_ms_in_window": ms,
            "db_calls_in_window": calls,
        }
    report.data["scrape_window_seconds"] = window

    say(
        f"probing for {args.probes} s: rollout-monitor every 1 s, blackbox and a plain POST"
        " each second"
    )
    probe_rows = probe(args, report, ports, callback_url)
    rss_end = {name: proc_status(children[name].pid) for name in children}
    report.data["rss_end_kb"] = rss_end

    report.print(
        f"# exporters: {db.rows:,} rows; {versions['prometheus-postgres-exporter']};"
        f" {versions['prometheus-blackbox-exporter']}"
    )
    report.table(
        f"/metrics, {args.scrapes} sequential scrapes each after {args.warmup} warm-up"
        f" (ms; RSS MiB; db = pg_stat_statements of its role over the {window:.1f} s window:"
        " rollout-monitor's checks run on their own schedule, never per scrape)",
        [
            "exporter",
            "scrapes",
            "p50",
            "p99",
            "max",
            "bytes",
            "samples",
            "RSS warm",
            "RSS after",
            "db ms",
            "db calls",
            "db ms/scrape",
        ],
        scrape_rows,
    )
    report.table(
        f"callback probe latency, server delay {args.delay * 1000:.0f} ms (ms)",
        ["source", "probes", "p50", "p99", "min", "max", "p50 - delay"],
        probe_rows,
    )
    report.table(
        "RSS at the end (MiB)",
        ["process", "VmRSS", "VmHWM", "threads"],
        [[name, s["VmRSS"] / 1024, s["VmHWM"] / 1024, s["Threads"]] for name, s in rss_end.items()],
    )


def probe(args: Any, report: Report, ports: dict[str, int], callback_url: str) -> list[list[Any]]:
    """Once a second: a blackbox probe, a plain POST, and rollout-monitor's newest probe."""
    target = quote(callback_url, safe="")
    path = f"/probe?module={BLACKBOX_MODULE}&target={target}"
    blackbox: list[float] = []
    blackbox_failed = 0
    plain: list[float] = []
    monitor: list[float] = []
    skipped = 0

    def monitor_state() -> tuple[float, float | None, dict[float, float]]:
        _, body = scrape(ports["rollout-monitor"])
        found = samples(body)
        total = sum(v for _, v in found.get("rollout_auth_callback_requests_total", []))
        return total, first(found, "rollout_auth_callback_last_duration_seconds"), buckets(found)

    count, _, start_buckets = monitor_state()
    for _ in range(args.probes):
        started = time.monotonic()
        _, body = scrape(ports["blackbox"], path)
        found = samples(body)
        if first(found, "probe_success") == 1.0:
            blackbox.append((first(found, "probe_duration_seconds") or 0.0) * 1000)
        else:
            blackbox_failed += 1
        plain.append(post_once(callback_url) * 1000)
        now_count, last, _ = monitor_state()
        if now_count == count + 1 and last is not None:
            monitor.append(last * 1000)
        elif now_count > count:
            skipped += int(now_count - count)
        count = now_count
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    _, _, end_buckets = monitor_state()
    window = {le: end_buckets[le] - start_buckets.get(le, 0.0) for le in end_buckets}
    in_histogram = window.get(float("inf"), 0.0)
    delay = args.delay * 1000

    def row(name: str, values: list[float]) -> list[Any]:
        return [
            name,
            len(values),
            median(values),
            quantile(values, 0.99),
            min(values, default=float("nan")),
            max(values, default=float("nan")),
            median(values) - delay,
        ]

    rows = [
        ["server delay (true)", None, delay, delay, delay, delay, 0.0],
        row("plain POST from the bench", plain),
        row("rollout-monitor last_duration", monitor),
        [
            "rollout-monitor histogram_quantile",
            int(in_histogram),
            histogram_quantile(0.5, window) * 1000,
            histogram_quantile(0.99, window) * 1000,
            None,
            None,
            histogram_quantile(0.5, window) * 1000 - delay,
        ],
        row("blackbox probe_duration_seconds", blackbox),
    ]
    report.data["probes"] = {
        "delay_ms": delay,
        "plain_ms": plain,
        "monitor_last_duration_ms": monitor,
        "monitor_probes_not_sampled": skipped,
        "monitor_histogram_window": {str(k): v for k, v in window.items()},
        "blackbox_ms": blackbox,
        "blackbox_failed": blackbox_failed,
    }
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
