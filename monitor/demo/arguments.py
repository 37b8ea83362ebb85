"""The `rollout-monitor demo` command line: its options (the command is demo/command.py)."""

from __future__ import annotations

import argparse
from typing import Any

from monitor.config import durations
from monitor.demo.settings import DemoSettings


def add_demo_parser(commands: Any) -> None:
    """Add `demo` and its options to the subcommands."""
    demo = commands.add_parser(
        "demo",
        help="run a throwaway rollout on 127.0.0.1: database, app, load, monitor, Prometheus",
        description="A whole rollout on 127.0.0.1: a throwaway PostgreSQL with the app's schema,"
        " a stand-in app with logins, the monitor, Prometheus and Alertmanager; migration 001"
        " applied after --migrate-after. Actions (faults, heal, migrate, rollback; the console"
        " lists them) are read from standard input, one a line, from a terminal or a pipe, or"
        " POSTed to the app's /demo/<action>; the console prints each outcome. Alertmanager's"
        " receivers post to a stand-in pager that prints pages and tickets on the console."
        " Everything is removed on Ctrl-C or quit. Durations take a unit: 30s, 2m. Exit 0 after"
        " Ctrl-C or quit, 2 on bad usage (a baseline too short included), 1 when a part fails"
        " to start, 130 when interrupted while starting.",
    )
    defaults = DemoSettings()
    demo.add_argument(
        "--users",
        type=positive_int,
        default=defaults.users,
        help=f"users to create (default {defaults.users})",
    )
    demo.add_argument(
        "--logins-per-second",
        type=positive_float,
        default=defaults.logins_per_second,
        help=f"the stand-in app's login load (default {defaults.logins_per_second:g})",
    )
    demo.add_argument(
        "--migrate-after",
        type=durations.argument(1.0),
        default=defaults.migrate_after,
        metavar="DURATION",
        help="apply migration 001 this long after start (default 60s)",
    )
    demo.add_argument(
        "--no-migration",
        action="store_true",
        help="never apply it by itself (the migrate action does)",
    )
    demo.add_argument(
        "--allow-short-baseline",
        action="store_true",
        help="migrate even if too few probes come before it for a usable baseline",
    )
    for option, value, what in (
        ("--check-interval", defaults.check_interval, "every database check runs"),
        ("--probe-interval", defaults.probe_interval, "the monitor probes the callback"),
        ("--scrape-interval", defaults.scrape_interval, "Prometheus scrapes and evaluates"),
    ):
        demo.add_argument(
            option,
            type=durations.argument(1.0),
            default=value,
            metavar="DURATION",
            help=f"how often {what} (default {value:g}s)",
        )
    demo.add_argument(
        "--no-prometheus", action="store_true", help="do not start Prometheus and Alertmanager"
    )


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
