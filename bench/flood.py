"""Hostile clients against `rollout-monitor run`'s HTTP endpoint, beside postgres_exporter.

    .venv/bin/python bench/flood.py [--rows 100000] [--idle 1100] [--wrong 150] [--seconds 20]
    .venv/bin/python bench/flood.py --rows 10000 --idle 50 --wrong 5 --seconds 3 --rounds 1 \
        --settle 11 --scrapes 20                                           # a dry run

On one throwaway database: `rollout-monitor run` with basic auth (two users, bcrypt cost 10)
and `prometheus-postgres-exporter`. After a warm-up, from this process:

1. a flood: --idle TCP connections that never send a byte, and --wrong client threads sending
   wrong passwords as fast as they are answered, for --seconds;
2. during it, from another address (127.0.0.2, as Prometheus is another host): a scrape by a
   user whose password was verified before the flood, once a second, and the first scrape of
   a second user (a bcrypt to run while the flood's are queued);
3. after it (--settle seconds, once the flood's connections are gone): the daemon's RSS against
   its RSS before;
4. --scrapes sequential scrapes of each exporter, alternating, on fresh connections, 50 ms apart:
   /metrics p50 and p99 of each, and the ratio.

Targets (issue 11; bench/targets.py): the valid scrapes during the flood all 200 and at most 1 s;
the first scrape of a user not verified yet 200 and at most 1 s; no wrong password answered
200; RSS after the floods within 5 MB of its start; rollout-monitor's /metrics p99 at most a
fifth of postgres_exporter's. Exit 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
from common import (
    EXPORTER_ROLE,
    MONITOR_ROLE,
    VENV_BIN,
    BenchDb,
    ensure_exporters,
    rss_mb,
    say,
    stop_process,
    wait_http,
)
from exporters import MONITOR_CONFIG, SCRAPE_P99_RATIO, SETTLE_SECONDS, scrape, start
from make_db import add_db_arguments, open_db
from targets import Targets

from monitor.demo.postgres import free_port

HOST, OTHER_HOST = "127.0.0.1", "127.0.0.2"
USERS = {"prometheus": "c0rrect-h0rse-battery", "late": "an0ther-g00d-one"}
TARGET_SCRAPE_SECONDS = 1.0
TARGET_RSS_MB = 5.0


def get(port: int, user: str | None, password: str = "", source: str = HOST) -> tuple[int, float]:
    """(status, seconds) of one GET /metrics on a fresh connection from the source address."""
    started = time.perf_counter()
    sock = socket.create_connection((HOST, port), timeout=30, source_address=(source, 0))
    try:
        auth = ""
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            auth = f"Authorization: Basic {token}\r\n"
        sock.sendall(
            f"GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, time.perf_counter() - started


class Flood:
    """Idle connections and wrong-password clients, until stopped."""

    def __init__(self, port: int, idle: int, wrong: int) -> None:
        self._port = port
        self._stop = threading.Event()
        self.idle = [socket.create_connection((HOST, port), timeout=30) for _ in range(idle)]
        self.answers: list[int] = []
        self._threads = [threading.Thread(target=self._guess) for _ in range(wrong)]
        for thread in self._threads:
            thread.start()

    def _guess(self) -> None:
        while not self._stop.is_set():
            try:
                status, _ = get(self._port, "prometheus", "wrong-guess")
            except OSError:
                status = 0
            self.answers.append(status)

    def stop(self) -> None:
        """End the guessing, then close the idle connections."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        for sock in self.idle:
            sock.close()


def p(values: list[float], q: float) -> float:
    """The q-quantile (statistics.quantiles' exclusive method); the value itself when alone."""
    return statistics.quantiles(values, n=100)[round(q * 100) - 1] if len(values) > 1 else values[0]


def main() -> int:
    """Start both, flood, scrape, judge; the targets' exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_db_arguments(parser, default_rows=100_000)
    parser.add_argument("--idle", type=int, default=1100)
    parser.add_argument("--wrong", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="floods one after the other")
    parser.add_argument(
        "--settle",
        type=float,
        default=15.0,
        help="seconds after a flood before RSS is read (the flood's connections time out: head"
        " deadline 10 s, keep-alive 5 s)",
    )
    args = parser.parse_args()
    targets = Targets()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ensure_exporters()
    db = open_db(args)
    workdir = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        monitor, exporter = start_both(db, workdir, children)
        pid = children["rollout-monitor"].pid
        rounds = [flood_phase(monitor, pid, args) for _ in range(args.rounds)]
        during = rounds[-1]
        during.rss = (rounds[0].rss[0], max(r.rss[1] for r in rounds), during.rss[2])
        during.after_each = [r.rss[2] for r in rounds]
        times = latency_phase(monitor, exporter, args.scrapes)
        return report(db.rows, during, times, targets)
    finally:
        for proc in children.values():
            stop_process(proc)
        db.close()
        say(f"child logs in {workdir}")


def start_both(
    db: BenchDb, workdir: Path, children: dict[str, subprocess.Popen[bytes]]
) -> tuple[int, int]:
    """rollout-monitor (basic auth, no callback) and postgres_exporter, warmed up; their ports."""
    monitor, exporter = free_port(), free_port()
    hashes = {
        u: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=10)).decode() for u, pw in USERS.items()
    }
    web = workdir / "web.yml"
    web.write_text("basic_auth_users:\n" + "".join(f"  {u}: '{h}'\n" for u, h in hashes.items()))
    config = workdir / "monitor.yaml"
    config.write_text(MONITOR_CONFIG.replace("callback: {", "callback: {enabled: false, "))
    argv = [str(VENV_BIN / "rollout-monitor"), "run", "--config", str(config)]
    children["rollout-monitor"] = start(
        "rollout-monitor",
        [*argv, "--web-config-file", str(web)],
        {"DATABASE_URL": db.url(MONITOR_ROLE), "ROLLOUT_LISTEN_ADDRESS": f"{HOST}:{monitor}"},
        workdir,
    )
    children["postgres_exporter"] = start(
        "postgres_exporter",
        ["prometheus-postgres-exporter", f"--web.listen-address={HOST}:{exporter}"],
        {"DATA_SOURCE_NAME": db.url(EXPORTER_ROLE, sslmode="disable")},
        workdir,
    )
    wait_http(exporter, "/metrics", 60)
    deadline = time.monotonic() + 120
    while not answers(monitor):
        if time.monotonic() > deadline:
            raise RuntimeError("rollout-monitor never answered")
        time.sleep(0.5)
    for _ in range(20):
        get(monitor, "prometheus", USERS["prometheus"])
        scrape(exporter)
    time.sleep(2)
    return monitor, exporter


def answers(port: int) -> bool:
    """Whether the monitor answers a scrape with 200 yet."""
    try:
        return get(port, "prometheus", USERS["prometheus"])[0] == 200
    except OSError:
        return False


@dataclass
class During:
    """What the flood phase saw."""

    cached: list[tuple[int, float]]
    late: tuple[int, float]
    answers: list[int]
    rss: tuple[float, float, float]  # before, peak, after
    after_each: list[float] = field(default_factory=list)  # RSS after each round


def flood_phase(port: int, pid: int, args: argparse.Namespace) -> During:
    """The flood, valid scrapes from another address during it, RSS around it."""
    before = peak = rss_mb(pid)
    say(f"flood: {args.idle} idle connections, {args.wrong} wrong-password clients")
    flood = Flood(port, args.idle, args.wrong)
    cached: list[tuple[int, float]] = []
    started = time.monotonic()
    try:
        time.sleep(2)
        late = get(port, "late", USERS["late"], source=OTHER_HOST)
        while time.monotonic() - started < args.seconds:
            cached.append(get(port, "prometheus", USERS["prometheus"], source=OTHER_HOST))
            peak = max(peak, rss_mb(pid))
            time.sleep(1)
    finally:
        flood.stop()
    time.sleep(args.settle)  # the flood's connections time out (head deadline 10 s, keep-alive 5 s)
    return During(cached, late, flood.answers, (before, peak, rss_mb(pid)))


def latency_phase(monitor: int, exporter: int, scrapes: int) -> dict[str, list[float]]:
    """Sequential scrapes of each, alternating, fresh connections."""
    say(f"{scrapes} sequential scrapes of each, alternating")
    times: dict[str, list[float]] = {"rollout-monitor": [], "postgres_exporter": []}
    for i in range(scrapes):
        # Alternating which goes first; a pause after each lets the other's work (its queries,
        # PostgreSQL's backends) settle on this 2-CPU machine, as seconds between scrapes would.
        for name in ("rollout-monitor", "postgres_exporter")[:: 1 if i % 2 else -1]:
            if name == "rollout-monitor":
                status, seconds = get(monitor, "prometheus", USERS["prometheus"])
                if status != 200:
                    raise RuntimeError(f"rollout-monitor answered {status}")
            else:
                seconds, _ = scrape(exporter)
            times[name].append(seconds)
            time.sleep(SETTLE_SECONDS)
    return times


def report(rows: int, during: During, times: dict[str, list[float]], targets: Targets) -> int:
    """The figures, then the targets; the exit code (0 when every target is met)."""
    worst = max((s for _, s in during.cached), default=float("nan"))
    not_ok = sum(1 for status, _ in during.cached if status != 200)
    answered_200 = sum(1 for status in during.answers if status == 200)
    closed = sum(1 for status in during.answers if status == 0)
    before, peak, after = during.rss
    ours, theirs = times["rollout-monitor"], times["postgres_exporter"]
    ratio = p(ours, 0.99) / p(theirs, 0.99)
    print(f"### HTTP floods: rollout-monitor (uvicorn) beside postgres_exporter, {rows:,} rows\n")
    print("| measure | value |")
    print("|---|---|")
    figures = [
        (
            "valid scrapes during the flood (user verified before)",
            f"{len(during.cached)}, max {worst * 1000:.0f} ms,"
            f" statuses {sorted({s for s, _ in during.cached})}",
        ),
        (
            "first scrape of a user not verified yet, during the flood",
            f"{during.late[1] * 1000:.0f} ms, status {during.late[0]}",
        ),
        (
            "wrong-password requests during the last flood",
            f"{len(during.answers)}: {len(during.answers) - answered_200 - closed} refused,"
            f" {closed} closed by the cap, {answered_200} answered 200",
        ),
        (
            f"RSS before / peak / after each of {len(during.after_each)} floods",
            f"{before:.1f} / {peak:.1f} /"
            f" {' then '.join(f'{a:.1f}' for a in during.after_each)} MiB",
        ),
        (
            "/metrics p50, rollout-monitor / postgres_exporter",
            f"{p(ours, 0.5) * 1000:.2f} / {p(theirs, 0.5) * 1000:.2f} ms",
        ),
        (
            "/metrics p99, rollout-monitor / postgres_exporter",
            f"{p(ours, 0.99) * 1000:.2f} / {p(theirs, 0.99) * 1000:.2f} ms",
        ),
    ]
    for name, value in figures:
        print(f"| {name} | {value} |")
    print(f"\n({os.cpu_count()} CPUs; bcrypt cost 10)")
    limit = TARGET_SCRAPE_SECONDS * 1000
    targets.at_most("valid scrapes during the flood, slowest", worst * 1000, limit, "ms", digits=0)
    targets.equal("valid scrapes during the flood not answered 200", not_ok, 0)
    targets.at_most("first scrape of a user not verified yet", during.late[1] * 1000, limit, "ms")
    targets.equal("first scrape of a user not verified yet, status", during.late[0], 200)
    targets.equal("wrong passwords answered 200", answered_200, 0)
    targets.at_most(
        "RSS after the floods above before", after - before, TARGET_RSS_MB, "MiB", digits=1
    )
    targets.at_most(
        "/metrics p99, rollout-monitor / postgres_exporter", ratio, SCRAPE_P99_RATIO, digits=3
    )
    return targets.finish()


if __name__ == "__main__":
    sys.exit(main())
