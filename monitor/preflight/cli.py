"""The `rollout-monitor preflight` command line: the plan's pre-deployment checklist."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.config import durations
from monitor.config.schema import Config, PreflightSettings
from monitor.preflight.checks import run_checks
from monitor.preflight.report import as_json, exit_code, table


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


def settings_from(config: Config, args: argparse.Namespace) -> PreflightSettings:
    """preflight settings of the config, with the flags given over them."""
    update: dict[str, Any] = {}
    if args.backup is not None:
        update["backup"] = args.backup
    if args.backup_max_age is not None:
        update["backup_max_age"] = args.backup_max_age
    return config.preflight.model_copy(update=update)


def run_preflight(config: Config, redact: Callable[[str], str], args: argparse.Namespace) -> int:
    """Run every pre-flight check, print the table, return 0 when all pass, 1 otherwise."""
    started = time.time()
    results = run_checks(config, settings_from(config, args), redact)
    output = as_json(results, started) if args.format == "json" else table(results)
    sys.stdout.write(output)
    return exit_code(results)
