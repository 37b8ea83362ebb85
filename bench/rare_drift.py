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
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from monitor.assets import sql_file
from monitor.checks.drift import DriftCheck
from monitor.config.schema import Config, LargeTablesSettings
from monitor.db.pool import Database
from monitor.demo.postgres import PostgresServer
from monitor.observe.metrics import Snapshots

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


class Timed:
    """A slice reader that remembers its longest read (the token table's lock hold)."""

    def __init__(self, read: Callable[[int, int], Any]) -> None:
        self._read = read
        self.longest = 0.0

    def __call__(self, first: int, last: int) -> Any:
        started = time.perf_counter()
        try:
            return self._read(first, last)
        finally:
            self.longest = max(self.longest, time.perf_counter() - started)


def postgres_cpu_seconds() -> float:
    """CPU time (user + system) of every running postgres process: the server's work."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        if name == "postgres":
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Reported:
    """What the drift check said after its runs, and what they cost."""

    wrongly: float
    exact: bool
    median_run: float
    longest_slice: float
    runs: int
    cpu: float


def drift_runs(url: str, runs: int | None, sweep: bool) -> Reported:
    """The drift check run `runs` times (None: until its sweep has done one pass)."""
    config = Config.model_validate({"database": {"url": url}, "large_tables": {"sweep": sweep}})
    db = Database(config.database, config.database_url, lambda up: None)
    db.open()
    check = DriftCheck(db, config.checks.drift, config.app, config.large_tables)
    timed = Timed(check._read_slice)
    check._read_slice = timed  # type: ignore[method-assign]
    times: list[float] = []
    families: list[Any] = []
    cpu = postgres_cpu_seconds()
    try:
        while len(times) < (runs or 10_000):
            started = time.perf_counter()
            families = list(check.run())
            times.append(time.perf_counter() - started)
            if runs is None and check._sweep is not None and check._sweep.passes:
                break
    finally:
        db.close()
    cpu = postgres_cpu_seconds() - cpu
    snapshots = Snapshots()
    snapshots.replace("drift", families)
    reported = next(v for labels, v in snapshots.samples("rollout_token_validity_drift")
                    if labels["kind"] == "wrongly_invalid")  # fmt: skip
    exact = next(v for labels, v in snapshots.samples("rollout_token_validity_drift_exact")
                 if labels["kind"] == "wrongly_invalid")  # fmt: skip
    return Reported(reported, exact == 1, statistics.median(times), timed.longest, len(times), cpu)


def exact_seconds(conn: psycopg.Connection[Any], runs: int) -> float:
    """The exact count's median time."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.execute(EXACT).fetchone()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    """Build, then measure each case: the sample alone, the sweep, the partial index."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--planted", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    defaults = LargeTablesSettings()
    interval = Config.model_validate(
        {"database": {"url": "postgresql://x/y"}}
    ).checks.drift.interval
    print(f"### Rare wrongly invalid tokens: {args.rows:,} tokens, {args.planted} planted\n")
    print(f"Sweep: slices of {defaults.sweep_blocks} blocks, a pass per "
          f"{defaults.sweep_period / 60:g} min, the check every {interval:g} s.\n")  # fmt: skip
    print("| legit invalid | how | truth | reported | exact | runs | check (median) | "
          "longest slice | server CPU | core |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    with PostgresServer() as server:
        conn = server.connect("postgres", autocommit=True)
        started = time.perf_counter()
        build(conn, args.rows)
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        url = server.url("postgres")
        for share in (0.0, 0.01, 0.05):
            mark(conn, args.rows, share, args.planted)
            truth = conn.execute(EXACT).fetchone()[0]  # type: ignore[index]
            for how in ("sample", "sweep", "partial index"):
                if how == "partial index":
                    conn.execute(PARTIAL_INDEX)
                    conn.execute("ANALYZE threads_tokens")
                runs = None if how == "sweep" else args.runs
                got = drift_runs(url, runs, sweep=how == "sweep")
                # core: the server's CPU per run, at one run per interval
                core = got.cpu / got.runs / interval
                slice_ms = f"{got.longest_slice * 1000:.1f} ms" if how == "sweep" else "-"
                print(f"| {share:.0%} | {how} | {truth} | {got.wrongly:g} | "
                      f"{'yes' if got.exact else 'no'} | {got.runs} | "
                      f"{got.median_run * 1000:.1f} ms | {slice_ms} | {got.cpu:.2f} s | "
                      f"{core:.3%} |", flush=True)  # fmt: skip
                if how == "partial index":
                    conn.execute("DROP INDEX bench_wrongly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
