"""`rollout-monitor preflight`: the plan's pre-deployment checklist, as a table or JSON."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from monitor.config.schema import Config, PreflightSettings
from monitor.preflight.checks import run_checks
from monitor.preflight.report import as_json, exit_code, table


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
