"""`rollout-monitor plan` (issue 19): the lock plan of a migration's SQL, as people and pipelines
read it; with a database, who would block each lock now, read without ever waiting on one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from databases import FreshDatabase
from locks import wait_for_lock_waiters

from monitor.demo.postgres import free_port

SAFE = 'SET lock_timeout = \'2s\';\nALTER TABLE "users" ADD COLUMN "bio" TEXT;\n'


def plan(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command, in a clean environment plus env."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "plan", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def document(done: subprocess.CompletedProcess[str], log: bool = False) -> dict[str, Any]:
    """The JSON on stdout; stderr empty (or, with log, JSON log lines only)."""
    if log:
        assert all(json.loads(line)["level"] for line in done.stderr.splitlines())
    else:
        assert done.stderr == ""
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_001_without_a_database_is_risky_and_says_why() -> None:
    done = plan("--format", "json")
    found = document(done)
    assert done.returncode == 1
    assert (found["migration"], found["in_transaction"], found["result"]) == (
        "001_threads_oauth_enhancements",
        True,
        "risky",
    )
    assert len(found["objects"]) == 11
    assert found["blockers"] == []
    first, index = found["statements"][0], found["statements"][5]
    assert (first["index"], first["line"], first["locks"], first["rewrites"]) == (
        1,
        7,
        [{"table": "users", "mode": "AccessExclusiveLock"}],
        [],
    )
    assert first["text"] == 'ALTER TABLE "users" ADD COLUMN "threadsFullName" TEXT'
    assert first["risk"].startswith("ACCESS EXCLUSIVE on users from here to the end of the")
    assert first["advice"].startswith("SET lock_timeout = '2s' at the top of the file")
    assert (index["index"], index["locks"]) == (6, [{"table": "users", "mode": "ShareLock"}])
    assert index["risk"].startswith("runs while users is held in ACCESS EXCLUSIVE (since")
    assert [s["index"] for s in found["statements"]] == list(range(1, 12))


def test_a_migration_with_a_lock_timeout_is_safe(tmp_path: Path) -> None:
    sql = tmp_path / "migration.sql"
    sql.write_text(SAFE)
    done = plan(str(sql))
    assert done.returncode == 0, done.stdout
    assert (
        done.stdout.splitlines()[0] == f"lock plan of 001_threads_oauth_enhancements ({sql}): SAFE"
    )
    assert '  2  line 2: ALTER TABLE "users" ADD COLUMN "bio" TEXT' in done.stdout


def test_sql_that_does_not_parse_is_one_line_naming_where(tmp_path: Path) -> None:
    sql = tmp_path / "migration.sql"
    sql.write_text('-- 002\nALTER TABLE "users" ADD COLUM "x" TEXT;\n')
    done = plan(str(sql))
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f'rollout-monitor plan: {sql}:2:35: syntax error at or near "TEXT"\n',
    )


def test_a_session_in_a_transaction_on_users_is_named_as_a_blocker(
    fresh_db: FreshDatabase,
) -> None:
    holder = fresh_db.conn()
    holder.execute("BEGIN")
    holder.execute('SELECT count(*) FROM "users"')  # ACCESS SHARE until it ends
    pid = holder.info.backend_pid
    time.sleep(0.2)
    done = plan("--format", "json", DATABASE_URL=fresh_db.url)
    found = document(done)
    holder.execute("ROLLBACK")
    assert done.returncode == 1
    blockers = [b for b in found["blockers"] if b["pid"] == pid]
    assert [(b["table"], b["mode"], b["state"], b["granted"]) for b in blockers] == [
        ("users", "AccessShareLock", "idle in transaction", True)
    ]
    assert blockers[0]["transaction_seconds"] >= 0.2
    assert found["database"]["tables"]["users"]["rows"] >= 0
    assert found["database"]["tables"]["users"]["operations_per_second"] is not None


def test_the_plan_never_waits_behind_the_migration_it_plans(fresh_db: FreshDatabase) -> None:
    """A migration holds ACCESS EXCLUSIVE on users and a login waits behind it: the plan reads
    the catalogs, pg_locks and the statistics only, answers at once and names the holder."""
    migration = fresh_db.conn()
    migration.execute("BEGIN")
    migration.execute('ALTER TABLE "users" ADD COLUMN "bio" TEXT')
    waiting = subprocess.Popen(
        ["psql", fresh_db.url, "-c", 'SELECT count(*) FROM "users"'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_lock_waiters(fresh_db.conn(), 1)
        started = time.monotonic()
        done = plan("--format", "json", DATABASE_URL=fresh_db.url)
        took = time.monotonic() - started
    finally:
        migration.execute("ROLLBACK")
        waiting.wait(timeout=10)
    found = document(done)
    holders = {(b["pid"], b["table"], b["mode"]) for b in found["blockers"] if b["granted"]}
    assert (migration.info.backend_pid, "users", "AccessExclusiveLock") in holders
    print(f"plan with a database, users locked: {took:.2f} s")


def test_prisma_migrates_lock_held_elsewhere_is_a_problem(fresh_db: FreshDatabase) -> None:
    other = fresh_db.conn()
    other.execute("SELECT pg_advisory_lock(72707369)")
    try:
        done = plan(DATABASE_URL=fresh_db.url)
    finally:
        other.execute("SELECT pg_advisory_unlock(72707369)")
    assert done.returncode == 1
    pid = other.info.backend_pid
    assert f"Prisma Migrate's lock is held by backend {pid} (idle)" in done.stdout


def test_an_unreachable_database_is_a_problem_without_its_password(tmp_path: Path) -> None:
    sql = tmp_path / "migration.sql"
    sql.write_text(SAFE)
    url = f"postgresql://mon:s3cret-pw@127.0.0.1:{free_port()}/app"
    done = plan(str(sql), "--format", "json", DATABASE_URL=url)
    found = document(done, log=True)
    assert done.returncode == 1
    assert found["result"] == "risky"
    assert found["problems"][0].startswith("could not reach the database:")
    assert "s3cret-pw" not in done.stdout + done.stderr


AVERAGE = """
SELECT s.seq_scan + coalesce(s.idx_scan, 0) + s.n_tup_ins + s.n_tup_upd + s.n_tup_del,
       extract(epoch FROM now() - coalesce(d.stats_reset, pg_postmaster_start_time()))
FROM pg_stat_user_tables AS s, pg_stat_database AS d
WHERE s.relname = 'users' AND d.datname = current_database()
"""


def test_a_tables_traffic_is_its_average_since_the_statistics_reset(
    fresh_db: FreshDatabase,
) -> None:
    """The same counters and clock the plan reads, read just before and just after it."""
    conn = fresh_db.conn()
    for _ in range(30):
        conn.execute('SELECT count(*) FROM "users"')
    time.sleep(1.1)  # each backend flushes its counters at most once a second
    conn.execute("SELECT pg_stat_clear_snapshot()")
    operations, before = conn.execute(AVERAGE).fetchone() or (0, 0)
    found = document(plan("--format", "json", DATABASE_URL=fresh_db.url))
    conn.execute("SELECT pg_stat_clear_snapshot()")
    after_operations, after = conn.execute(AVERAGE).fetchone() or (0, 0)
    rate = found["database"]["tables"]["users"]["operations_per_second"]
    assert operations >= 30
    assert operations / float(after) <= rate <= after_operations / float(before)
