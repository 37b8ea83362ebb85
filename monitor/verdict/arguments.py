"""The `rollout-monitor verdict` command line: its options (the command is verdict/command.py)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from monitor.config import durations
from monitor.judge.observation import Thresholds
from monitor.promql.query import Selector, SelectorError

URL_VARIABLE = "ROLLOUT_PROMETHEUS_URL"
DEFAULTS = Thresholds()


def add_verdict_parser(commands: Any) -> None:
    """Add `verdict` and its options to the subcommands."""
    verdict = commands.add_parser(
        "verdict",
        help="decide the plan's success criteria from Prometheus",
        description="Decide the plan's six success criteria over the window since the migration "
        "from Prometheus. Exit 0 pass, 1 fail, 3 inconclusive, 4 could not evaluate, 2 usage.",
    )
    option = verdict.add_argument
    option("--prometheus-url", metavar="URL", help=f"Prometheus to ask (env {URL_VARIABLE})")
    option(
        "--window",
        default="24h",
        type=window_argument,
        metavar="DURATION",
        help="how long after the migration to judge, e.g. 1h (default 24h)",
    )
    option("--format", choices=("table", "json"), default="table", help="default table")
    option(
        "--selector",
        default=Selector(),
        type=_selector,
        metavar="MATCHERS",
        help='label matchers picking the monitor\'s series, e.g. job="rollout-monitor"',
    )
    option(
        "--objective",
        default=DEFAULTS.objective,
        type=_ratio,
        metavar="RATIO",
        help=f"callback success objective (default {DEFAULTS.objective:g})",
    )
    option(
        "--min-probes",
        default=DEFAULTS.min_probes,
        type=_count,
        metavar="N",
        help=f"probes needed in the window and the baseline (default {DEFAULTS.min_probes})",
    )
    option(
        "--latency-tolerance",
        default=DEFAULTS.latency_tolerance,
        type=_tolerance,
        metavar="FACTOR",
        help=f"p95 allowed, times the baseline's (default {DEFAULTS.latency_tolerance:g})",
    )
    option(
        "--at",
        type=_time,
        metavar="TIME",
        help="evaluate as if now were TIME: RFC3339 or Unix seconds (default now)",
    )
    option(
        "--timeout",
        default=10.0,
        type=durations.argument(0.001, 3600, bare_seconds=True),
        metavar="DURATION",
        help="per query (default 10s)",
    )


def _checked(convert: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """An argparse type: the conversion, or one line saying what was expected."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except SelectorError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None

    return parse


def _in_range(value: float, low: float, high: float) -> float:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(value)
    return value


def _unix_or_rfc3339(text: str) -> float:
    """Unix seconds or RFC3339, from 1970 to 5138 (so that it has a UTC date to print)."""
    try:
        return _in_range(float(text), 0, 1e11)
    except ValueError:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(text)
    return _in_range(moment.timestamp(), 0, 1e11)


_selector = _checked(Selector.parse, 'label matchers like job="rollout-monitor"')
_ratio = _checked(lambda text: _in_range(float(text), 0.0, 1.0), "a ratio from 0 to 1")
_count = _checked(lambda text: int(_in_range(int(text), 1, 1e9)), "a whole number from 1")
_tolerance = _checked(lambda text: _in_range(float(text), 1.0, 100.0), "a factor from 1 (1.1)")
_time = _checked(_unix_or_rfc3339, "RFC3339 with an offset (2026-11-24T03:00:00Z) or Unix seconds")


def window_argument(text: str) -> tuple[str, float]:
    """--window: its name as written (1h) and its seconds."""
    return text, durations.argument()(text)
