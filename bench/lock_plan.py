"""The lock plan on a large database (issue 19): `rollout-monitor plan` of migration 001 with the
database's facts, as the monitoring role, beside squawk (squawk-cli), the migration linter users
pick instead, on the same file.

    .venv/bin/python bench/lock_plan.py --rows 10000000 --repeat 5      # about 4 min to build
    .venv/bin/python bench/lock_plan.py --db bench/results/db-10000000.json

Each run is the whole command, a fresh process (interpreter, imports, the SQL read by pglast, the
database asked: table sizes, blockers, Prisma's lock, the app's activity over half a second, the
column types), timed on the wall clock. Then once more while another session holds ACCESS
EXCLUSIVE on users, as a migration's ALTER TABLE does: the plan reads catalogs and statistics
only, so it must answer as fast and name that session as a blocker. Read-only is checked by the
database's own counters: no row of any table inserted, updated or deleted across the runs.

Then the live part: a daemon (`rollout-monitor run`, only its schema and migration_run checks on,
at their default intervals) beside a pre-migration database; migration 001 runs as Prisma runs it
(its advisory lock, the file as one query), first queued behind a transaction that read users,
then, that one let go, behind one that read threads_tokens: statement 3. From the moment
pg_locks shows it waiting there, /metrics is polled every 50 ms until it says statement 3. The
migration is then cancelled (its transaction rolls back) and the round repeats.

Targets: the plan with the database within 1 s (the slowest run); with users locked, within 1 s
and the holder named as a blocker; no row written; the live statement on /metrics within one
migration_run interval (5 s) of the migration reaching it, plus 0.5 s for the check's own
queries and the polling (the slowest round).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from common import (
    MONITOR_ROLE,
    REPO,
    VENV_BIN,
    BenchDb,
    Report,
    http_get,
    median,
    samples,
    say,
    stop_process,
    table,
    wait_http,
)
from make_db import add_db_arguments, open_db
from targets import Targets

from monitor.assets import sql_file
from monitor.demo.postgres import free_port

MIGRATION = REPO / "monitor" / "assets" / "sql" / "migration_001.sql"
LIMIT_SECONDS = 1.0
RUN_INTERVAL_SECONDS = 5.0  # checks.migration_run's default
LIVE_LIMIT_SECONDS = RUN_INTERVAL_SECONDS + 0.5
WRITES = """
SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables
"""


def plan_once(db: BenchDb | None) -> tuple[float, dict[str, Any]]:
    """One `rollout-monitor plan --format json` as the monitoring role (without a database:
    the SQL alone, as squawk reads it): seconds and its JSON."""
    started = time.perf_counter()
    database = {} if db is None else {"DATABASE_URL": db.url(MONITOR_ROLE)}
    done = subprocess.run(
        [str(VENV_BIN / "rollout-monitor"), "plan", "--format", "json", str(MIGRATION)],
        env={**database, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"plan exited {done.returncode}: {done.stderr.strip()[:300]}")
    return seconds, json.loads(done.stdout)


def squawk_once() -> float | None:
    """One `squawk` of the same file, or None when squawk is not installed."""
    squawk = shutil.which("squawk", path=str(VENV_BIN)) or shutil.which("squawk")
    if squawk is None:
        return None
    started = time.perf_counter()
    subprocess.run([squawk, str(MIGRATION)], capture_output=True, timeout=60, check=False)
    return time.perf_counter() - started


def writes(db: BenchDb) -> int:
    """Rows inserted, updated or deleted in every table so far (the statistics' counters)."""
    with db.connect() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(WRITES).fetchone()
    return int(row[0]) if row else 0


def run(db: BenchDb, repeat: int, report: Report) -> dict[str, Any]:
    """The runs: plain, then with users locked; squawk beside them."""
    before = writes(db)
    plain = []
    for i in range(repeat):
        seconds, document = plan_once(db)
        plain.append(seconds)
        say(f"plan {i + 1}/{repeat}: {seconds * 1000:.0f} ms, {document['result']}")
    alone = [plan_once(None)[0] for _ in range(repeat)]
    squawk = [s for s in (squawk_once() for _ in range(repeat)) if s is not None]
    with db.connect() as holder:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        pid = holder.info.backend_pid
        locked, document = plan_once(db)
        holder.execute("ROLLBACK")
    named = any(b["pid"] == pid and b["table"] == "users" for b in document["blockers"])
    time.sleep(0.6)  # the statistics collector's flush (pg_stat_* are at most 500 ms stale)
    written = writes(db) - before
    facts = document.get("database") or {}
    rows = {name: t["rows"] for name, t in (facts.get("tables") or {}).items()}
    figures = {
        "plan_seconds": plain,
        "plan_median_seconds": median(plain),
        "plan_max_seconds": max(plain),
        "locked_seconds": locked,
        "blocker_named": named,
        "rows_written": written,
        "squawk_seconds": squawk,
        "plan_without_database_seconds": alone,
        "table_rows": rows,
    }
    report.data.update(figures)
    squawk_text = f"{median(squawk) * 1000:.0f} ms" if squawk else "not installed"
    report.print(
        table(
            "rollout-monitor plan of migration 001 (whole command, fresh process)",
            ["run", "median", "slowest", "note"],
            [
                [
                    "plan with the database",
                    f"{median(plain) * 1000:.0f} ms",
                    f"{max(plain) * 1000:.0f} ms",
                    f"{repeat} runs; rows {rows}",
                ],
                [
                    "plan, users held ACCESS EXCLUSIVE",
                    f"{locked * 1000:.0f} ms",
                    f"{locked * 1000:.0f} ms",
                    f"holder named as a blocker: {named}",
                ],
                [
                    "plan without a database (the SQL alone)",
                    f"{median(alone) * 1000:.0f} ms",
                    f"{max(alone) * 1000:.0f} ms",
                    "interpreter, imports, pglast: what squawk's time compares with",
                ],
                [
                    "squawk (static lint, no database)",
                    squawk_text,
                    "",
                    "the migration linter users pick instead (a Rust binary)",
                ],
            ],
        )
    )
    return figures


def waiting_on(conn: Any, pid: int, table: str, deadline: float = 30.0) -> float:
    """Block until the session waits for a lock on the table; the monotonic time it was seen."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted"
            " AND relation = %s::regclass",
            (pid, table),
        ).fetchone()
        if row and row[0]:
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError(f"the migration never waited on {table}")


def statement_shown(port: int, want: float, deadline: float = 30.0) -> float:
    """Poll /metrics every 50 ms until rollout_migration_statement is `want`; when it was."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        _, body, _ = http_get("127.0.0.1", port, "/metrics", timeout=5)
        found = samples(body).get("rollout_migration_statement", [])
        if any(value == want for _, value in found):
            return time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"/metrics never showed statement {want:g}")


def live_database(db: BenchDb) -> BenchDb:
    """A pre-migration database beside the bench one, on the same server."""
    name = "lock_plan_live"
    with db.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    live = BenchDb(port=db.port, rows=0, dbname=name)
    with live.connect() as conn:
        conn.execute(sql_file("schema_before"))
    return live


LIVE_CONFIG = """
checks:
  drift: {enabled: false}
  backfill: {enabled: false}
  connections: {enabled: false}
  activity: {enabled: false}
  query_performance: {enabled: false}
  pool: {enabled: false}
  callback: {enabled: false}
"""


def live(db: BenchDb, rounds: int, workdir: Path) -> list[float]:
    """Seconds from the migration waiting at statement 3 to /metrics saying so, per round."""
    target = live_database(db)
    config = workdir / "lock_plan_live.yaml"
    config.write_text(LIVE_CONFIG)
    port = free_port()
    daemon = subprocess.Popen(
        [
            str(VENV_BIN / "rollout-monitor"),
            "run",
            "--config",
            str(config),
            "--listen-address",
            f"127.0.0.1:{port}",
        ],
        env={"DATABASE_URL": target.url(), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    delays = []
    # Each round starts at its own point of the check's interval.
    phase = random.Random(1)  # noqa: S311  # not secrets
    try:
        wait_http(port, "/metrics", 30)
        text = sql_file("migration_001")
        for i in range(rounds):
            time.sleep(phase.uniform(0, RUN_INTERVAL_SECONDS))
            delays.append(one_round(target, port, text))
            say(f"live round {i + 1}/{rounds}: statement 3 shown {delays[-1] * 1000:.0f} ms later")
    finally:
        stop_process(daemon)
    return delays


def one_round(target: BenchDb, port: int, text: bytes) -> float:
    """Queue the migration behind users, then threads_tokens; time /metrics catching up."""
    watcher, users, tokens = target.connect(), target.connect(), target.connect()
    migrator = target.connect()
    try:
        for conn, table in ((users, "users"), (tokens, "threads_tokens")):
            conn.execute("BEGIN")
            conn.execute(f"SELECT count(*) FROM {table}")
        migrator.execute("SELECT pg_advisory_lock(72707369)")
        pid = migrator.info.backend_pid
        thread = threading.Thread(target=run_quietly, args=(migrator, text), daemon=True)
        thread.start()
        waiting_on(watcher, pid, "users")
        users.execute("ROLLBACK")
        reached = waiting_on(watcher, pid, "threads_tokens")
        shown = statement_shown(port, 3.0)
        watcher.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join(30)
        tokens.execute("ROLLBACK")
        return shown - reached
    finally:
        for conn in (watcher, users, tokens, migrator):
            conn.close()


def run_quietly(conn: Any, text: bytes) -> None:
    """The migration's query; cancelled at the end of the round."""
    with contextlib.suppress(psycopg.Error):
        conn.execute(text)


def judge(figures: dict[str, Any], targets: Targets) -> None:
    """The issue's targets."""
    targets.at_most("plan with the database, slowest run", figures["plan_max_seconds"],
                    LIMIT_SECONDS, "s", digits=3)  # fmt: skip
    targets.at_most("plan while users is held ACCESS EXCLUSIVE", figures["locked_seconds"],
                    LIMIT_SECONDS, "s", digits=3)  # fmt: skip
    targets.equal("that holder named as a blocker", float(figures["blocker_named"]), 1.0)
    targets.equal("rows written by the plans", float(figures["rows_written"]), 0.0)
    delays = figures["live_seconds"]
    targets.at_most("live statement on /metrics after the migration reached it, slowest",
                    max(delays) if delays else None, LIVE_LIMIT_SECONDS, "s", digits=3)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_db_arguments(parser, default_rows=10_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="plain runs (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="live rounds (default 5)")
    args = parser.parse_args()
    targets = Targets()
    db = open_db(args)
    report = Report("lock_plan", db.rows)
    try:
        figures = run(db, args.repeat, report)
        with tempfile.TemporaryDirectory() as workdir:
            figures["live_seconds"] = live(db, args.rounds, Path(workdir))
        report.data["live_seconds"] = figures["live_seconds"]
        report.print(
            table(
                "the live statement: from the migration waiting at statement 3 to /metrics",
                ["rounds", "median", "slowest", "interval"],
                [
                    [
                        args.rounds,
                        f"{median(figures['live_seconds']) * 1000:.0f} ms",
                        f"{max(figures['live_seconds']) * 1000:.0f} ms",
                        "5 s",
                    ]
                ],
            )
        )
        judge(figures, targets)
        return targets.finish(report)
    finally:
        report.save()
        db.close()
        say(f"results: {report.path}")


if __name__ == "__main__":
    sys.exit(main())
