"""Rare wrongly invalid tokens at scale: reported, exactly, and at what cost?

    .venv/bin/python bench/rare_drift.py [--rows 2000000] [--planted 100] [--runs 5]
    .venv/bin/python bench/rare_drift.py --rows 120000 --planted 10 --runs 2   # a dry run

A throwaway PostgreSQL with the demo's schema after migration 001, `--rows` users and tokens,
and `--planted` tokens flagged invalid though unexpired (the plan's Risk 3: users locked out),
spread over the table. Around them, tokens the app legitimately flagged invalid (written after
they expired) make up 0%, 1% or 5% of the table: the invalid set the exact count must read through
the migration's "isValid" index. Each case runs the real drift check (default large_tables
settings: a 10,000-row block sample above 100,000 rows) without, then with, an index on
("expiresAt") WHERE NOT "isValid" (which an operator may add; the monitor never writes).

Printed per case: what the check reports against the truth (exactly --planted tokens, checked
after planting), whether the check flagged its count exact, the drift check's wall time per run
(median), the sweep's longest slice (its lock hold on the token table), and the server's CPU over
the runs: this cluster's only, exited backends included (the postmaster's utime, stime and its
reaped children's cutime and cstime from /proc/<pid>/stat, plus its live children's utime and
stime, before and after), and that CPU as a share of one core at one run a minute. Numbers
depend on the machine; the ratios between cases are what to read.

Targets (bench/targets.py), per case: where the method is meant to be exact (the sweep once its
pass is done, the partial index, the sample alone while no token is legitimately invalid: the
cheap exact count through the "isValid" index) the count reported equals the tokens planted;
where it is not (the sample alone among 1% or 5% legitimately invalid) it must not flag a wrong
count exact; the server's CPU at most 0.1% of one core at one run a minute; the lock hold at
most 50 ms (the sweep's longest slice; else the check's whole run, an upper bound); the sweep's
first pass in at most sweep_period / interval + 1 runs. Exit 0 when every target is met.
--rows must exceed large_tables.estimate_above_rows (100,000): below it there is no sample and
no sweep, only exact counts.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
for folder in (BENCH.parent, BENCH):  # the repository (monitor) and bench/ (targets)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import psycopg  # noqa: E402
from targets import Targets  # noqa: E402

from monitor.assets import sql_file  # noqa: E402
from monitor.checks.drift import DriftCheck  # noqa: E402
from monitor.config.schema import Config, LargeTablesSettings  # noqa: E402
from monitor.db.pool import Database  # noqa: E402
from monitor.demo.postgres import PostgresServer  # noqa: E402
from monitor.observe.metrics import Snapshots  # noqa: E402

SHARES = (0.0, 0.01, 0.05)  # tokens legitimately invalid, a share of the table
METHODS = ("sample", "sweep", "partial index")
CORE_TARGET_PERCENT = 0.1
LOCK_TARGET_MS = 50.0

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


def unexpired(rows: int) -> int:
    """How many of the tokens 1..rows are unexpired: those whose number is not a multiple of 5."""
    return rows - rows // 5


def planted_ids(rows: int, planted: int) -> list[str]:
    """`planted` unexpired tokens spread evenly over the table: the n-th unexpired token (from
    0) is number n + n // 4 + 1, four in every five."""
    count = unexpired(rows)
    positions = (j * count // planted for j in range(planted))
    return [f"k{n + n // 4 + 1}" for n in positions]


def mark(conn: psycopg.Connection[Any], rows: int, legit_share: float, planted: int) -> None:
    """Expired tokens flagged invalid up to legit_share of the table, and `planted` unexpired."""
    conn.execute('UPDATE threads_tokens SET "isValid" = true WHERE NOT "isValid"')
    legit = int(rows * legit_share)
    conn.execute(  # i % 5 = 0 are the expired ones
        'UPDATE threads_tokens SET "isValid" = false WHERE id = ANY(%s)',
        [[f"k{5 * (j + 1)}" for j in range(legit)]],
    )
    ids = planted_ids(rows, planted)
    conn.execute('UPDATE threads_tokens SET "isValid" = false WHERE id = ANY(%s)', [ids])
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


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command's closing parenthesis: [0] is field 3 (state)."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    return text.rsplit(")", 1)[1].split()


def cluster_cpu_seconds(postmaster: int) -> float:
    """CPU time of one PostgreSQL cluster, exited backends included: the postmaster's utime,
    stime, cutime and cstime (its reaped children's: every backend that exited) plus the utime
    and stime of its live children. Other clusters on the host count for nothing."""
    fields = stat_fields(postmaster)
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            child = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile: in the postmaster's cutime once reaped
        if int(child[1]) == postmaster:  # field 4, ppid
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def postmaster_pid(server: PostgresServer) -> int:
    """The cluster's postmaster, from the first line of its postmaster.pid."""
    text = (server._dir() / "data" / "postmaster.pid").read_text(encoding="utf-8")
    return int(text.splitlines()[0])


@dataclass
class Reported:
    """What the drift check said after its runs, and what they cost."""

    wrongly: float
    exact: bool
    median_run: float
    longest_slice: float
    runs: int
    cpu: float
    passes: int = 0  # the sweep's completed passes


def pass_runs() -> int:
    """The most runs the sweep's first pass may take: a pass per sweep_period, at one run per
    interval, and the run that reads the final, empty slice."""
    defaults = LargeTablesSettings()
    return math.ceil(defaults.sweep_period / drift_interval()) + 1


def drift_interval() -> float:
    """The drift check's default interval, seconds."""
    config = Config.model_validate({"database": {"url": "postgresql://x/y"}})
    return config.checks.drift.interval


def drift_runs(url: str, runs: int | None, sweep: bool, postmaster: int) -> Reported:
    """The drift check run `runs` times (None: until its sweep has done one pass, or three
    times as many runs as a pass may take)."""
    config = Config.model_validate({"database": {"url": url}, "large_tables": {"sweep": sweep}})
    db = Database(config.database, config.database_url, lambda up: None)
    db.open()
    check = DriftCheck(db, config.checks.drift, config.app, config.large_tables)
    timed = Timed(check._read_slice)
    check._read_slice = timed  # type: ignore[method-assign]
    times: list[float] = []
    families: list[Any] = []
    cpu = cluster_cpu_seconds(postmaster)
    try:
        while len(times) < (runs or 3 * pass_runs()):
            started = time.perf_counter()
            families = list(check.run())
            times.append(time.perf_counter() - started)
            if runs is None and check._sweep is not None and check._sweep.passes:
                break
        cpu = cluster_cpu_seconds(postmaster) - cpu  # the pool's backends still live: counted
    finally:
        db.close()
    passes = check._sweep.passes if check._sweep is not None else 0
    snapshots = Snapshots()
    snapshots.replace("drift", families)
    reported = next(v for labels, v in snapshots.samples("rollout_token_validity_drift")
                    if labels["kind"] == "wrongly_invalid")  # fmt: skip
    exact = next(v for labels, v in snapshots.samples("rollout_token_validity_drift_exact")
                 if labels["kind"] == "wrongly_invalid")  # fmt: skip
    return Reported(
        reported, exact == 1, statistics.median(times), timed.longest, len(times), cpu, passes
    )


def exact_seconds(conn: psycopg.Connection[Any], runs: int) -> float:
    """The exact count's median time."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        conn.execute(EXACT).fetchone()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def meant_exact(how: str, legit_share: float) -> bool:
    """Whether the method is meant to count exactly: the sweep (its pass done) and the partial
    index always; the sample alone while no token is legitimately invalid (the exact count
    through the "isValid" index is then cheap, and the check makes it)."""
    return how != "sample" or legit_share == 0


def judge(targets: Targets, case: str, truth: int, got: Reported, meant: bool) -> None:
    """One case's targets: its count against the truth, its CPU, its lock hold, its pass."""
    if meant:
        targets.equal(f"{case}: tokens reported (planted {truth})", got.wrongly, truth)
    else:
        wrong_claim = float(got.exact and got.wrongly != truth)
        targets.equal(f"{case}: a wrong count flagged exact", wrong_claim, 0)
    percent = 100 * got.cpu / got.runs / drift_interval()
    targets.at_most(
        f"{case}: server CPU at one run a minute", percent, CORE_TARGET_PERCENT, "%", digits=3
    )
    if case.endswith("sweep"):
        targets.at_most(f"{case}: longest slice", got.longest_slice * 1000, LOCK_TARGET_MS, "ms")
        targets.at_most(
            f"{case}: runs to its first pass", got.runs if got.passes else None, pass_runs()
        )
    else:
        targets.at_most(f"{case}: check run, median", got.median_run * 1000, LOCK_TARGET_MS, "ms")


def arguments() -> argparse.Namespace:
    """--rows (above estimate_above_rows), --planted (at most the unexpired tokens), --runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--planted", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    above = LargeTablesSettings().estimate_above_rows
    if args.rows <= above:
        parser.error(
            f"--rows must exceed estimate_above_rows ({above:,}): else no sample, no sweep"
        )
    if not 0 < args.planted <= unexpired(args.rows):
        parser.error(
            f"--planted must be between 1 and the unexpired tokens ({unexpired(args.rows):,})"
        )
    return args


def main() -> int:
    """Build, then measure each case: the sample alone, the sweep, the partial index; judge."""
    args = arguments()
    targets = Targets()
    defaults = LargeTablesSettings()
    interval = drift_interval()
    print(f"### Rare wrongly invalid tokens: {args.rows:,} tokens, {args.planted} planted\n")
    print(f"Sweep: slices of {defaults.sweep_blocks} blocks, a pass per "
          f"{defaults.sweep_period / 60:g} min, the check every {interval:g} s.\n")  # fmt: skip
    print("| legit invalid | how | planted | reported | right | flagged exact | runs | "
          "check (median) | longest slice | server CPU | core |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with PostgresServer() as server:
        conn = server.connect("postgres", autocommit=True)
        started = time.perf_counter()
        build(conn, args.rows)
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        url, postmaster = server.url("postgres"), postmaster_pid(server)
        for share in SHARES:
            mark(conn, args.rows, share, args.planted)
            truth = conn.execute(EXACT).fetchone()[0]  # type: ignore[index]
            if truth != args.planted:  # the bench's own bug: nothing below would mean anything
                raise RuntimeError(f"planted {args.planted} tokens, the table holds {truth}")
            for how in METHODS:
                if how == "partial index":
                    conn.execute(PARTIAL_INDEX)
                    conn.execute("ANALYZE threads_tokens")
                runs = None if how == "sweep" else args.runs
                got = drift_runs(url, runs, how == "sweep", postmaster)
                print_case(share, how, truth, got, interval)
                judge(targets, f"{share:.0%} legit, {how}", truth, got, meant_exact(how, share))
                if how == "partial index":
                    conn.execute("DROP INDEX bench_wrongly")
    return targets.finish()


def print_case(share: float, how: str, truth: int, got: Reported, interval: float) -> None:
    """One row of the figures table."""
    core = got.cpu / got.runs / interval  # the server's CPU per run, at one run per interval
    slice_ms = f"{got.longest_slice * 1000:.1f} ms" if how == "sweep" else "-"
    right = "yes" if got.wrongly == truth else "no"
    print(f"| {share:.0%} | {how} | {truth} | {got.wrongly:g} | {right} | "
          f"{'yes' if got.exact else 'no'} | {got.runs} | "
          f"{got.median_run * 1000:.1f} ms | {slice_ms} | {got.cpu:.2f} s | "
          f"{core:.3%} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
