"""Rare wrongly invalid tokens at scale: reported, exactly, and at what cost?

    .venv/bin/python bench/rare_drift.py [--rows 10000000] [--planted 100] [--runs 5]

A throwaway PostgreSQL with the demo's schema after migration 001, `--rows` users and tokens,
and `--planted` tokens flagged invalid though unexpired (the plan's Risk 3: users locked out),
spread over the table. Around them, tokens the app legitimately flagged invalid (written after
they expired) make up 0%, 1% or 5% of the table: the invalid set the exact count must read through
the migration's "isValid" index. Each case runs the real drift check (default large_tables
settings: a 10,000-row block sample above 100,000 rows) without, then with, an index on
("expiresAt") WHERE NOT "isValid" (which an operator may add; the monitor never writes).

Printed per case: what the check reports against the truth, whether it counted exactly, the
drift check's wall time per run (median), the exact count's own time (the longest the token
table's ACCESS SHARE lock is held by it), and the share of one core that is at one run a minute.
Numbers depend on the machine; the ratios between cases are what to read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from monitor.checks.drift import DriftCheck
from monitor.config import Config
from monitor.db import Database
from monitor.demo.data import sql_file
from monitor.demo.postgres import PostgresServer
from monitor.metrics import Snapshots

GENERATE = """
INSERT INTO users (id, "threadsUserId", "updatedAt")
SELECT 'u' || i, 't' || i, now() AT TIME ZONE 'UTC' FROM generate_series(1, %(rows)s) AS i;
INSERT INTO threads_tokens (id, "userId", "threadsUserId", "accessToken", "expiresAt",
                            "updatedAt", "isValid")
SELECT 'k' || i, 'u' || i, 't' || i, 'secret',
       (now() AT TIME ZONE 'UTC') + (CASE WHEN i %% 5 = 0 THEN -1 ELSE 1 END)
                                    * (1 + i %% 60) * interval '1 day',
       now() AT TIME ZONE 'UTC', true
FROM generate_series(1, %(rows)s) AS i;
"""
EXACT = """
SELECT count(*) FROM threads_tokens
WHERE NOT "isValid" AND "expiresAt" > (now() AT TIME ZONE 'UTC')
"""
PARTIAL_INDEX = 'CREATE INDEX bench_wrongly ON threads_tokens ("expiresAt") WHERE NOT "isValid"'


def build(conn: psycopg.Connection[Any], rows: int) -> None:
    """The schema after migration 001 and `rows` users and tokens, all valid (the default)."""
    conn.execute(sql_file("schema_before"))
    conn.execute(sql_file("migration_001"))
    conn.execute("ALTER TABLE threads_tokens DISABLE TRIGGER trigger_update_token_validity")
    for statement in GENERATE.split(";"):
        if statement.strip():
            conn.execute(statement.encode(), {"rows": rows})
    conn.execute("VACUUM ANALYZE")


def mark(conn: psycopg.Connection[Any], rows: int, legit_share: float, planted: int) -> None:
    """Expired tokens flagged invalid up to legit_share of the table, and `planted` unexpired."""
    conn.execute('UPDATE threads_tokens SET "isValid" = true WHERE NOT "isValid"')
    legit = int(rows * legit_share)
    conn.execute(  # i % 5 = 0 are the expired ones
        'UPDATE threads_tokens SET "isValid" = false WHERE id = ANY(%s)',
        [[f"k{5 * (j + 1)}" for j in range(legit)]],
    )
    step = max(1, rows // (planted + 1))
    unexpired = (i for i in range(1, rows) if i % 5)  # i % 5 = 0 are the expired ones
    planted_ids = [f"k{i}" for n, i in enumerate(unexpired) if n % step == 0][:planted]
    conn.execute('UPDATE threads_tokens SET "isValid" = false WHERE id = ANY(%s)', [planted_ids])
    conn.execute("VACUUM ANALYZE threads_tokens")


def drift_runs(url: str, runs: int) -> tuple[float, bool, float]:
    """What the drift check reports (wrongly_invalid), whether exactly, its median wall time."""
    config = Config.model_validate({"database": {"url": url}})
    db = Database(config.database, config.database_url, lambda up: None)
    db.open()
    check = DriftCheck(db, config)
    times, families = [], []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            families = list(check.run())
            times.append(time.perf_counter() - started)
    finally:
        db.close()
    snapshots = Snapshots()
    snapshots.replace("drift", families)
    reported = next(v for labels, v in snapshots.samples("rollout_token_validity_drift")
                    if labels["kind"] == "wrongly_invalid")  # fmt: skip
    exact = next(v for labels, v in snapshots.samples("rollout_token_validity_drift_exact")
                 if labels["kind"] == "wrongly_invalid")  # fmt: skip
    return reported, exact == 1, statistics.median(times)


def exact_seconds(conn: psycopg.Connection[Any], runs: int) -> float:
    """The exact count's median time."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.execute(EXACT).fetchone()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    """Build, then measure each case without and with the partial index."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--planted", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"### Rare wrongly invalid tokens: {args.rows:,} tokens, {args.planted} planted\n")
    print("| legit invalid | partial index | truth | reported | exact | drift check | "
          "exact count | core at 1/min |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    with PostgresServer() as server:
        conn = server.connect("postgres", autocommit=True)
        started = time.perf_counter()
        build(conn, args.rows)
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        url = server.url("postgres")
        for share in (0.0, 0.01, 0.05):
            mark(conn, args.rows, share, args.planted)
            for indexed in (False, True):
                if indexed:
                    conn.execute(PARTIAL_INDEX)
                    conn.execute("ANALYZE threads_tokens")
                truth = conn.execute(EXACT).fetchone()[0]  # type: ignore[index]
                reported, exact, seconds = drift_runs(url, args.runs)
                counted = exact_seconds(conn, args.runs)
                print(f"| {share:.0%} | {'yes' if indexed else 'no'} | {truth} | {reported:g} | "
                      f"{'yes' if exact else 'no'} | {seconds * 1000:.1f} ms | "
                      f"{counted * 1000:.1f} ms | {seconds / 60:.3%} |", flush=True)  # fmt: skip
                if indexed:
                    conn.execute("DROP INDEX bench_wrongly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
