"""The `rollout-monitor verdict` command line. SKELETON (issue 5): its owner fills it in."""

from __future__ import annotations

import argparse
from typing import Any


def add_verdict_parser(commands: Any) -> None:
    """Add `verdict` and its options to the subcommands."""
    commands.add_parser("verdict", help="decide the plan's success criteria from Prometheus")


def run_verdict(args: argparse.Namespace) -> int:
    """Evaluate, print, and return the exit code (0 pass, 1 fail, 3 inconclusive)."""
    raise NotImplementedError
