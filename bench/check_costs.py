"""What each of the monitor's checks costs the database, against the plan's own psql one-liners.

    .venv/bin/python bench/check_costs.py --rows 1000000          # builds a throwaway database
    .venv/bin/python bench/check_costs.py --db bench/results/db-1000000.json   # a kept one

For every check that touches the database, run through the monitor's own runners (Monitor
from monitor.daemon.service, as `rollout-monitor run` builds it), with large_tables at its
defaults, forced off (exact counts) and forced on (estimates), it measures, over --repeat warm runs:

- wall: the runner's wall time in this process (pool acquisition included);
- db: server time from pg_stat_statements (execution + planning, every statement of the
  monitor's role, BEGIN/ROLLBACK included), reset before each run;
- lock hold on users / threads_tokens, two ways:
  * traced (an upper bound): this process wraps psycopg's Cursor.execute and
    Connection.rollback for the monitor's connections; the ACCESS SHARE lock on a table is taken
    by the first statement whose SQL reads it (FROM/JOIN the table: catalog, pg_locks and
    pg_class reads take none) and released by the transaction's end, so the hold is at most the
    time from sending that statement to the ROLLBACK returning;
  * sampled (a bracket): a second pass, with another connection polling pg_locks as fast as it
    can; a hold lasts at least from the first to the last sample that saw it, and at most from
    the sample before to the sample after.

The plan's one-liners run through psql as another role, each its own transaction, so their lock
hold is their statement time (pg_stat_statements), also checked by sampling. Totals: the
monitor's database time per minute at the default intervals, as a share of one core.

Targets (bench/targets.py), in the modes the monitor runs in (default, estimated): each check's
longest lock hold (traced, else the sampled upper bound) at most 50 ms; the database time a
minute at the default intervals at most 60 ms (0.1% of one core). The exact mode (estimates
forced off) is the reference the estimates are measured against: printed, not judged. Exit 0
when every target is met, 1 otherwise (or when no judged mode ran).

    .venv/bin/python bench/check_costs.py --rows 20000 --repeat 1 --modes default,estimated
                                                                  # a dry run, a few seconds
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from common import (
    HUMAN_ROLE,
    MONITOR_ROLE,
    SUPERUSER,
    BenchDb,
    Report,
    median,
    samples,
    say,
)
from make_db import add_db_arguments, open_db
from prometheus_client import disable_created_metrics, generate_latest
from psycopg import sql
from targets import Targets

from monitor.config.schema import Config
from monitor.daemon.service import Monitor
from monitor.output.logs import configure_logging

TABLES = ("users", "threads_tokens")
LOCK_TARGET_MS = 50.0
CORE_TARGET_PERCENT = 0.1
DB_MS_PER_MINUTE_TARGET = CORE_TARGET_PERCENT / 100 * 60_000  # 60 ms of a core's minute
JUDGED_MODES = ("default", "estimated")  # how the monitor runs; "exact" is the reference
NOT_DATABASE_CHECKS = ("callback", "pool", "alerts")
_READS_TABLE = re.compile(
    r'\b(?:FROM|JOIN)\s+(?:"?\w+"?\s*\.\s*)?"?(users|threads_tokens)"?(?![\w"])', re.IGNORECASE
)

MODES: dict[str, int | None] = {
    "default": None,  # large_tables.estimate_above_rows as configured (100,000)
    "exact": 2**40,  # estimates forced off
    "estimated": 0,  # estimates forced on
}

ONE_LINERS = {
    "plan: missing threadsFullName": 'SELECT COUNT(*) FROM users WHERE "threadsFullName" IS NULL;',
    "plan: isValid, expiresAt LIMIT 5": (
        'SELECT "isValid", "expiresAt" FROM threads_tokens LIMIT 5;'
    ),
    "plan: EXPLAIN ANALYZE lookup": (
        "EXPLAIN ANALYZE SELECT * FROM users WHERE \"threadsUserId\" = 'test_user_id';"
    ),
    "by hand: drift count": (
        'SELECT count(*) FILTER (WHERE "isValid" AND "expiresAt" <= now() AT TIME ZONE \'UTC\')'
        ' AS stale_valid, count(*) FILTER (WHERE NOT "isValid"'
        " AND \"expiresAt\" > now() AT TIME ZONE 'UTC') AS wrongly_invalid FROM threads_tokens;"
    ),
}

INTERESTING = (
    "rollout_token_validity_drift",
    "rollout_tokens",
    "rollout_users_missing_field",
    "rollout_users",
    "rollout_users_logged_in_since_migration",
    "rollout_users_logged_in_since_migration_missing_field",
)


# -- tracing the monitor's transactions in this process ------------------------------------------


@dataclass
class Transaction:
    """One of the monitor's transactions, as seen from the client."""

    started: float
    statements: list[tuple[float, float, str]] = field(default_factory=list)
    ended: float | None = None

    def lock_hold(self, table: str) -> float | None:
        """Seconds from the first statement reading the table to the end; None if none did."""
        for sent, _done, text in self.statements:
            if table in _READS_TABLE.findall(text) and self.ended is not None:
                return self.ended - sent
        return None


class Tracer:
    """Wraps psycopg (in this process only) to time the monitor role's transactions."""

    def __init__(self, user: str) -> None:
        self.user = user
        self._open: dict[int, Transaction] = {}
        self.done: list[Transaction] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        """Patch Cursor.execute, Connection.rollback and Connection.commit."""
        tracer = self
        execute = psycopg.Cursor.execute
        rollback = psycopg.Connection.rollback
        commit = psycopg.Connection.commit

        def traced_execute(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            conn = cursor.connection
            if conn.autocommit or conn.info.user != tracer.user:
                return execute(cursor, query, params, **kwargs)
            text = _text(query, conn)
            sent = time.perf_counter()
            try:
                return execute(cursor, query, params, **kwargs)
            finally:
                tracer._statement(conn, sent, time.perf_counter(), text)

        def ending(original: Callable[[Any], None]) -> Callable[[Any], None]:
            def end(conn: Any) -> None:
                try:
                    original(conn)
                finally:
                    tracer._end(conn, time.perf_counter())

            return end

        psycopg.Cursor.execute = traced_execute  # type: ignore[method-assign,assignment]
        psycopg.Connection.rollback = ending(rollback)  # type: ignore[method-assign,assignment]
        psycopg.Connection.commit = ending(commit)  # type: ignore[method-assign,assignment]

    def _statement(self, conn: Any, sent: float, done: float, text: str) -> None:
        with self._lock:
            tx = self._open.setdefault(id(conn), Transaction(started=sent))
            tx.statements.append((sent, done, text))

    def _end(self, conn: Any, ended: float) -> None:
        with self._lock:
            tx = self._open.pop(id(conn), None)
            if tx is not None:
                tx.ended = ended
                self.done.append(tx)

    def take(self) -> list[Transaction]:
        """The transactions finished since the last call."""
        with self._lock:
            done, self.done = self.done, []
            return done


def _text(query: Any, conn: Any) -> str:
    if isinstance(query, sql.Composable):
        return query.as_string(conn)
    if isinstance(query, bytes):
        return query.decode("utf-8", errors="replace")
    return str(query)


# -- sampling pg_locks from another connection -----------------------------------------------------


class LockSampler:
    """Polls pg_locks for a role's ACCESS SHARE on the two tables, as fast as one connection can.

    Only sessions of `role` count: another client of the same database (autovacuum, a human
    with psql) must not be taken for the check under measurement.
    """

    def __init__(self, db: BenchDb, role: str = MONITOR_ROLE) -> None:
        self.role = role
        self._conn = db.connect()
        self._oids = {
            row[0]: row[1]
            for row in self._conn.execute(
                "SELECT oid, relname::text FROM pg_class WHERE relname = ANY(%s)"
                " AND relnamespace = 'public'::regnamespace",
                (list(TABLES),),
            )
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.times: list[float] = []
        self.seen: list[set[tuple[int, str]]] = []

    def __enter__(self) -> LockSampler:
        self.times, self.seen = [], []
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.01)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll(self) -> None:
        query = (
            "SELECT l.pid, l.relation::oid FROM pg_locks AS l"
            " JOIN pg_stat_activity AS a ON a.pid = l.pid"
            " WHERE l.locktype = 'relation' AND l.relation = ANY(%s)"
            " AND l.mode = 'AccessShareLock' AND l.granted AND a.usename = %s"
        )
        oids = list(self._oids)
        with self._conn.cursor() as cursor:
            while not self._stop.is_set():
                cursor.execute(query, (oids, self.role), prepare=True)
                rows = cursor.fetchall()
                self.times.append(time.perf_counter())
                self.seen.append({(pid, self._oids[oid]) for pid, oid in rows})

    def holds(self) -> dict[str, tuple[float, float]]:
        """table -> (lower, upper) bound of the longest hold seen, in seconds."""
        out: dict[str, tuple[float, float]] = {}
        keys = set().union(*self.seen) if self.seen else set()
        for key in keys:
            first = last = None
            for i, seen in enumerate(self.seen):
                if key in seen:
                    first = i if first is None else first
                    last = i
                elif first is not None and last is not None:
                    self._record(out, key[1], first, last)
                    first = last = None
            if first is not None and last is not None:
                self._record(out, key[1], first, last)
        return out

    def _record(
        self, out: dict[str, tuple[float, float]], table: str, first: int, last: int
    ) -> None:
        lower = self.times[last] - self.times[first]
        before = self.times[first - 1] if first > 0 else self.times[first]
        after = self.times[last + 1] if last + 1 < len(self.times) else self.times[last]
        upper = after - before
        if table not in out or out[table][0] < lower:
            out[table] = (lower, upper)

    def period(self) -> float:
        """Mean seconds between two samples."""
        if len(self.times) < 2:
            return float("nan")
        return (self.times[-1] - self.times[0]) / (len(self.times) - 1)

    def close(self) -> None:
        """Close the sampling connection."""
        self._conn.close()


# -- pg_stat_statements ---------------------------------------------------------------------------


def reset_statements(conn: psycopg.Connection[Any]) -> None:
    """Forget every statement's statistics."""
    conn.execute("SELECT pg_stat_statements_reset()")


def statement_time(conn: psycopg.Connection[Any], role: str) -> tuple[float, int, list[Any]]:
    """(milliseconds of execution + planning, calls, top statements) for the role since reset."""
    rows = conn.execute(
        "SELECT total_exec_time + total_plan_time, calls, left(regexp_replace(query, '\\s+', ' ',"
        " 'g'), 90) FROM pg_stat_statements WHERE userid = %s::regrole ORDER BY 1 DESC",
        (role,),
    ).fetchall()
    total = sum(float(r[0]) for r in rows)
    calls = sum(int(r[1]) for r in rows)
    return total, calls, [[round(float(r[0]), 3), int(r[1]), r[2]] for r in rows[:5]]


# -- the runs ------------------------------------------------------------------------------------


def monitor_for(db: BenchDb, estimate_above_rows: int | None) -> Monitor:
    """The monitor `rollout-monitor run` would build, minus the callback probe."""
    settings: dict[str, Any] = {
        "database": {"url": db.url(MONITOR_ROLE)},
        "checks": {"callback": {"enabled": False}},
    }
    if estimate_above_rows is not None:
        settings["large_tables"] = {"estimate_above_rows": estimate_above_rows}
    return Monitor(Config.model_validate(settings), lambda text: text)


def exported_values(monitor: Monitor) -> dict[str, float]:
    """The data gauges the checks exported, flattened to name{labels} -> value."""
    out: dict[str, float] = {}
    for name, found in samples(generate_latest(monitor.registry)).items():
        if name in INTERESTING or "estimat" in name:
            for labels, value in found:
                label = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                out[f"{name}{{{label}}}" if label else name] = value
    return out


def measure_mode(  # noqa: PLR0917 - one call site
    db: BenchDb, mode: str, threshold: int | None, repeat: int, tracer: Tracer, sampler: LockSampler
) -> dict[str, Any]:
    """Every database check of one mode: timed pass, then sampled pass."""
    monitor = monitor_for(db, threshold)
    results: dict[str, Any] = {"checks": {}, "intervals": {}}
    try:
        monitor.db.open()
        runners = [r for r in monitor.runners if r.check.name not in NOT_DATABASE_CHECKS]
        say(f"[{mode}] warm-up run of {', '.join(r.check.name for r in runners)}")
        for runner in runners:  # schema first, as `once` does: the others read its view
            runner()
        tracer.take()
        with db.connect() as stats:
            for runner in runners:
                name = runner.check.name
                results["intervals"][name] = runner.check.interval
                runs: list[dict[str, Any]] = []
                for _ in range(repeat):
                    reset_statements(stats)
                    started = time.perf_counter()
                    outcome = runner()
                    wall = time.perf_counter() - started
                    db_ms, calls, top = statement_time(stats, MONITOR_ROLE)
                    txs = tracer.take()
                    holds = {
                        t: [h for tx in txs if (h := tx.lock_hold(t)) is not None] for t in TABLES
                    }
                    runs.append(
                        {
                            "outcome": outcome,
                            "wall_ms": wall * 1000,
                            "db_ms": db_ms,
                            "calls": calls,
                            "transactions": len(txs),
                            "tx_ms": max(
                                ((tx.ended or tx.started) - tx.started) * 1000 for tx in txs
                            )
                            if txs
                            else 0.0,
                            "traced_hold_ms": {
                                t: max(v) * 1000 if v else None for t, v in holds.items()
                            },
                            "top_statements": top,
                        }
                    )
                sampled = []
                for _ in range(repeat):
                    with sampler:
                        runner()
                    sampled.append(
                        {
                            "holds_ms": {
                                t: [lo * 1000, hi * 1000] for t, (lo, hi) in sampler.holds().items()
                            },
                            "period_ms": sampler.period() * 1000,
                        }
                    )
                tracer.take()
                results["checks"][name] = {"runs": runs, "sampled": sampled}
                say(
                    f"[{mode}] {name}: wall {median([r['wall_ms'] for r in runs]):.1f} ms,"
                    f" db {median([r['db_ms'] for r in runs]):.1f} ms,"
                    f" outcomes {sorted({r['outcome'] for r in runs})}"
                )
        results["values"] = exported_values(monitor)
    finally:
        monitor.close()
    return results


def psql_binary(db: BenchDb) -> str:
    """psql from PATH, or next to the server binaries."""
    found = shutil.which("psql")
    if found:
        return found
    from monitor.demo.postgres import find_bindir  # noqa: PLC0415

    return str(find_bindir() / "psql")


def measure_one_liners(db: BenchDb, repeat: int, sampler: LockSampler) -> dict[str, Any]:
    """The plan's psql commands, each run `repeat` times, timed and sampled."""
    psql = psql_binary(db)
    out: dict[str, Any] = {}
    sampler.role = HUMAN_ROLE
    with db.connect() as stats:
        for name, statement in ONE_LINERS.items():
            command = [psql, "-X", "-q", "-d", db.url(HUMAN_ROLE), "-c", statement]
            subprocess.run(command, check=True, capture_output=True)  # warm-up
            runs = []
            for _ in range(repeat):
                reset_statements(stats)
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                wall = time.perf_counter() - started
                db_ms, calls, _top = statement_time(stats, HUMAN_ROLE)
                runs.append({"wall_ms": wall * 1000, "db_ms": db_ms, "calls": calls})
            sampled = []
            for _ in range(repeat):
                with sampler:
                    subprocess.run(command, check=True, capture_output=True)
                sampled.append(
                    {
                        "holds_ms": {
                            t: [lo * 1000, hi * 1000] for t, (lo, hi) in sampler.holds().items()
                        }
                    }
                )
            out[name] = {"sql": statement, "runs": runs, "sampled": sampled}
            say(f"[psql] {name}: db {median([r['db_ms'] for r in runs]):.1f} ms")
    return out


# -- the report ------------------------------------------------------------------------------------


def _max_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def worst_hold_ms(entry: dict[str, Any], table: str) -> float | None:
    """The check's longest hold on the table: traced when tracing saw one, else the sampled
    bracket's upper bound (streamed queries leave tracing blind); None when neither saw any."""
    traced = _max_or_none([r["traced_hold_ms"][table] for r in entry["runs"]])
    if traced is not None:
        return traced
    bounds = [e["holds_ms"][table][1] for e in entry["sampled"] if table in e["holds_ms"]]
    return max(bounds) if bounds else None


def _sampled(entries: list[dict[str, Any]], table: str) -> str:
    bounds = [e["holds_ms"][table] for e in entries if table in e["holds_ms"]]
    if not bounds:
        return "none seen"
    worst = max(bounds, key=lambda b: b[0])
    return f"{worst[0]:.1f}-{worst[1]:.1f}"


def report_mode(report: Report, mode: str, threshold: int | None, data: dict[str, Any]) -> None:
    """The per-check table of one mode."""
    rows = []
    for name, entry in data["checks"].items():
        runs = entry["runs"]
        traced = {t: _max_or_none([r["traced_hold_ms"][t] for r in runs]) for t in TABLES}
        rows.append(
            [
                name,
                "/".join(sorted({r["outcome"] for r in runs})),
                median([r["wall_ms"] for r in runs]),
                median([r["db_ms"] for r in runs]),
                max(r["db_ms"] for r in runs),
                traced["users"],
                _sampled(entry["sampled"], "users"),
                traced["threads_tokens"],
                _sampled(entry["sampled"], "threads_tokens"),
            ]
        )
    label = {None: "large_tables defaults", 0: "estimate_above_rows=0: forced on"}.get(
        threshold, f"estimate_above_rows={threshold}: forced off"
    )
    report.table(
        f"checks, mode {mode} ({label}); ms; lock hold = max over runs",
        [
            "check",
            "outcome",
            "wall p50",
            "db p50",
            "db max",
            "users traced",
            "users sampled",
            "tokens traced",
            "tokens sampled",
        ],
        rows,
    )
    periods = [e["period_ms"] for entry in data["checks"].values() for e in entry["sampled"]]
    report.print(
        f"traced: upper bound from this process; sampled: lower-upper bound from pg_locks polled"
        f" every {median(periods):.2f} ms (median) in a second pass"
    )


def totals(data: dict[str, Any]) -> tuple[float, list[list[Any]]]:
    """Database ms per minute at the default intervals (every check the daemon runs, each at
    the interval it ran with), and the rows explaining it."""
    intervals: dict[str, float] = data["intervals"]
    rows = []
    total = 0.0
    for name, entry in data["checks"].items():
        per_run = median([r["db_ms"] for r in entry["runs"]])
        per_minute = per_run * 60 / intervals[name]
        total += per_minute
        rows.append([name, intervals[name], per_run, per_minute])
    return total, rows


def main() -> int:
    """Measure every mode, then the one-liners, print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_db_arguments(parser)
    parser.add_argument("--repeat", type=int, default=5, help="warm runs per check (default 5)")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES)
    )
    args = parser.parse_args()
    targets = Targets()
    disable_created_metrics()  # type: ignore[no-untyped-call]
    configure_logging("warning", "json", lambda text: text, sys.stderr)
    db = open_db(args)
    report = Report("check_costs", db.rows)
    try:
        run(db, args, report)
        judge(report, targets)
        return targets.finish(report)
    finally:
        report.save()
        db.close()
        say(f"results: {report.path}")


def run(db: BenchDb, args: Any, report: Report) -> None:
    """The benchmark proper."""
    tracer = Tracer(MONITOR_ROLE)
    tracer.install()
    sampler = LockSampler(db)
    defaults = Config.model_validate({"database": {"url": db.url(SUPERUSER)}})
    report.data.update(
        {
            "rows": db.rows,
            "repeat": args.repeat,
            "estimate_above_rows_default": defaults.large_tables.estimate_above_rows,
            "modes": {},
        }
    )
    with db.connect() as conn:
        report.data["reltuples"] = dict(
            conn.execute(
                "SELECT relname::text, reltuples::bigint FROM pg_class WHERE relname = ANY(%s)"
                " AND relnamespace = 'public'::regnamespace",
                (list(TABLES),),
            ).fetchall()
        )
    try:
        for mode in args.modes.split(","):
            data = measure_mode(db, mode, MODES[mode], args.repeat, tracer, sampler)
            report.data["modes"][mode] = data
        lines = measure_one_liners(db, args.repeat, sampler)
        report.data["one_liners"] = lines
    finally:
        sampler.close()

    report.print(
        f"# check_costs: {db.rows:,} users and tokens (reltuples {report.data['reltuples']}),"
        f" {args.repeat} warm runs per check"
    )
    for mode, data in report.data["modes"].items():
        report_mode(report, mode, MODES[mode], data)
    report.table(
        "the plan's one-liners through psql, as a human would run them (ms)",
        ["command", "wall p50 (psql)", "db p50", "db max", "users sampled", "tokens sampled"],
        [
            [
                name,
                median([r["wall_ms"] for r in entry["runs"]]),
                median([r["db_ms"] for r in entry["runs"]]),
                max(r["db_ms"] for r in entry["runs"]),
                _sampled(entry["sampled"], "users"),
                _sampled(entry["sampled"], "threads_tokens"),
            ]
            for name, entry in lines.items()
        ],
    )
    for mode, data in report.data["modes"].items():
        total, rows = totals(data)
        report.table(
            f"database time per minute at the default intervals, mode {mode}",
            ["check", "interval s", "db ms/run", "db ms/min"],
            [*rows, ["total", None, None, total]],
        )
        data["db_ms_per_minute"] = total
        data["percent_of_one_core"] = total / 60_000 * 100
        holds = {name: check_hold(entry) for name, entry in data["checks"].items()}
        data["worst_hold_ms"] = holds
    values = report.data["modes"]
    names = sorted({k for data in values.values() for k in data["values"]})
    report.table(
        "what the checks exported, per mode",
        ["metric", *values],
        [[n, *[values[m]["values"].get(n) for m in values]] for n in names],
    )


def check_hold(entry: dict[str, Any]) -> float | None:
    """A check's longest hold on either table (traced, else sampled); None when none was seen."""
    holds = [h for table in TABLES if (h := worst_hold_ms(entry, table)) is not None]
    return max(holds) if holds else None


def judge(report: Report, targets: Targets) -> None:
    """Each judged mode's lock holds and database time against the targets; the reference
    mode's figures said beside them."""
    for mode, data in report.data["modes"].items():
        holds: dict[str, float | None] = data["worst_hold_ms"]
        total: float = data["db_ms_per_minute"]
        if mode not in JUDGED_MODES:
            worst = max((h for h in holds.values() if h is not None), default=0.0)
            report.print(
                f"mode {mode}, the reference (not judged): {total:,.1f} ms a minute,"
                f" longest lock hold {worst:,.1f} ms"
            )
            continue
        for name, hold in holds.items():
            shown = "none seen" if hold is None else None
            what = f"{mode}: {name}, longest lock hold"
            targets.at_most(what, hold or 0.0, LOCK_TARGET_MS, "ms", shown=shown)
        percent = total / 60_000 * 100
        targets.at_most(
            f"{mode}: database time a minute at the default intervals",
            total,
            DB_MS_PER_MINUTE_TARGET,
            "ms",
            shown=f"{total:,.2f} ms ({percent:.3f}% of a core)",
        )


if __name__ == "__main__":
    raise SystemExit(main())
