"""`rollout-monitor preflight` against the suite's PostgreSQL, real pg_dump backups and real servers.

The backups are made once per module by the pg_dump of the PostgreSQL install the suite runs
(so pg_restore reads what its own pg_dump wrote), from a database holding the pre-migration
schema, the seed, and enough extra users that the table data outweighs the table of contents:
an archive cut in half then still lists, and only a full read finds it short.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import fixtures
import psycopg
import pytest
from callback_servers import answering_server, refused_url
from databases import FreshDatabase, drop_database
from grants import grant_monitoring_role
from monitoring import make_config, outcome_count, run_once

from monitor.config.schema import Config, PreflightSettings
from monitor.demo.postgres import PostgresServer, free_port
from monitor.output.redact import Redactor
from monitor.preflight.backup import (
    PLAIN_END,
    Backup,
    Tables,
    check_recent,
    check_restorable,
    detect_format,
    find_backup,
    read_tar,
)
from monitor.preflight.checks import backup_checks, run_checks
from monitor.preflight.result import CheckResult
from monitor.preflight.tools import ReadFailed, find_pg_restore

COMMAND = [sys.executable, "-m", "monitor"]
SOURCE_DB = "preflight_source"
EXTRA_USERS = 4000
TABLES = Tables("public", ("users", "threads_tokens"))
PLAIN_WHY = (
    "plain SQL: pg_restore cannot read it (the plan's `pg_restore --list` check fails on it)"
)
HOUR = 3600.0
# Every check, in the order the table lists them.
CHECKS = (
    "database",
    "schema",
    "backup_present",
    "backup_recent",
    "backup_restorable",
    "auth_flows_in_flight",
    "active_sessions",
    "lock_plan",
    "callback",
)
DATABASE_CHECKS = ("database", "schema", "auth_flows_in_flight", "active_sessions", "lock_plan")
BACKUP_CHECKS = ("backup_present", "backup_recent", "backup_restorable")
ONE_STATEMENT_ONLY = "SyntaxError: cannot insert multiple commands into a prepared statement"
# Root reads every file whatever its mode: permission tests run the command as root without the
# capabilities that bypass file modes (util-linux's setpriv). Still root, so it can read the
# checkout and the venv wherever CI put them (nobody may not), but a mode of 000 now applies.
NO_DAC_OVERRIDE = "-dac_override,-dac_read_search"
UNPRIVILEGED = ("setpriv", f"--bounding-set={NO_DAC_OVERRIDE}", f"--inh-caps={NO_DAC_OVERRIDE}")


@dataclass(frozen=True)
class Dumps:
    """Backups of the source database, one per pg_dump format, and the tools that wrote them."""

    directory: Path
    bindir: Path
    version: str

    def path(self, name: str) -> Path:
        """A backup by file name: backup.custom, backup.sql, backup.tar, backup.dir, ..."""
        return self.directory / name

    @property
    def pg_restore(self) -> Path:
        """The pg_restore of the install that made the dumps."""
        return self.bindir / "pg_restore"


def pg_dump(bindir: Path, url: str, out: Path, *options: str) -> None:
    """Run the install's pg_dump; its failure fails the test with its message."""
    done = subprocess.run(
        [str(bindir / "pg_dump"), *options, "--file", str(out), url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def dumps(pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dumps]:
    """One database dumped in every format, plus a dump of the users table alone."""
    pg_server.create_database(SOURCE_DB)
    try:
        with pg_server.connect(SOURCE_DB) as conn:
            fixtures.apply(conn, "schema_before")
            fixtures.apply(conn, "seed")
            conn.execute(
                'INSERT INTO users (id, "threadsUserId", "threadsUsername", "updatedAt")'
                " SELECT 'bulk-' || n, md5(n::text), md5((n * 7)::text), now()"
                " FROM generate_series(1, %s) AS n",
                (EXTRA_USERS,),
            )
        directory = tmp_path_factory.mktemp("dumps")
        bindir, url = pg_server.bindir, pg_server.url(SOURCE_DB)
        pg_dump(bindir, url, directory / "backup.custom", "--format=custom")
        pg_dump(bindir, url, directory / "backup.sql")
        pg_dump(bindir, url, directory / "backup.tar", "--format=tar")
        pg_dump(bindir, url, directory / "backup.dir", "--format=directory")
        pg_dump(bindir, url, directory / "users_only.custom", "--format=custom", "--table=users")
        pg_dump(bindir, url, directory / "users_only.sql", "--table=users")
        with (directory / "backup.sql").open("rb") as plain:
            (directory / "backup.sql.gz").write_bytes(gzip.compress(plain.read()))
        version = tool_version(bindir / "pg_restore")
        yield Dumps(directory, bindir, version)
    finally:
        drop_database(pg_server, SOURCE_DB)


def tool_version(path: Path) -> str:
    """'15.18' from `pg_restore --version` (computed here, not by the code under test)."""
    words = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True)
    return words.stdout.split()[2]


def cut_in_half(source: Path, target: Path) -> Path:
    """A copy of the file's first half, as a copy interrupted midway leaves it."""
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def settings(dumps: Dumps, **values: object) -> PreflightSettings:
    """Pre-flight settings reading with the install's pg_restore."""
    # A bound well above the ~0.1 s these reads take: pg_restore 15 spins forever on some tar
    # archives cut short, and a regression must fail the test, not hang it for the default 10m.
    bounded = {"pg_restore": str(dumps.pg_restore), "backup_timeout": "30s"}
    return PreflightSettings.model_validate({**bounded, **values})


def restorable(dumps: Dumps, path: Path, tables: Tables = TABLES) -> CheckResult:
    """check_restorable on the backup at path."""
    backup, present = find_backup(path)
    assert backup is not None, present.detail
    return check_restorable(backup, settings(dumps), tables)


# --- format detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("backup.custom", "custom"),
        ("backup.sql", "plain"),
        ("backup.sql.gz", "plain.gz"),
        ("backup.tar", "tar"),
        ("backup.dir", "directory"),
    ],
)
def test_format_is_told_by_content(dumps: Dumps, name: str, expected: str) -> None:
    assert detect_format(dumps.path(name)) == expected


def test_format_ignores_the_file_name(dumps: Dumps, tmp_path: Path) -> None:
    """A custom archive named .sql is read as custom; SQL that pg_dump did not write is nothing."""
    renamed = tmp_path / "looks_plain.sql"
    renamed.write_bytes(dumps.path("backup.custom").read_bytes())
    handwritten = tmp_path / "handwritten.sql"
    handwritten.write_text("CREATE TABLE users (id text);\n")
    assert (detect_format(renamed), detect_format(handwritten)) == ("custom", None)


# --- readable to the end ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["backup.custom", "backup.tar", "backup.dir"])
def test_archive_backups_are_read_to_the_end_by_pg_restore(dumps: Dumps, name: str) -> None:
    result = restorable(dumps, dumps.path(name))
    assert result.passed, result.detail
    # 3 tables, their 3 data entries, 3 primary keys, 2 unique indexes, 1 foreign key
    assert result.detail == (
        f"pg_restore {dumps.version} read all of it (12 entries, dumped by pg_dump "
        f"{dumps.version}); tables public.users, public.threads_tokens present"
    )
    assert result.observed == {
        "reader": f"pg_restore {dumps.version}",
        "entries": 12,
        "dumped_by": dumps.version,
    }


@pytest.mark.parametrize("name", ["backup.sql", "backup.sql.gz"])
def test_plain_backup_is_read_without_pg_restore(dumps: Dumps, name: str) -> None:
    result = restorable(dumps, dumps.path(name))
    assert result.passed, result.detail
    assert result.detail == (
        f"{PLAIN_WHY}; read to the end: pg_dump {dumps.version} header, CREATE TABLE "
        "public.users, public.threads_tokens, end marker"
    )


def test_the_plans_pg_restore_list_rejects_a_good_plain_dump(dumps: Dumps) -> None:
    """Why plain dumps get their own reader: the plan's integrity check fails on them."""
    plan = subprocess.run(
        [str(dumps.pg_restore), "--list", str(dumps.path("backup.sql"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert plan.returncode == 1
    assert "input file appears to be a text format dump. Please use psql." in plan.stderr


def test_custom_backup_cut_in_half_lists_but_fails_the_full_read(
    dumps: Dumps, tmp_path: Path
) -> None:
    half = cut_in_half(dumps.path("backup.custom"), tmp_path / "half.custom")
    listing = subprocess.run(
        [str(dumps.pg_restore), "--list", str(half)], capture_output=True, check=False
    )
    assert listing.returncode == 0, "the cut should leave the table of contents whole"
    result = restorable(dumps, half)
    assert not result.passed
    assert result.detail == (
        "pg_restore --file=/dev/null failed: pg_restore: error: could not read from input "
        "file: end of file"
    )


def test_tar_backup_cut_in_half_fails(dumps: Dumps, tmp_path: Path) -> None:
    half = cut_in_half(dumps.path("backup.tar"), tmp_path / "half.tar")
    result = restorable(dumps, half)
    assert (result.passed, result.detail) == (
        False,
        "tar archive cut short or corrupt: unexpected end of data",
    )


def test_directory_backup_missing_a_data_file_fails(dumps: Dumps, tmp_path: Path) -> None:
    copy = tmp_path / "backup.dir"
    copy.mkdir()
    data_files = sorted(p for p in dumps.path("backup.dir").iterdir() if p.name != "toc.dat")
    for path in [dumps.path("backup.dir") / "toc.dat", *data_files[1:]]:
        (copy / path.name).write_bytes(path.read_bytes())
    result = restorable(dumps, copy)
    assert not result.passed
    missing = copy / data_files[0].name.removesuffix(".gz")
    assert result.detail == (
        f'pg_restore --file=/dev/null failed: pg_restore: error: could not open input file "'
        f'{missing}": No such file or directory'
    )


def test_plain_backup_cut_in_half_fails(dumps: Dumps, tmp_path: Path) -> None:
    half = cut_in_half(dumps.path("backup.sql"), tmp_path / "half.sql")
    result = restorable(dumps, half)
    assert (result.passed, result.detail) == (
        False,
        f"{PLAIN_WHY}; cut short: no '{PLAIN_END}' at its end",
    )


def test_gzipped_plain_backup_cut_in_half_fails(dumps: Dumps, tmp_path: Path) -> None:
    half = cut_in_half(dumps.path("backup.sql.gz"), tmp_path / "half.sql.gz")
    result = restorable(dumps, half)
    assert (result.passed, result.detail) == (
        False,
        f"{PLAIN_WHY}; cannot read it to the end: Compressed file ended before the "
        "end-of-stream marker was reached",
    )


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("users_only.custom", "the backup has no table public.threads_tokens"),
        ("users_only.sql", f"{PLAIN_WHY}; no CREATE TABLE public.threads_tokens"),
    ],
)
def test_backup_without_the_token_table_fails(dumps: Dumps, name: str, detail: str) -> None:
    result = restorable(dumps, dumps.path(name))
    assert (result.passed, result.detail) == (False, detail)


def test_tables_in_another_schema_are_looked_for_there(dumps: Dumps) -> None:
    result = restorable(dumps, dumps.path("backup.custom"), Tables("app", TABLES.names))
    assert (result.passed, result.detail) == (
        False,
        "the backup has no table app.users, app.threads_tokens",
    )


def test_missing_pg_restore_fails_the_check(dumps: Dumps, tmp_path: Path) -> None:
    backup, present = find_backup(dumps.path("backup.custom"))
    assert backup is not None, present.detail
    absent = PreflightSettings(pg_restore=tmp_path / "pg_restore")
    result = check_restorable(backup, absent, TABLES)
    assert (result.passed, result.detail) == (
        False,
        f"preflight.pg_restore: {tmp_path / 'pg_restore'} is not an executable file",
    )


# --- present and recent -------------------------------------------------------------------------


def test_missing_backup_fails_every_backup_check(tmp_path: Path) -> None:
    missing = f"{tmp_path / 'nope.dump'}: no such file or directory"
    config = make_config("postgresql://db/app", preflight={"backup": str(tmp_path / "nope.dump")})
    results = backup_checks(config, config.preflight, time.time())
    assert [(r.check, r.passed, r.detail) for r in results] == [
        ("backup_present", False, missing),
        ("backup_recent", False, f"not checked: {missing}"),
        ("backup_restorable", False, f"not checked: {missing}"),
    ]


def test_no_backup_configured_fails() -> None:
    assert find_backup(None)[1].detail == "no backup given: use --backup PATH or preflight.backup"


def test_a_file_that_is_not_a_backup_fails(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("backup taken yesterday\n")
    backup, present = find_backup(notes)
    assert (backup, present.passed, present.detail) == (
        None,
        False,
        f"{notes}: not a pg_dump backup (neither custom, tar, directory nor plain SQL)",
    )


def test_a_directory_gives_its_newest_backup(dumps: Dumps, tmp_path: Path) -> None:
    now = time.time()
    for name, age in (("backup.custom", 2 * HOUR), ("backup.sql", HOUR)):
        copy = tmp_path / name
        copy.write_bytes(dumps.path(name).read_bytes())
        os.utime(copy, (now - age, now - age))
    (tmp_path / "README.txt").write_text("newest file, but not a backup\n")
    backup, present = find_backup(tmp_path)
    assert backup is not None
    assert (backup.path, backup.format) == (tmp_path / "backup.sql", "plain")
    assert present.detail == f"{tmp_path / 'backup.sql'} (plain format; newest of 2 in {tmp_path})"


def test_a_directory_without_backups_fails(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("nothing here\n")
    assert find_backup(tmp_path)[1].detail == f"{tmp_path}: no pg_dump backup among its 1 entries"


def test_backup_older_than_the_max_age_fails(tmp_path: Path) -> None:
    now = 1_790_000_000.0  # 2026-09-21T14:13:20Z
    backup = Backup(tmp_path / "b.custom", "custom", now - 25 * HOUR)
    stale = check_recent(backup, 24 * HOUR, now)
    assert (stale.passed, stale.detail) == (
        False,
        "written 25h ago (2026-09-20T13:13:20Z), more than 24h",
    )
    fresh = check_recent(backup, 48 * HOUR, now)
    assert (fresh.passed, fresh.detail) == (
        True,
        "written 25h ago (2026-09-20T13:13:20Z), within 48h",
    )


# --- the database checks ------------------------------------------------------------------------


def preflight_config(url: str, callback_url: str, **preflight: object) -> Config:
    """A Config for the test database, the callback at callback_url, and preflight settings."""
    return make_config(url, checks={"callback": {"url": callback_url}}, preflight=preflight)


def results_by_check(config: Config) -> dict[str, CheckResult]:
    """Every result of one in-process pre-flight run, by check name."""
    results = run_checks(config, config.preflight, Redactor())
    assert [r.check for r in results] == list(CHECKS)
    return {r.check: r for r in results}


def database_results(fresh_db: FreshDatabase, **preflight: object) -> dict[str, CheckResult]:
    """The results of a run against fresh_db with no backup and the callback refused."""
    return results_by_check(preflight_config(fresh_db.url, refused_url(), **preflight))


def test_pre_migration_database_passes_schema_and_reports_the_server(
    fresh_db: FreshDatabase,
) -> None:
    results = database_results(fresh_db)
    version = fresh_db.conn().execute("SHOW server_version").fetchone()
    assert version is not None
    assert results["database"].detail == (
        f"PostgreSQL {version[0].split()[0]}, database {fresh_db.name} as postgres"
    )
    schema = results["schema"]
    assert schema.passed, schema.detail
    assert schema.detail == (
        "pending: none of the migration's 11 objects exist; users, threads_tokens have the "
        "columns it builds on"
    )


def test_applied_migration_fails_schema(fresh_db: FreshDatabase) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001")
    schema = database_results(fresh_db)["schema"]
    assert (schema.passed, schema.detail) == (
        False,
        "applied: all 11 of the migration's objects exist already",
    )
    assert set(schema.observed["objects_present"]) == {
        name for _, name in fixtures.MIGRATION_001_OBJECTS
    }


def test_partial_migration_fails_schema_naming_what_exists(fresh_db: FreshDatabase) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001_partial")
    schema = database_results(fresh_db)["schema"]
    assert not schema.passed
    assert schema.detail.startswith("partial: 3 of 11 objects exist: ")
    named = schema.detail.removeprefix("partial: 3 of 11 objects exist: ").split(", ")
    assert set(named) == {name for _, name in fixtures.PARTIAL_001_OBJECTS}


def test_rolled_back_migration_fails_schema(fresh_db: FreshDatabase) -> None:
    conn = fresh_db.conn()
    for name in ("migration_001", "prisma_record_001", "rollback_001"):
        fixtures.apply(conn, name)
    schema = database_results(fresh_db)["schema"]
    assert (schema.passed, schema.detail) == (
        False,
        "rolled_back: _prisma_migrations records it finished, and none of its objects exist",
    )


def test_missing_column_the_migration_builds_on_fails_schema(fresh_db: FreshDatabase) -> None:
    fresh_db.conn().execute('ALTER TABLE users DROP COLUMN "threadsUsername"')
    schema = database_results(fresh_db)["schema"]
    assert (schema.passed, schema.detail) == (False, "pending, but missing: users.threadsUsername")


def test_active_sessions_count_signed_in_users(fresh_db: FreshDatabase) -> None:
    """Users holding an unexpired token (expiresAt is UTC; the server's TimeZone is UTC+14)."""
    sessions = database_results(fresh_db)["active_sessions"]
    assert (sessions.passed, sessions.detail) == (
        True,
        f"{fixtures.TOKENS_UNEXPIRED} active session(s)",
    )
    capped = database_results(fresh_db, active_sessions_max=5)["active_sessions"]
    assert (capped.passed, capped.detail) == (False, "6 active session(s) (allowed: 5)")


def test_a_transaction_open_on_the_users_table_is_an_auth_flow_in_flight(
    fresh_db: FreshDatabase,
) -> None:
    idle = database_results(fresh_db)["auth_flows_in_flight"]
    assert (idle.passed, idle.observed["count"]) == (True, 0)
    with psycopg.connect(fresh_db.url, application_name="app") as app:
        app.execute("SELECT id FROM users ORDER BY id LIMIT 1 FOR UPDATE").fetchall()
        busy = database_results(fresh_db)["auth_flows_in_flight"]
        allowed = database_results(fresh_db, in_flight_max=1)["auth_flows_in_flight"]
    assert (busy.passed, busy.detail) == (
        False,
        "1 session(s) with a transaction open on the users or token table (allowed: 0)",
    )
    assert allowed.passed


def test_a_client_calling_itself_rollout_monitor_is_not_taken_for_the_monitor(
    fresh_db: FreshDatabase,
) -> None:
    """Finding 6: an UPDATE users in an open transaction passed once named like the monitor.
    The monitor knows its own sessions by backend PID; the name covers only another monitor
    that reads, briefly."""
    with psycopg.connect(fresh_db.url, application_name="rollout-monitor") as impostor:
        impostor.execute('UPDATE users SET "threadsUserId" = "threadsUserId" WHERE false')
        impostor.execute("SELECT id FROM users ORDER BY id LIMIT 1 FOR UPDATE").fetchall()
        busy = database_results(fresh_db)["auth_flows_in_flight"]
    assert (busy.passed, busy.observed["count"]) == (False, 1)
    with psycopg.connect(fresh_db.url, application_name="rollout-monitor") as reader:
        reader.read_only = True
        reader.execute("SELECT count(*) FROM users").fetchall()  # another monitor's read
        quiet = database_results(fresh_db)["auth_flows_in_flight"]
    assert (quiet.passed, quiet.observed["count"]) == (True, 0)


def test_configured_queries_replace_the_built_in_ones(fresh_db: FreshDatabase) -> None:
    results = database_results(
        fresh_db,
        in_flight_query="SELECT 3",
        active_sessions_query="SELECT count(*)::numeric FROM users",
    )
    assert results["auth_flows_in_flight"].observed == {"count": 3, "max": 0}
    assert results["active_sessions"].observed == {
        "count": fixtures.USERS_TOTAL,
        "max": None,
    }


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            "SELECT 1 AS a, 2 AS b",
            "NotANumber: preflight.in_flight_query: expected one row with one column, got 2 columns",
        ),
        (
            "SELECT n FROM generate_series(1, 2) AS n",
            "NotANumber: preflight.in_flight_query: expected one row with one column, got 2 rows",
        ),
        (
            "SELECT 'zero'",
            "NotANumber: preflight.in_flight_query: expected a whole number, got 'zero'",
        ),
        (
            "SELECT 1.5",
            "NotANumber: preflight.in_flight_query: expected a whole number, got Decimal('1.5')",
        ),
        ("SELECT nope", 'UndefinedColumn: column "nope" does not exist'),
        (
            "DELETE FROM users",
            "ReadOnlySqlTransaction: cannot execute DELETE in a read-only transaction",
        ),
    ],
)
def test_a_bad_configured_query_fails_its_check_only(
    fresh_db: FreshDatabase, query: str, detail: str
) -> None:
    results = database_results(fresh_db, in_flight_query=query)
    flights = results["auth_flows_in_flight"]
    assert (flights.passed, flights.detail) == (False, detail)
    assert results["active_sessions"].passed
    count = fresh_db.conn().execute("SELECT count(*) FROM users").fetchone()
    assert count == (fixtures.USERS_TOTAL,)


@pytest.mark.parametrize(
    ("key", "check"),
    [("in_flight_query", "auth_flows_in_flight"), ("active_sessions_query", "active_sessions")],
)
def test_a_configured_query_cannot_commit_its_way_out_of_read_only(
    fresh_db: FreshDatabase, key: str, check: str
) -> None:
    """One statement per query: a COMMIT in the middle would end the read-only transaction."""
    results = database_results(fresh_db, **{key: "SELECT 1; COMMIT; DELETE FROM users"})
    assert (results[check].passed, results[check].detail) == (False, ONE_STATEMENT_ONLY)
    count = fresh_db.conn().execute("SELECT count(*) FROM users").fetchone()
    assert count == (fixtures.USERS_TOTAL,)


def test_a_configured_sql_check_cannot_commit_its_way_out_of_read_only(
    fresh_db: FreshDatabase,
) -> None:
    """The daemon's checks.sql[] run through the same session as the pre-flight queries."""
    sneaky = {
        "name": "sneaky",
        "sql": "SELECT 1 AS n; COMMIT; DELETE FROM users",
        "metrics": [{"name": "rollout_sneaky", "value": "n"}],
    }
    monitor, ok = run_once(make_config(fresh_db.url, checks={"sql": [sneaky]}))
    assert (ok, outcome_count(monitor, "sneaky", "failure")) == (False, 1)
    count = fresh_db.conn().execute("SELECT count(*) FROM users").fetchone()
    assert count == (fixtures.USERS_TOTAL,)


def test_callback_answering_passes_and_refused_fails(fresh_db: FreshDatabase) -> None:
    with answering_server(401) as app:
        up = results_by_check(preflight_config(fresh_db.url, app.url))["callback"]
        assert [r.method for r in app.requests] == ["POST"]
    assert up.passed
    assert up.detail.startswith(f"POST {app.url}: HTTP 401 in ")
    down_url = refused_url()
    down = results_by_check(preflight_config(fresh_db.url, down_url))["callback"]
    assert not down.passed
    assert down.detail.startswith(f"POST {down_url}: connection_error (ConnectError: ")


def test_callback_answering_500_fails(fresh_db: FreshDatabase) -> None:
    with answering_server(500) as app:
        result = results_by_check(preflight_config(fresh_db.url, app.url))["callback"]
    assert (result.passed, result.observed) == (False, {"outcome": "server_error", "status": 500})
    assert result.detail.startswith(f"POST {app.url}: server_error (HTTP 500) after ")


def test_unreachable_database_fails_its_checks_and_the_others_still_run(
    dumps: Dumps, pg_server: PostgresServer
) -> None:
    port = free_port()
    dead = f"postgresql://postgres@127.0.0.1:{port}/app"
    config = make_config(
        dead,
        database={"url": dead, "acquire_timeout": "1s", "connect_timeout": "1s"},
        checks={"callback": {"url": refused_url()}},
        preflight={"backup": str(dumps.path("backup.custom")), "pg_restore": str(dumps.pg_restore)},
    )
    results = results_by_check(config)
    assert results["database"].detail == (
        "no database connection within database.acquire_timeout: connection failed: connection "
        f'to server at "127.0.0.1", port {port} failed: '
        "Connection refused"
    )
    for name in ("schema", "auth_flows_in_flight", "active_sessions"):
        assert results[name].detail == "not checked: the database is not reachable (see database)"
    assert [
        results[n].passed for n in ("backup_present", "backup_recent", "backup_restorable")
    ] == [
        True,
        True,
        True,
    ]
    assert not results["callback"].passed


# --- the command line ---------------------------------------------------------------------------


def rollout(
    *args: str, env: dict[str, str] | None = None, as_user: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run rollout-monitor preflight in a clean environment (as_user: a setpriv prefix)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    return subprocess.run(
        [*as_user, *COMMAND, "preflight", *args],
        check=False,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def config_file(tmp_path: Path, dumps: Dumps, extra: str = "") -> Path:
    """A config file naming the install's pg_restore."""
    path = tmp_path / "rollout.yaml"
    path.write_text(f"preflight:\n  pg_restore: {dumps.pg_restore}\n{extra}")
    return path


def test_all_checks_pass_exit_0_with_the_table(
    fresh_db: FreshDatabase, dumps: Dumps, tmp_path: Path
) -> None:
    with answering_server(401) as app:
        result = rollout(
            "--database-url",
            fresh_db.url,
            "--callback-url",
            app.url,
            "--config",
            str(config_file(tmp_path, dumps)),
            "--backup",
            str(dumps.path("backup.custom")),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "CHECK                 RESULT  DETAIL"
    assert [line.split()[:2] for line in lines[1:10]] == [[name, "pass"] for name in CHECKS]
    assert lines[-1] == "preflight: pass (all 9 checks passed)"


def test_json_output_and_exit_1_when_a_check_fails(
    fresh_db: FreshDatabase, dumps: Dumps, tmp_path: Path
) -> None:
    stale = tmp_path / "old.custom"
    stale.write_bytes(dumps.path("backup.custom").read_bytes())
    os.utime(stale, (time.time() - 3 * HOUR, time.time() - 3 * HOUR))
    with answering_server(401) as app:
        result = rollout(
            *("--database-url", fresh_db.url, "--callback-url", app.url),
            *("--config", str(config_file(tmp_path, dumps)), "--backup", str(stale)),
            *("--backup-max-age", "2h", "--format", "json"),
        )
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert (document["schema_version"], document["result"], document["exit_code"]) == (
        1,
        "fail",
        1,
    )
    assert [(c["check"], c["result"]) for c in document["checks"]] == [
        (name, "fail" if name == "backup_recent" else "pass") for name in CHECKS
    ]
    recent = document["checks"][3]
    assert recent["observed"]["max_age_seconds"] == 2 * HOUR
    assert recent["detail"].startswith("written 3h ago (")
    assert recent["detail"].endswith("), more than 2h")


def test_backup_from_the_config_file(fresh_db: FreshDatabase, dumps: Dumps, tmp_path: Path) -> None:
    extra = f"  backup: {dumps.path('backup.sql')}\n"
    result = rollout(
        *("--database-url", fresh_db.url, "--callback-url", refused_url()),
        *("--config", str(config_file(tmp_path, dumps, extra)), "--format", "json"),
    )
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["backup_present"]["observed"] == {
        "path": str(dumps.path("backup.sql")),
        "format": "plain",
    }
    assert checks["backup_restorable"]["result"] == "pass"


def test_the_password_never_shows(dumps: Dumps, tmp_path: Path) -> None:
    secret = "Pf-s3cret-pw"
    dead = f"postgresql://mon:{secret}@127.0.0.1:{free_port()}/app"
    result = rollout(
        *("--database-url", dead, "--callback-url", refused_url()),
        *("--config", str(config_file(tmp_path, dumps, "database:\n  acquire_timeout: 1s\n"))),
    )
    assert result.returncode == 1
    assert "database              fail" in result.stdout
    assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--backup-max-age", "soon"],
            "argument --backup-max-age: invalid duration 'soon': expected a number with a unit "
            "ms, s, m, h, d or w, e.g. 15s or 1h30m",
        ),
        (
            ["--backup-max-age", "0s"],
            "argument --backup-max-age: invalid duration '0s': must be longer than 0s",
        ),
        (["--format", "xml"], "argument --format: invalid choice: 'xml' (choose from"),
        (["--backup"], "argument --backup: expected one argument"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = rollout("--database-url", "postgresql://db/app", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"rollout-monitor preflight: {message}")


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("preflight:\n  in_flight_max: -1\n", "preflight.in_flight_max: must be at least 0"),
        (
            "preflight:\n  backup_max_age: 1 day\n",
            "preflight.backup_max_age: invalid duration '1 day'",
        ),
        ("preflight:\n  in_flight_query: ''\n", "preflight.in_flight_query: must not be empty"),
        ("preflight:\n  backups: /tmp\n", "preflight.backups: unknown key"),
    ],
)
def test_bad_preflight_config_exits_2(tmp_path: Path, yaml: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml)
    result = rollout("--database-url", "postgresql://db/app", "--config", str(path))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"{path}: {message}")
    assert len(result.stderr.splitlines()) == 1


def test_without_configuration_the_newest_installed_pg_restore_reads_it(dumps: Dumps) -> None:
    """PATH and /usr/lib/postgresql/*/bin are searched; the suite's install is among them."""
    tool = find_pg_restore(None)
    assert tool.key >= tuple(int(part) for part in dumps.version.split("."))
    backup, present = find_backup(dumps.path("backup.custom"))
    assert backup is not None, present.detail
    result = check_restorable(
        backup, PreflightSettings.model_validate({"backup_timeout": "30s"}), TABLES
    )
    assert result.passed, result.detail
    assert result.observed["reader"] == f"pg_restore {tool.version}"


def test_a_folder_of_dump_directories_gives_the_newest(dumps: Dumps, tmp_path: Path) -> None:
    now = time.time()
    for name, age in (("monday", 2 * HOUR), ("tuesday", HOUR)):
        copy = tmp_path / name
        copy.mkdir()
        for part in dumps.path("backup.dir").iterdir():
            (copy / part.name).write_bytes(part.read_bytes())
        os.utime(copy / "toc.dat", (now - age, now - age))
    backup, present = find_backup(tmp_path)
    assert backup is not None
    assert (backup.path, backup.format) == (tmp_path / "tuesday", "directory")
    assert present.detail == f"{tmp_path / 'tuesday'} (directory format; newest of 2 in {tmp_path})"
    assert check_recent(backup, 24 * HOUR, now).observed["age_seconds"] == HOUR


def test_the_least_privilege_monitoring_role_runs_the_database_checks(
    fresh_db: FreshDatabase,
) -> None:
    """docs/monitoring-role.sql grants enough: another role's open transaction is seen too."""
    reader = f"{fresh_db.name}_preflight"  # roles are the server's, shared by every test database
    fresh_db.conn().execute(f"CREATE ROLE {reader} LOGIN PASSWORD 'reader-pw-123'")
    grant_monitoring_role(fresh_db.url, reader)
    url = fresh_db.server.url(fresh_db.name, user=reader, password="reader-pw-123")
    with psycopg.connect(fresh_db.url, application_name="threads-app") as app:
        app.execute('SELECT "expiresAt" FROM threads_tokens LIMIT 1').fetchall()
        pid = app.info.backend_pid
        results = results_by_check(preflight_config(url, refused_url()))
    assert [results[name].passed for name in DATABASE_CHECKS] == [True, True, False, True, False]
    assert results["lock_plan"].detail.startswith(f"backend {pid} (idle in transaction, ")
    assert results["lock_plan"].detail.endswith(
        "holds ACCESS SHARE on threads_tokens: statement 3 (line 11) would wait for it"
    )
    assert results["auth_flows_in_flight"].observed["count"] == 1
    assert results["active_sessions"].observed["count"] == fixtures.TOKENS_UNEXPIRED


def test_archive_from_a_newer_pg_dump_than_the_pg_restore_fails(
    dumps: Dumps, tmp_path: Path
) -> None:
    """The header's version strings rewritten in place, as a newer pg_dump would have left them."""
    major, rest = dumps.version.split(".", 1)
    newer = f"{'9' * len(major)}.{rest}"  # same length: the header's strings are length-prefixed
    assert "9" * len(major) != major
    data = dumps.path("backup.custom").read_bytes()
    assert data.count(f"{dumps.version} (".encode()) == 2  # the server's version, then pg_dump's
    patched = tmp_path / "newer.custom"
    patched.write_bytes(data.replace(f"{dumps.version} (".encode(), f"{newer} (".encode()))
    result = restorable(dumps, patched)
    assert (result.passed, result.detail) == (
        False,
        f"pg_restore {dumps.version} is older than the pg_dump {newer} that wrote it: set "
        "preflight.pg_restore to a newer one",
    )


# --- backups the monitor may not read -----------------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory of the test's own, removed afterwards whatever modes the test left in it."""
    path = Path(tempfile.mkdtemp(prefix="preflight-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        unlock(path)
        shutil.rmtree(path)


def unlock(path: Path) -> None:
    """Give back the permissions a test took away, so that the tree can be removed."""
    path.chmod(0o755 if path.is_dir() else 0o644)
    if path.is_dir():
        for child in path.iterdir():
            unlock(child)


def unprivileged() -> tuple[str, ...]:
    """The prefix running a command that file modes apply to (root's capabilities bypass them)."""
    return UNPRIVILEGED if os.geteuid() == 0 else ()


def copy_dump(dumps: Dumps, target: Path, age: float = HOUR) -> Path:
    """A copy of the custom-format backup, written age seconds ago."""
    target.write_bytes(dumps.path("backup.custom").read_bytes())
    os.utime(target, (time.time() - age, time.time() - age))
    return target


def folder_mode_000(dumps: Dumps, base: Path) -> tuple[Path, str]:
    folder = base / "backups"
    folder.mkdir()
    copy_dump(dumps, folder / "b.custom")
    folder.chmod(0)
    return folder, f"{folder}: permission denied"


def folder_without_execute(dumps: Dumps, base: Path) -> tuple[Path, str]:
    folder = base / "backups"
    folder.mkdir()
    copy_dump(dumps, folder / "b.custom")
    folder.chmod(0o644)
    return folder, f"{folder}: permission denied"


def file_in_folder_without_execute(dumps: Dumps, base: Path) -> tuple[Path, str]:
    folder = base / "backups"
    folder.mkdir()
    dump = copy_dump(dumps, folder / "b.custom")
    folder.chmod(0o644)
    return dump, f"{dump}: permission denied"


def file_mode_000(dumps: Dumps, base: Path) -> tuple[Path, str]:
    dump = copy_dump(dumps, base / "b.custom")
    dump.chmod(0)
    return dump, f"{dump}: permission denied"


def newest_in_folder_mode_000(dumps: Dumps, base: Path) -> tuple[Path, str]:
    older = copy_dump(dumps, base / "monday.custom", age=2 * HOUR)
    newest = copy_dump(dumps, base / "tuesday.custom", age=HOUR)
    newest.chmod(0)
    return base, f"{newest}: permission denied (newer than {older}, the newest backup readable)"


@pytest.mark.parametrize(
    "layout",
    [
        folder_mode_000,
        folder_without_execute,
        file_in_folder_without_execute,
        file_mode_000,
        newest_in_folder_mode_000,
    ],
)
def test_an_unreadable_backup_fails_the_backup_checks_with_one_line(
    fresh_db: FreshDatabase,
    dumps: Dumps,
    shared_dir: Path,
    layout: Callable[[Dumps, Path], tuple[Path, str]],
) -> None:
    """Exit 1 with the table, no traceback, and never an older dump read in the newest's place."""
    config = config_file(shared_dir, dumps)
    backup, detail = layout(dumps, shared_dir)
    result = rollout(
        *("--database-url", fresh_db.url, "--callback-url", refused_url()),
        *("--config", str(config), "--backup", str(backup), "--format", "json"),
        as_user=unprivileged(),
    )
    assert (result.returncode, "Traceback" in result.stderr) == (1, False), result.stderr
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    assert [(checks[name]["result"], checks[name]["detail"]) for name in BACKUP_CHECKS] == [
        ("fail", detail),
        ("fail", f"not checked: {detail}"),
        ("fail", f"not checked: {detail}"),
    ]
    assert [checks[name]["result"] for name in DATABASE_CHECKS] == ["pass"] * 5


def test_an_unreadable_file_older_than_the_newest_backup_is_passed_over(
    fresh_db: FreshDatabase, dumps: Dumps, shared_dir: Path
) -> None:
    copy_dump(dumps, shared_dir / "monday.custom", age=2 * HOUR).chmod(0)
    newest = copy_dump(dumps, shared_dir / "tuesday.custom", age=HOUR)
    result = rollout(
        *("--database-url", fresh_db.url, "--callback-url", refused_url()),
        *("--config", str(config_file(shared_dir, dumps)), "--backup", str(shared_dir)),
        *("--format", "json"),
        as_user=unprivileged(),
    )
    checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["backup_present"]["detail"] == (
        f"{newest} (custom format; newest of 1 in {shared_dir})"
    )
    assert [checks[name]["result"] for name in BACKUP_CHECKS] == ["pass"] * 3


def test_a_surprise_in_the_backup_checks_fails_them_and_the_others_still_run(
    fresh_db: FreshDatabase,
) -> None:
    """A NUL in a configured path raises ValueError, not OSError: still no traceback."""
    results = database_results(fresh_db, backup="/var/backups/app\x00.dump")
    assert [(results[name].passed, results[name].detail) for name in BACKUP_CHECKS] == [
        (False, "ValueError: embedded null byte")
    ] * 3
    assert [results[name].passed for name in DATABASE_CHECKS] == [True] * 5


def test_a_tar_read_stops_at_the_deadline(dumps: Dumps) -> None:
    """preflight.backup_timeout bounds the member-by-member read too, not only pg_restore."""
    with pytest.raises(ReadFailed) as stopped:
        read_tar(dumps.path("backup.tar"), time.monotonic() - 1)
    assert str(stopped.value) == "not read to the end within preflight.backup_timeout"
    read_tar(dumps.path("backup.tar"), time.monotonic() + 30)


def test_the_lock_plan_passes_when_nothing_would_block_the_migration(
    fresh_db: FreshDatabase,
) -> None:
    result = database_results(fresh_db)["lock_plan"]
    assert (result.passed, result.detail) == (
        True,
        "no session would block its 11 statements' locks on threads_tokens, users, and"
        " Prisma's lock is free; 2 risky in the file itself (rollout-monitor plan)",
    )
    assert result.observed == {
        "result": "risky",
        "statements": 11,
        "risky_statements": 2,
        "blockers": [],
        "prisma_lock_pid": None,
    }


def test_a_session_that_would_block_the_migration_fails_the_lock_plan_by_pid(
    fresh_db: FreshDatabase,
) -> None:
    """A transaction that read users a while ago: 001's first ALTER TABLE would queue."""
    holder = fresh_db.conn()
    holder.execute("BEGIN")
    holder.execute("SELECT count(*) FROM users")
    prisma = fresh_db.conn()
    prisma.execute("SELECT pg_advisory_lock(72707369)")
    result = database_results(fresh_db)["lock_plan"]
    holder.execute("ROLLBACK")
    pid, other = holder.info.backend_pid, prisma.info.backend_pid
    assert not result.passed
    assert result.detail.startswith(
        f"backend {other} (idle) holds Prisma Migrate's lock: another `prisma migrate` is running; "
    )
    assert f"; backend {pid} (idle in transaction, transaction " in result.detail
    assert result.detail.endswith(
        "holds ACCESS SHARE on users: statement 1 (line 7) would wait for it"
    )
    assert result.observed["prisma_lock_pid"] == other
    assert [
        (b["pid"], b["table"], b["mode"], b["statement"]) for b in result.observed["blockers"]
    ] == [(pid, "users", "AccessShareLock", 1)]
