"""The `rollout-monitor preflight` command line: its options (the command is
preflight/command.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from monitor.config import durations


def add_preflight_parser(commands: Any, shared: argparse.ArgumentParser) -> None:
    """Add `preflight` and its options (with the shared ones) to the subcommands."""
    parser = commands.add_parser(
        "preflight",
        parents=[shared],
        help="the plan's pre-deployment checklist",
        description="The deployment plan's pre-deployment checklist, read-only: the database"
        " reachable, its schema ready for the migration, the backup (its age, and pg_restore"
        " reading it to its end), no authentication flow in flight, the active sessions, and"
        " one probe of the callback. Exit 0 when every check passes, 1 when any fails, 2 on"
        " bad usage or configuration.",
    )
    parser.add_argument(
        "--backup",
        metavar="PATH",
        type=Path,
        help="the backup file, a pg_dump directory, or a directory holding backups (the "
        "newest is checked); default preflight.backup",
    )
    parser.add_argument(
        "--backup-max-age",
        metavar="DURATION",
        type=durations.argument(),
        help="how old the backup may be, e.g. 30m or 24h (default preflight.backup_max_age: 24h)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output: an aligned table, or JSON (default table)",
    )
