"""Build a throwaway PostgreSQL holding the app after migration 001, with N users and N tokens.

    .venv/bin/python bench/make_db.py --rows 1000000            # build, report, remove
    .venv/bin/python bench/make_db.py --rows 10000000 --keep    # keep it for the other benches
    .venv/bin/python bench/make_db.py --drop bench/results/db-10000000.json

The schema is the demo's, verbatim: schema_before.sql, then migration_001.sql, then the
`_prisma_migrations` record `prisma migrate deploy` writes (applied two days ago). To load fast,
the indexes and constraints those files create are dropped while the tables are empty and
re-created, from their own definitions, after the load (the trigger is disabled during the load:
the rows carry the isValid a real history would have left). Tables are normal, logged tables;
PostgresServer already runs with fsync off, and the load raises max_wal_size and turns
autovacuum off until it is done.

Data (deterministic per row, from hashint4 of its number):
- 20% of tokens refreshed since the migration, 5% issued since (new users): valid, trigger-correct;
- 5% written after they expired: isValid false, correctly;
- 70% untouched since the migration: isValid true (the column default), about 40% of them
  expired, i.e. stale_valid;
- about 1 in 10,000 wrongly invalid (isValid false, not expired);
- users who logged in since the migration (25%) have the new fields, except 2% of them; every
  other user misses both.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import (
    DBNAME,
    EXPORTER_ROLE,
    HUMAN_ROLE,
    MONITOR_ROLE,
    RESULTS,
    BenchDb,
    Report,
    say,
)
from psycopg import sql

from monitor.assets import sql_file
from monitor.demo.data import MIGRATION_NAME
from monitor.demo.postgres import PostgresServer

TABLES = ("users", "threads_tokens")
MIGRATED_DAYS_AGO = 2

# Server settings for a 23 GB, 2-CPU machine: caches like a production box, a fast load.
SERVER_SETTINGS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "maintenance_work_mem": "1GB",
    "work_mem": "16MB",
    "max_wal_size": "32GB",
    "checkpoint_timeout": "1h",
    "synchronous_commit": "off",
    "max_parallel_maintenance_workers": "1",
    "pg_stat_statements.track_planning": "on",
    "pg_stat_statements.max": "10000",
    "track_io_timing": "on",
}

_USERS_BATCH = """
INSERT INTO users (id, email, "threadsUserId", "threadsUsername", "createdAt", "updatedAt",
                   "threadsFullName", "threadsProfilePic")
SELECT 'usr_' || n, 'user' || n || '@example.invalid', 'tu_' || n, 'user_' || n,
       created, created + random() * (%(now)s - created),
       CASE WHEN b < 250 AND b2 >= 20 THEN 'Bench User ' || n END,
       CASE WHEN b < 250 AND b2 >= 20 THEN 'https://cdn.example.invalid/' || n || '.jpg' END
FROM (
    SELECT n,
           mod(abs(hashint4(n)::bigint), 1000) AS b,
           mod(abs(hashint4(n + 1000000000)::bigint), 1000) AS b2,
           %(now)s - random() * interval '400 days' AS created
    FROM generate_series(%(low)s::int, %(high)s::int) AS n
) AS s
"""

# b: the token's history (see the module docstring); w: 1 in 10,000 wrongly invalid.
_TOKENS_BATCH = """
INSERT INTO threads_tokens (id, "userId", "threadsUserId", "accessToken", "expiresAt",
                            "createdAt", "updatedAt", "issuedAt", "lastRefreshedAt", "isValid")
SELECT 'tok_' || n, 'usr_' || n, 'tu_' || n, md5(n::text || 'bench'),
       expires, created, coalesce(refreshed, issued, created), issued, refreshed, valid
FROM (
    SELECT n, x.*,
           CASE
               WHEN w = 0 AND b >= 300 THEN false
               WHEN b >= 250 AND b < 300 THEN false
               ELSE true
           END AS valid,
           CASE
               WHEN b < 200 THEN refreshed + interval '60 days'
               WHEN b < 250 THEN issued + interval '60 days'
               WHEN b < 300 THEN %(now)s - random() * interval '30 days'
               WHEN w = 0 THEN %(now)s + random() * interval '30 days'
               ELSE %(now)s + (random() * 100 - 40) * interval '1 day'
           END AS expires
    FROM (
        SELECT n,
               mod(abs(hashint4(n)::bigint), 1000) AS b,
               mod(abs(hashint4(n + 2000000000)::bigint), 10000) AS w,
               random() AS r
        FROM generate_series(%(low)s::int, %(high)s::int) AS n
    ) AS g
    CROSS JOIN LATERAL (
        SELECT
            CASE WHEN b < 200 THEN %(migrated)s + r * (%(now)s - %(migrated)s) END AS refreshed,
            CASE WHEN b >= 200 AND b < 250
                 THEN %(migrated)s + r * (%(now)s - %(migrated)s) END AS issued,
            %(now)s - interval '60 days' - r * interval '200 days' AS created
    ) AS x
) AS t
"""

_PRISMA_RECORD = """
INSERT INTO _prisma_migrations
    (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
VALUES (gen_random_uuid()::text, md5(%(name)s) || md5(%(name)s),
        %(finished)s, %(name)s, %(started)s, 1)
"""


def _definitions(conn: Any) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(table, constraint, definition) of keys, and (index, definition) of the other indexes."""
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('p', 'u', 'f')"
        " ORDER BY contype = 'f', conname",
        (list(TABLES),),
    ).fetchall()
    owned = [name for _, name, _ in constraints]
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " AND tablename = ANY(%s) AND NOT indexname = ANY(%s) ORDER BY indexname",
        (list(TABLES), owned),
    ).fetchall()
    return constraints, indexes


def _load(db: BenchDb, table: str, rows: int, batch: int, params: dict[str, Any]) -> None:
    """Insert rows 1..N into one table in batches (one transaction each), with progress."""
    statement = _USERS_BATCH if table == "users" else _TOKENS_BATCH
    started = time.perf_counter()
    with db.connect() as conn:
        conn.execute("SELECT setseed(%s)", (0.42 if table == "users" else 0.24,))
        for low in range(1, rows + 1, batch):
            high = min(rows, low + batch - 1)
            conn.execute(statement, {**params, "low": low, "high": high})
            rate = high / (time.perf_counter() - started)
            say(f"  {table}: {high:,}/{rows:,} ({100 * high / rows:.0f}%), {rate:,.0f} rows/s")


def _parallel(jobs: list[Callable[[], None]]) -> None:
    """Run the jobs on threads (one connection each) and re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _index_worker(db: BenchDb, queue: list[str], lock: threading.Lock) -> None:
    with db.connect() as conn:
        while True:
            with lock:
                if not queue:
                    return
                statement = queue.pop(0)
            started = time.perf_counter()
            conn.execute(statement.encode())
            say(f"  {time.perf_counter() - started:6.1f}s  {statement[:100]}")


def build(rows: int, batch: int = 500_000, base_dir: str | None = None) -> BenchDb:  # noqa: PLR0915
    """Start a server and fill it; the caller closes the returned BenchDb (stop and remove)."""
    phases: dict[str, float] = {}
    total_started = time.perf_counter()

    def phase(name: str, started: float) -> None:
        phases[name] = round(time.perf_counter() - started, 2)
        say(f"{name}: {phases[name]:.1f}s")

    started = time.perf_counter()
    server = PostgresServer(base_dir=base_dir)
    server.start()
    db = BenchDb(port=server.port, rows=rows, server=server)
    try:
        with server.connect() as conn:
            for name, value in {**SERVER_SETTINGS, "autovacuum": "off"}.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), value)
                )
        server.restart()
        server.create_database(DBNAME)
        phase("server", started)

        started = time.perf_counter()
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        migrated = now - timedelta(days=MIGRATED_DAYS_AGO)
        with db.connect() as conn, conn.transaction():
            conn.execute(sql_file("schema_before"))
            conn.execute(sql_file("migration_001"))
            conn.execute(
                _PRISMA_RECORD,
                {
                    "name": MIGRATION_NAME,
                    "started": migrated.replace(tzinfo=UTC) - timedelta(seconds=3),
                    "finished": migrated.replace(tzinfo=UTC),
                },
            )
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            constraints, indexes = _definitions(conn)
            for table, name, _definition in constraints[::-1]:  # the foreign key first
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                )
            for name, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            conn.execute(
                'ALTER TABLE threads_tokens DISABLE TRIGGER "trigger_update_token_validity"'
            )
        phase("schema", started)

        started = time.perf_counter()
        params = {"now": now, "migrated": migrated}
        say(f"loading {rows:,} users and {rows:,} tokens in batches of {batch:,}")
        _parallel([lambda t=t: _load(db, t, rows, batch, params) for t in TABLES])  # type: ignore[misc]
        phase("load", started)

        started = time.perf_counter()
        keys = [
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
            for table, name, definition in constraints
            if not definition.startswith("FOREIGN KEY")
        ]
        queue = keys + [definition for _, definition in indexes]
        lock = threading.Lock()
        say(f"creating {len(queue)} indexes on two connections")
        _parallel([lambda: _index_worker(db, queue, lock) for _ in range(2)])
        phase("indexes", started)

        started = time.perf_counter()
        with db.connect() as conn:
            for table, name, definition in constraints:
                if definition.startswith("FOREIGN KEY"):
                    conn.execute(
                        f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'.encode()
                    )
            conn.execute(
                'ALTER TABLE threads_tokens ENABLE TRIGGER "trigger_update_token_validity"'
            )
        phase("foreign_key", started)

        started = time.perf_counter()
        _parallel(
            [
                lambda t=t: _vacuum(db, t)  # type: ignore[misc]
                for t in TABLES
            ]
        )
        with db.connect() as conn:
            conn.execute("ANALYZE")
            conn.execute("ALTER SYSTEM RESET autovacuum")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("CHECKPOINT")
        phase("vacuum_analyze", started)

        with db.connect() as conn:
            _create_roles(conn)
        grant_monitor_role(db)
        phases["total"] = round(time.perf_counter() - total_started, 2)
        db.state = {
            "port": server.port,
            "rows": rows,
            "url": db.url(),
            "data_dir": str(server._dir() / "data"),
            "dir": str(server._dir()),
            "bindir": str(server.bindir),
            "build_seconds": phases,
            "sizes": sizes(db),
            "migrated_at": migrated.isoformat(),
            "built": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        say(f"built {rows:,} rows in {phases['total']:.1f}s")
        return db
    except BaseException:
        db.close()
        raise


def _vacuum(db: BenchDb, table: str) -> None:
    started = time.perf_counter()
    with db.connect() as conn:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
    say(f"  {time.perf_counter() - started:6.1f}s  VACUUM (ANALYZE) {table}")


def _create_roles(conn: Any) -> None:
    """The roles the benches connect as (trust authentication on 127.0.0.1: no passwords).

    The monitor's gets its grants from docs/monitoring-role.sql (grant_monitor_role); the
    exporter's gets pg_monitor, as postgres_exporter documents; the human's reads every table.
    """
    for role in (MONITOR_ROLE, EXPORTER_ROLE, HUMAN_ROLE):
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    conn.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(EXPORTER_ROLE)))
    conn.execute(
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
            sql.Identifier(HUMAN_ROLE)
        )
    )


def grant_monitor_role(db: BenchDb) -> None:
    """Give the monitor's role exactly what docs/monitoring-role.sql grants (re-runnable)."""
    from monitor.demo.postgres import find_bindir  # noqa: PLC0415

    psql = shutil.which("psql") or str(find_bindir() / "psql")
    script = Path(__file__).resolve().parent.parent / "monitor/assets/docs/monitoring-role.sql"
    with db.connect() as conn:  # a kept database from before this script's grants
        conn.execute(
            sql.SQL("REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM {}").format(
                sql.Identifier(MONITOR_ROLE)
            )
        )
    result = subprocess.run(
        [
            psql,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"role={MONITOR_ROLE}",
            "-v",
            "schema=public",
            "-d",
            db.url(),
            "-f",
            str(script),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{result.stdout}{result.stderr}")


def sizes(db: BenchDb) -> dict[str, Any]:
    """Rows (estimated), heap and index sizes of the two tables, and facts about the data."""
    with db.connect() as conn:
        out: dict[str, Any] = {}
        for table in TABLES:
            row = conn.execute(
                "SELECT reltuples::bigint, pg_size_pretty(pg_table_size(oid)),"
                " pg_size_pretty(pg_indexes_size(oid)) FROM pg_class WHERE oid = %s::regclass",
                (table,),
            ).fetchone()
            assert row is not None
            out[table] = {"reltuples": row[0], "heap": row[1], "indexes": row[2]}
        row = conn.execute(
            'SELECT count(*) FILTER (WHERE "isValid"'
            " AND \"expiresAt\" <= now() AT TIME ZONE 'UTC'),"
            ' count(*) FILTER (WHERE NOT "isValid" AND "expiresAt" > now() AT TIME ZONE \'UTC\')'
            " FROM threads_tokens"
        ).fetchone()
        assert row is not None
        out["stale_valid"], out["wrongly_invalid"] = row
        row = conn.execute(
            'SELECT count(*) FILTER (WHERE "threadsFullName" IS NULL) FROM users'
        ).fetchone()
        assert row is not None
        out["users_missing_threadsFullName"] = row[0]
        out["database"] = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()[0]  # type: ignore[index]
        return out


def state_path(rows: int) -> Path:
    """Where --keep writes the state file of a database of this many rows."""
    return RESULTS / f"db-{rows}.json"


def keep(db: BenchDb) -> Path:
    """Leave the server running after this process exits, and say how to remove it."""
    if db.server is not None:
        atexit.unregister(db.server.stop)
        db.server = None  # close() no longer stops it
    path = state_path(db.rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(db.state, indent=2) + "\n", encoding="utf-8")
    return path


def drop(state_file: Path) -> None:
    """Stop a kept server and remove its directory and state file."""
    state = json.loads(state_file.read_text(encoding="utf-8"))
    pg_ctl = [str(Path(state["bindir"]) / "pg_ctl"), "-D", state["data_dir"], "stop", "-m", "fast"]
    if os.geteuid() == 0:
        pg_ctl = ["runuser", "-u", "postgres", "--", *pg_ctl]
    subprocess.run(pg_ctl, check=False)
    shutil.rmtree(state["dir"], ignore_errors=True)
    state_file.unlink()
    say(f"stopped and removed {state['dir']}")


def main() -> int:
    """Build (and report), optionally keep; or drop a kept database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="users and tokens each")
    parser.add_argument("--batch", type=int, default=500_000, help="rows per INSERT")
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    parser.add_argument("--dir", default=None, help="parent of the server's temporary directory")
    parser.add_argument("--drop", type=Path, help="stop and remove a kept database")
    args = parser.parse_args()
    if args.drop:
        drop(args.drop)
        return 0
    report = Report("make_db", args.rows)
    db = build(args.rows, args.batch, args.dir)
    try:
        report.data["state"] = db.state
        phases = db.state["build_seconds"]
        report.table(
            f"make_db: {args.rows:,} users and {args.rows:,} tokens",
            ["phase", "seconds"],
            [[name, float(value)] for name, value in phases.items()],
        )
        facts = db.state["sizes"]
        report.table(
            "what was built",
            ["table", "reltuples", "heap", "indexes"],
            [[t, facts[t]["reltuples"], facts[t]["heap"], facts[t]["indexes"]] for t in TABLES],
        )
        report.table(
            "data",
            ["fact", "value"],
            [
                ["stale_valid tokens", facts["stale_valid"]],
                ["wrongly_invalid tokens", facts["wrongly_invalid"]],
                ["users missing threadsFullName", facts["users_missing_threadsFullName"]],
                ["database size", facts["database"]],
            ],
        )
        if args.keep:
            path = keep(db)
            report.print(
                f"kept: {db.url()}\nreuse with --db {path}\n"
                f"remove with: .venv/bin/python bench/make_db.py --drop {path}"
            )
    finally:
        report.save()
        db.close()
    say(f"results: {report.path}")
    return 0


# -- for the other scripts: the database their arguments name ---------------------------


def add_db_arguments(parser: Any, default_rows: int = 1_000_000) -> None:
    """--db STATE (a database kept by make_db.py --keep) or --rows N (build a throwaway one)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--db",
        type=Path,
        help="state file written by `make_db.py --keep` (reuse that database)",
    )
    group.add_argument(
        "--rows",
        type=int,
        default=default_rows,
        help=f"build a throwaway database of this many users and tokens (default {default_rows:,})",
    )


def open_db(args: Any) -> BenchDb:
    """The database the arguments name: a kept one, or a new one removed by BenchDb.close()."""
    if args.db is not None:
        state = json.loads(args.db.read_text(encoding="utf-8"))
        db = BenchDb(port=state["port"], rows=state["rows"], state=state)
        grant_monitor_role(db)  # the role script as it is now
        say(f"using the kept database {db.url()} ({db.rows:,} rows, state {args.db})")
        return db
    return build(args.rows)


if __name__ == "__main__":
    raise SystemExit(main())
