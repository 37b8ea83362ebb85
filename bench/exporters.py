"""rollout-monitor against prometheus-postgres-exporter and prometheus-blackbox-exporter, same run.

    .venv/bin/python bench/exporters.py --db bench/results/db-1000000.json
    .venv/bin/python bench/exporters.py --rows 200000 --minutes 3
    .venv/bin/python bench/exporters.py --rows 10000 --minutes 0.25 --scrape-interval 5s \
        --warmup 2 --scrapes 10 --probes 5                                # a dry run, ~50 s

On one database, at the same time, `rollout-monitor run` (the database checks at their default
intervals, the callback probe every second so that it probes as often as the bench asks blackbox
to), `prometheus-postgres-exporter` (DATA_SOURCE_NAME, --web.listen-address, defaults otherwise),
`prometheus-blackbox-exporter` (an http_post module like the plan's curl) and a callback server
answering 401 after a fixed --delay. After --warmup scrapes of each, three phases:

1. database time: for --minutes, both exporters scraped every --scrape-interval (15 s, as a
   Prometheus would), side by side; then each role's pg_stat_statements time (execution and
   planning) per minute of the window. postgres_exporter queries the database on every scrape;
   the monitor's checks run on their own schedule, whatever the scrapes.
2. /metrics latency: --scrapes sequential scrapes of each, alternating, each on a fresh
   connection, 50 ms apart (as flood.py: the other's work settles on a small machine); RSS
   (VmRSS) before and after.
3. probe latency: once a second for --probes seconds, blackbox's probe_duration_seconds,
   rollout-monitor's rollout_auth_callback_last_duration_seconds after each of its probes (and
   histogram_quantile over its histogram), and this process's own POST on a fresh connection,
   against the server's true delay.

Targets (bench/targets.py): the monitor's database time at most 60 ms a minute (0.1% of one
core; its ratio to postgres_exporter's is shown beside it); rollout-monitor's /metrics p99 at most
a fifth of postgres_exporter's (issue 11, as flood.py); rollout-monitor's median probe duration at
most 1 ms above blackbox_exporter's for the same callback. RSS is shown; footprint.py judges it.
Exit 0 when every target is met, 1 otherwise.
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
from targets import Targets

from monitor.config.durations import argument as duration
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
DB_MS_PER_MINUTE_TARGET = 60.0  # 0.1% of one core
SCRAPE_P99_RATIO = 0.2  # issue 11: rollout-monitor's /metrics p99 against postgres_exporter's
PROBE_OVERHEAD_MS = 1.0  # rollout-monitor's median probe above blackbox_exporter's
SETTLE_SECONDS = 0.05  # between two sequential scrapes
ROLES = {"rollout-monitor": MONITOR_ROLE, "postgres_exporter": EXPORTER_ROLE}


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


def costliest(db: BenchDb, role: str, count: int = 8) -> list[list[Any]]:
    """The role's costliest statements since the reset: [ms, calls, the statement's start]."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT total_exec_time + total_plan_time, calls, query FROM pg_stat_statements"
            " WHERE userid = %s::regrole ORDER BY 1 DESC LIMIT %s",
            (role, count),
        ).fetchall()
    return [[float(ms), int(calls), statement_start(text)] for ms, calls, text in rows]


def statement_start(query: str, width: int = 80) -> str:
    """A statement's code on one line, its comment lines left out (the monitor's queries open
    with theirs), cut to `width`."""
    code = [line for line in query.splitlines() if not line.strip().startswith("--")]
    return " ".join(" ".join(code).split())[:width]


def arguments() -> argparse.Namespace:
    """The database, the window, the scrapes, the probes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_db_arguments(parser)
    parser.add_argument(
        "--minutes", type=float, default=3.0, help="the database time window (default 3)"
    )
    parser.add_argument(
        "--scrape-interval",
        type=duration(bare_seconds=True),
        default="15s",
        help="both exporters scraped this often in the window (default 15s)",
    )
    parser.add_argument("--scrapes", type=int, default=200, help="sequential scrapes of each")
    parser.add_argument("--warmup", type=int, default=20, help="scrapes of each before measuring")
    parser.add_argument("--probes", type=int, default=120, help="seconds of probing (1 a second)")
    parser.add_argument("--delay", type=float, default=0.05, help="callback server delay, s")
    args = parser.parse_args()
    if args.minutes <= 0 or args.scrapes < 1 or args.probes < 1:
        parser.error("--minutes, --scrapes and --probes must be positive")
    return args


def main() -> int:
    """Start everything, measure, stop everything, print, judge."""
    args = arguments()
    targets = Targets()
    ensure_exporters()
    db = open_db(args)
    report = Report("exporters", db.rows)
    workdir = Path(tempfile.mkdtemp(prefix="bench-exporters-"))
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with delayed_server(401, args.delay) as callback:
            run(db, args, report, workdir, callback.url, children)
        judge(report, targets)
        return targets.finish(report)
    finally:
        for name, proc in children.items():
            seconds = stop_process(proc)
            report.data.setdefault("stop_seconds", {})[name] = round(seconds, 3)
            say(f"stopped {name} in {seconds:.2f}s (exit {proc.returncode})")
        report.data["logs"] = str(workdir)
        report.save()
        db.close()
        say(f"results: {report.path} (child logs in {workdir})")


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
    exporters = {name: ports[name] for name in ROLES}
    say(f"warm-up: {args.warmup} scrapes of each")
    for _ in range(args.warmup):
        for port in exporters.values():
            scrape(port)
    report.print(
        f"# exporters: {db.rows:,} rows; {versions['prometheus-postgres-exporter']};"
        f" {versions['prometheus-blackbox-exporter']}"
    )
    database_window(db, args, report, exporters)
    scrape_latency(args, report, exporters, children)
    say(f"probing for {args.probes} s: rollout-monitor every 1 s, blackbox and a plain POST")
    probe_rows = probe(args, report, ports, callback_url)
    report.table(
        f"callback probe latency, server delay {args.delay * 1000:.0f} ms (ms)",
        ["source", "probes", "p50", "p99", "min", "max", "p50 - delay"],
        probe_rows,
    )
    rss_end = {name: proc_status(children[name].pid) for name in children}
    report.data["rss_end_kb"] = rss_end
    report.table(
        "RSS at the end (MiB; judged by footprint.py)",
        ["process", "VmRSS", "VmHWM", "threads"],
        [[name, s["VmRSS"] / 1024, s["VmHWM"] / 1024, s["Threads"]] for name, s in rss_end.items()],
    )


def database_window(db: BenchDb, args: Any, report: Report, exporters: dict[str, int]) -> None:
    """Both scraped every --scrape-interval for --minutes; each role's database time a minute."""
    seconds = args.minutes * 60
    say(f"database window: {args.minutes:g} min, both scraped every {args.scrape_interval:g} s")
    with db.connect() as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    started = time.monotonic()
    end, due = started + seconds, started
    scrapes = dict.fromkeys(exporters, 0)
    while time.monotonic() < end:
        for name, port in exporters.items():
            scrape(port)
            scrapes[name] += 1
        due += args.scrape_interval
        time.sleep(max(0.0, min(due, end) - time.monotonic()))
    window = time.monotonic() - started
    spent = role_time(db)
    rows, found = [], {}
    for name, role in ROLES.items():
        ms, calls = spent.get(role, (0.0, 0))
        per_minute = ms / window * 60
        found[name] = {
            "ms": ms,
            "calls": calls,
            "ms_per_minute": per_minute,
            "scrapes": scrapes[name],
        }
        rows.append([name, scrapes[name], calls, ms, per_minute, f"{per_minute / 600:.3f}"])
    report.data["database_window"] = {"seconds": window, "interval": args.scrape_interval, **found}
    report.table(
        f"database time over {window:.0f} s, both scraped every {args.scrape_interval:g} s"
        " (pg_stat_statements, execution + planning, of each role; rollout-monitor's checks run"
        " on their own schedule, never per scrape)",
        ["exporter", "scrapes", "db calls", "db ms", "db ms/min", "% of a core"],
        rows,
    )
    for name, role in ROLES.items():
        statements = costliest(db, role)
        report.data["database_window"][name]["costliest"] = statements
        report.table(
            f"{name}'s costliest statements over the window",
            ["ms", "calls", "statement"],
            statements,
        )


def scrape_latency(
    args: Any, report: Report, exporters: dict[str, int], children: dict[str, Any]
) -> None:
    """Sequential scrapes of each, alternating, 50 ms apart: latency, size, RSS around them."""
    rss_before = {name: proc_status(children[name].pid) for name in exporters}
    latencies: dict[str, list[float]] = {name: [] for name in exporters}
    sizes: dict[str, tuple[int, int]] = {}
    say(f"{args.scrapes} sequential scrapes of each, alternating")
    for i in range(args.scrapes):
        order = list(exporters.items()) if i % 2 == 0 else list(exporters.items())[::-1]
        for name, port in order:
            seconds, body = scrape(port)
            latencies[name].append(seconds)
            sizes[name] = (len(body), sample_count(body))
            time.sleep(SETTLE_SECONDS)
    rss_after = {name: proc_status(children[name].pid) for name in exporters}
    rows = []
    for name in exporters:
        values = [s * 1000 for s in latencies[name]]
        rows.append(
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
            ]
        )
        report.data.setdefault("scrapes", {})[name] = {
            "latency_ms": values,
            "bytes": sizes[name][0],
            "samples": sizes[name][1],
            "rss_before_kb": rss_before[name],
            "rss_after_kb": rss_after[name],
        }
    report.table(
        f"/metrics, {args.scrapes} sequential scrapes each, {SETTLE_SECONDS * 1000:.0f} ms apart,"
        f" after {args.warmup} warm-up (ms; RSS MiB)",
        ["exporter", "scrapes", "p50", "p99", "max", "bytes", "samples", "RSS before", "RSS after"],
        rows,
    )


def judge(report: Report, targets: Targets) -> None:
    """The database time, the scrape latency and the probe overhead against their targets."""
    window = report.data["database_window"]
    ours, theirs = (window[name]["ms_per_minute"] for name in ROLES)
    ratio = f"{ours / theirs:.2f}x postgres_exporter's {theirs:,.1f} ms" if theirs else "-"
    targets.at_most(
        "rollout-monitor database time a minute",
        ours,
        DB_MS_PER_MINUTE_TARGET,
        "ms",
        shown=f"{ours:,.1f} ms ({ratio})",
    )
    scrapes = report.data["scrapes"]
    p99 = {name: quantile(scrapes[name]["latency_ms"], 0.99) for name in ROLES}
    targets.at_most(
        "/metrics p99, rollout-monitor / postgres_exporter",
        p99["rollout-monitor"] / p99["postgres_exporter"],
        SCRAPE_P99_RATIO,
        digits=3,
        shown=f"{p99['rollout-monitor']:.2f} / {p99['postgres_exporter']:.2f} ms = "
        f"{p99['rollout-monitor'] / p99['postgres_exporter']:.3f}",
    )
    probes = report.data["probes"]
    ours_ms = median(probes["monitor_last_duration_ms"])
    blackbox_ms = median(probes["blackbox_ms"])
    targets.at_most(
        "probe p50, rollout-monitor above blackbox_exporter",
        ours_ms - blackbox_ms,
        PROBE_OVERHEAD_MS,
        "ms",
        shown=f"{ours_ms - blackbox_ms:+.2f} ms ({ours_ms:.2f} vs {blackbox_ms:.2f} ms)",
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
