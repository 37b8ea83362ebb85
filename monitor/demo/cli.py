"""The `rollout-monitor demo` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from monitor.config import durations
from monitor.config.durations import format_duration
from monitor.config.schema import BaselineSettings
from monitor.demo import console
from monitor.demo.stack import DemoSettings


def add_demo_parser(commands: Any) -> None:
    """Add `demo` and its options to the subcommands."""
    demo = commands.add_parser(
        "demo",
        help="run a throwaway rollout on 127.0.0.1: database, app, load, monitor, Prometheus",
        description="A whole rollout on 127.0.0.1: a throwaway PostgreSQL with the app's schema,"
        " a stand-in app with logins, the monitor, Prometheus and Alertmanager; migration 001"
        " applied after --migrate-after; faults injected by typed commands (type help). Everything"
        " is removed on Ctrl-C. Durations take a unit: 30s, 2m. Exit 0 after Ctrl-C, 2 on bad"
        " usage (a baseline too short included), 1 when a part fails to start, 130 when"
        " interrupted while starting.",
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
        "--no-migration", action="store_true", help="never apply it by itself (type migrate)"
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


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; typed actions are read when stdin is a terminal."""
    settings = settings_of(args)
    if not args.allow_short_baseline and (problem := short_baseline(settings)) is not None:
        print(f"rollout-monitor demo: {problem} (see --help)", file=sys.stderr)
        return 2
    commands = sys.stdin if sys.stdin.isatty() else None
    return console.run(settings, commands, lambda line: print(line, flush=True))


def short_baseline(settings: DemoSettings) -> str | None:
    """Why the migration would come too soon for a usable baseline; None when it would not.

    Only probes a later schema check confirmed as pending count: the last check interval's do not.
    """
    if settings.migrate_after is None:
        return None
    needed = BaselineSettings().min_probes
    confirmed = int((settings.migrate_after - settings.check_interval) // settings.probe_interval)
    if confirmed >= needed:
        return None
    shortest = settings.check_interval + needed * settings.probe_interval
    return (
        f"--migrate-after {format_duration(settings.migrate_after)} leaves about"
        f" {max(confirmed, 0)} callback probes before the migration, fewer than the {needed} a"
        f" usable baseline needs: use --migrate-after {format_duration(shortest)} or more, a"
        " shorter --probe-interval, or --allow-short-baseline"
    )


def settings_of(args: argparse.Namespace) -> DemoSettings:
    """The demo's settings from its command line."""
    return DemoSettings(
        users=args.users,
        logins_per_second=args.logins_per_second,
        migrate_after=None if args.no_migration else args.migrate_after,
        check_interval=args.check_interval,
        probe_interval=args.probe_interval,
        scrape_interval=args.scrape_interval,
        prometheus=not args.no_prometheus,
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
