"""database.password_file: the password comes from a file, is never shown, and is read again on
SIGHUP. Against a role the server really asks a password of (scram-sha-256 in pg_hba.conf)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from callback_servers import answering_server
from daemons import daemon, settle_sessions
from databases import FreshDatabase

COMMAND = [sys.executable, "-m", "monitor"]
PASSWORD = "Fi1e-s3cret-pw"
NEW_PASSWORD = "N3w-f1le-s3cret"


@dataclass(frozen=True)
class PasswordRole:
    """A login role that must give its password, and the URL without it."""

    name: str
    url: str


@pytest.fixture
def password_role(fresh_db: FreshDatabase) -> Iterator[PasswordRole]:
    """A role checked by scram-sha-256 over TCP (a pg_hba.conf line put first, then removed)."""
    name = f"pw_{fresh_db.name}"
    admin = fresh_db.conn()
    admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
    admin.execute(f"GRANT pg_read_all_stats TO {name}")
    admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
    row = admin.execute("SHOW hba_file").fetchone()
    assert row is not None
    hba = Path(row[0])
    original = hba.read_text()
    rule = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
    hba.write_text(rule + original)
    admin.execute("SELECT pg_reload_conf()")
    try:
        yield PasswordRole(name, fresh_db.server.url(fresh_db.name, user=name))
    finally:
        hba.write_text(hba.read_text().replace(rule, ""))
        admin.execute("SELECT pg_reload_conf()")
        admin.execute(f"DROP OWNED BY {name}")
        admin.execute(f"DROP ROLE {name}")


def rollout(*args: str) -> subprocess.CompletedProcess[str]:
    """rollout-monitor with no ROLLOUT_ or DATABASE_ variables from the test's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    return subprocess.run(
        [*COMMAND, *args], check=False, env=env, capture_output=True, text=True, timeout=60
    )


def test_once_connects_with_the_password_from_the_file_and_never_shows_it(
    password_role: PasswordRole, tmp_path: Path
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")  # as `echo` leaves it
    with answering_server(401) as app:
        without = rollout("once", "--database-url", password_role.url, "--callback-url", app.url)
        result = rollout(
            *("once", "--database-url", password_role.url, "--callback-url", app.url),
            *("--database-password-file", str(password_file)),
        )
    assert "rollout_postgres_up 0.0" in without.stdout  # the server does ask for a password
    assert "no password supplied" in without.stderr
    assert result.returncode == 0, result.stderr
    assert "rollout_postgres_up 1.0" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_the_files_password_is_masked_in_logs(password_role: PasswordRole, tmp_path: Path) -> None:
    """A query error quoting the password (here, a failed cast of it) is logged masked."""
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    config = tmp_path / "config.yaml"
    config.write_text(
        "checks:\n  callback:\n    enabled: false\n  sql:\n    - name: quoting\n"
        f"      sql: SELECT '{PASSWORD}'::int AS v\n"
        "      metrics:\n        - {name: rollout_test_quoting, value: v}\n"
    )
    result = rollout(
        *("once", "--config", str(config), "--database-url", password_role.url),
        *("--database-password-file", str(password_file)),
    )
    assert result.returncode == 1
    assert 'invalid input syntax for type integer: \\"***\\"' in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_a_password_in_the_url_and_a_file_is_one_config_error(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    result = rollout(
        "check-config",
        *("--database-url", "postgresql://mon:other-secret@db/app"),
        *("--database-password-file", str(password_file)),
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "--database-password-file: database.password_file: the database URL has a password "
        "too: keep one of the two"
    ]


def test_an_unreadable_password_file_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    result = rollout(
        "once",
        "--database-url",
        "postgresql://mon@db/app",
        "--database-password-file",
        str(missing),
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"database.password_file: {missing}: cannot read password file: No such file or directory"
    ]


def test_sighup_reads_the_password_file_again(
    password_role: PasswordRole, fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """The password is rotated and the monitor's sessions killed: the old password no longer
    connects; after SIGHUP the new one from the file does."""
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    admin = fresh_db.conn()
    env = {"DATABASE_URL": password_role.url, "DATABASE_PASSWORD_FILE": str(password_file)}
    with daemon(tmp_path, **env) as process:
        process.wait_for("rollout_postgres_up", 1, timeout=15)
        admin.execute(f"ALTER ROLE {password_role.name} PASSWORD '{NEW_PASSWORD}'")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
            (password_role.name,),
        )
        process.wait_for("rollout_postgres_up", 0, timeout=40)
        password_file.write_text(NEW_PASSWORD + "\n")
        process.popen.send_signal(signal.SIGHUP)
        process.wait_for_event("config_reloaded")
        process.wait_for("rollout_postgres_up", 1, timeout=20)
        code, _ = process.stop()
    assert code == 0
    log = process.log_path.read_text()
    assert PASSWORD not in log
    assert NEW_PASSWORD not in log
    assert settle_sessions(fresh_db, 0) == 0
