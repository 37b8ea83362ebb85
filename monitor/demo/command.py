"""`rollout-monitor demo`: a whole rollout on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from monitor.config.durations import format_duration
from monitor.config.schema import BaselineSettings
from monitor.demo import console
from monitor.demo.settings import DemoSettings


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; actions are read from stdin, a terminal or a pipe, one a line."""
    settings = settings_of(args)
    if not args.allow_short_baseline and (problem := short_baseline(settings)) is not None:
        print(f"rollout-monitor demo: {problem} (see --help)", file=sys.stderr)
        return 2
    return console.run(settings, sys.stdin, lambda line: print(line, flush=True))


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
