"""The migration's SQL is the source of truth (issue 19): what the monitor watches comes from
`migration.sql_file` (by default the bundled SQL of 001), read by PostgreSQL's parser; a list in
the configuration is optional, and one that disagrees with the SQL is a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config.loading import ConfigError, load_config
from monitor.config.schema import Config

URL = "postgresql://monitor@127.0.0.1:5432/app"
OTHER = """\
-- A migration creating a table and a named constraint.
CREATE TABLE "sessions" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    CONSTRAINT "sessions_pkey" PRIMARY KEY ("id")
);
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE CASCADE;
CREATE INDEX "sessions_userId_idx" ON "sessions"("userId");
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "rollout.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config({"--config": str(path), "--database-url": URL}, {})
    return [p.replace(str(tmp_path), "T") for p in caught.value.problems]


def test_001s_eleven_objects_come_from_its_sql() -> None:
    objects = Config().migration.objects
    assert objects.names() == {
        ("column", "users.threadsFullName"),
        ("column", "users.threadsProfilePic"),
        ("column", "threads_tokens.issuedAt"),
        ("column", "threads_tokens.lastRefreshedAt"),
        ("column", "threads_tokens.isValid"),
        ("index", "idx_users_threads_user_id"),
        ("index", "idx_users_threads_username"),
        ("index", "idx_threads_tokens_valid"),
        ("index", "idx_threads_tokens_expires_at"),
        ("trigger", "trigger_update_token_validity"),
        ("function", "update_token_validity"),
    }
    assert [(t.name, t.table) for t in objects.triggers] == [
        ("trigger_update_token_validity", "threads_tokens")
    ]


def test_another_migration_brings_its_tables_and_constraints(tmp_path: Path) -> None:
    sql = tmp_path / "migration.sql"
    sql.write_text(OTHER)
    config = Config.model_validate({"migration": {"name": "002", "sql_file": str(sql)}})
    assert config.migration.objects.names() == {
        ("table", "sessions"),
        ("constraint", "sessions_pkey"),
        ("index", "sessions_pkey"),
        ("constraint", "sessions_userId_fkey"),
        ("index", "sessions_userId_idx"),
    }
    assert [(c.name, c.table) for c in config.migration.objects.constraints] == [
        ("sessions_pkey", "sessions"),
        ("sessions_userId_fkey", "sessions"),
    ]


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        (
            "migration:\n  objects:\n    indexes: [idx_users_threads_user_id]\n",
            "T/rollout.yaml: migration.objects: differs from the bundled migration_001.sql:"
            " not listed: column threads_tokens.isValid, column threads_tokens.issuedAt,"
            " column threads_tokens.lastRefreshedAt and 7 more",
        ),
        (
            "migration:\n  objects:\n    functions: [update_token_validity, nothing]\n"
            "    triggers: [{name: trigger_update_token_validity, table: threads_tokens}]\n"
            "    columns: [users.threadsFullName, users.threadsProfilePic,"
            " threads_tokens.issuedAt, threads_tokens.lastRefreshedAt, threads_tokens.isValid]\n"
            "    indexes: [idx_users_threads_user_id, idx_users_threads_username,"
            " idx_threads_tokens_valid, idx_threads_tokens_expires_at]\n",
            "T/rollout.yaml: migration.objects: differs from the bundled migration_001.sql:"
            " listed, not created: function nothing",
        ),
        (
            "migration:\n  sql_file: T/broken.sql\n",
            'T/rollout.yaml: migration.sql_file: T/broken.sql:2:35: syntax error at or near "TEXT"',
        ),
        (
            "migration:\n  sql_file: T\n",
            "T/rollout.yaml: migration.sql_file: T: not a regular file: cannot be the"
            " migration's SQL",
        ),
        (
            "migration:\n  sql_file: T/missing.sql\n",
            "T/rollout.yaml: migration.sql_file: T/missing.sql: cannot read migration's SQL:"
            " No such file or directory",
        ),
    ],
)
def test_a_list_or_a_file_that_disagrees_is_one_line(
    tmp_path: Path, yaml: str, expected: str
) -> None:
    (tmp_path / "broken.sql").write_text('-- 002\nALTER TABLE "users" ADD COLUM "x" TEXT;\n')
    assert problems(tmp_path, yaml.replace("T", str(tmp_path))) == [expected]


def test_a_fifo_as_the_sql_file_is_refused_without_waiting(tmp_path: Path) -> None:
    """Opened without blocking and refused as not a regular file (a reader of a FIFO with no
    writer would wait forever)."""
    fifo = tmp_path / "migration.sql"
    os.mkfifo(fifo)
    config = tmp_path / "rollout.yaml"
    config.write_text(f"migration:\n  sql_file: {fifo}\n")
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config", str(config)],
        env={**os.environ, "DATABASE_URL": URL},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        2,
        f"{config}: migration.sql_file: {fifo}: not a regular file: cannot be the"
        " migration's SQL\n",
    )
