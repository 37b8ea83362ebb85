"""The `rollout-monitor preflight` command line. SKELETON (issue 5): its owner fills it in."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from monitor.config import Config


def add_preflight_parser(commands: Any, shared: argparse.ArgumentParser) -> None:
    """Add `preflight` and its options (with the shared ones) to the subcommands."""
    commands.add_parser("preflight", parents=[shared], help="the plan's pre-deployment checklist")


def run_preflight(config: Config, redact: Callable[[str], str], args: argparse.Namespace) -> int:
    """Run every pre-flight check, print the table, return 0 when all pass, 1 otherwise."""
    raise NotImplementedError
