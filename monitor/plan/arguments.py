"""The `rollout-monitor plan` command line: its options (the command is plan/command.py)."""

from __future__ import annotations

import argparse
from typing import Any


def add_plan_parser(commands: Any, shared: argparse.ArgumentParser) -> None:
    """Add `plan` and its options (with the shared connection ones) to the subcommands."""
    parser = commands.add_parser(
        "plan",
        parents=[shared],
        help="the migration's lock plan, from its SQL (and who would block it now)",
        description="Read the migration's SQL with PostgreSQL's own parser and say, per"
        " statement, which tables it locks and in which mode (as pg_locks names them), which it"
        " rewrites, how long each lock is held (Prisma runs the file as one transaction), the"
        " risk and the advice that removes it. With a database (--database-url or"
        " DATABASE_URL; read-only, time-boxed, never waiting on a lock) also each table's size"
        " and average traffic, and the sessions that would make each lock wait now. Exit 0 safe,"
        " 1 risky (a live blocker; a rewrite or ACCESS EXCLUSIVE on a table with rows without"
        " lock_timeout; a statement that cannot run in Prisma's transaction), 2 on bad usage or"
        " SQL that does not parse (one line: file, line, column).",
    )
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="the migration's SQL (default: migration.sql_file, else the bundled SQL of 001)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output (default text)"
    )
