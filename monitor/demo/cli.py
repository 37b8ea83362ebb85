"""The `rollout-monitor demo` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from monitor.config import parse_duration
from monitor.demo import console
from monitor.demo.stack import DemoSettings


def add_demo_parser(commands: Any) -> None:
    """Add `demo` and its options to the subcommands."""
    demo = commands.add_parser(
        "demo",
        help="run a throwaway rollout on 127.0.0.1: database, app, load, monitor, Prometheus",
        description="Everything on 127.0.0.1, removed on Ctrl-C. Durations take a unit: 30s, 2m.",
    )
    defaults = DemoSettings()
    demo.add_argument("--users", type=positive_int, default=defaults.users, help="users to create")
    demo.add_argument(
        "--logins-per-second", type=positive_float, default=defaults.logins_per_second
    )
    demo.add_argument(
        "--migrate-after",
        type=duration,
        default=defaults.migrate_after,
        metavar="DURATION",
        help="apply migration 001 this long after start (default 60s)",
    )
    demo.add_argument("--no-migration", action="store_true", help="never apply it by itself")
    for option, value in (
        ("--check-interval", defaults.check_interval),
        ("--probe-interval", defaults.probe_interval),
        ("--scrape-interval", defaults.scrape_interval),
    ):
        demo.add_argument(option, type=duration, default=value, metavar="DURATION")
    demo.add_argument(
        "--no-prometheus", action="store_true", help="do not start Prometheus and Alertmanager"
    )


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; typed actions are read when stdin is a terminal."""
    settings = DemoSettings(
        users=args.users,
        logins_per_second=args.logins_per_second,
        migrate_after=None if args.no_migration else args.migrate_after,
        check_interval=args.check_interval,
        probe_interval=args.probe_interval,
        scrape_interval=args.scrape_interval,
        prometheus=not args.no_prometheus,
    )
    commands = sys.stdin if sys.stdin.isatty() else None
    return console.run(settings, commands, lambda line: print(line, flush=True))


def duration(text: str) -> float:
    """A duration with a unit, at least one second."""
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is shorter than 1s")
    return seconds


def positive_int(text: str) -> int:
    """A whole number above zero."""
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


def positive_float(text: str) -> float:
    """A number above zero."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value
