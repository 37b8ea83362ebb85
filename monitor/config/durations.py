"""One grammar for durations, wherever a user writes one (the configuration, the command line of
preflight, demo and verdict, the verdict's PromQL windows), and the three ways one is shown.

A duration is one or more parts, each a number (decimals allowed) and a unit: ms, s, m, h, d or
w; `15s`, `200ms`, `1.5h`, `1h30m`, `2d`. A bare number is not one: units matter.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# The longest duration any setting takes: a month. Anything longer is a typo, and overflows what
# the scheduler's timedelta and datetime can hold well before it would overflow a float.
LONGEST_SECONDS = 31 * 86400.0
HELP = "expected a number with a unit ms, s, m, h, d or w, e.g. 15s or 1h30m"


def parse_duration(text: str) -> float:
    """Seconds in the duration (spaces ignored: "15 s" too); ValueError when it is not one."""
    compact = "".join(text.split())
    parts = _PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"{text!r} is not a duration: {HELP}")
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration, for messages and dumps: 200ms, 15s, 1.5h."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def human_duration(seconds: float) -> str:
    """A rough duration for people: 45 s, 12 min, 2 h 5 min, 3 d 4 h."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"


def short_duration(seconds: float) -> str:
    """A chart's axis label, at most 7 characters: 0.0001 -> '0.1 ms', 0.25 -> '250 ms'."""
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 0.01:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.2g} ms"


def bounded(text: str, minimum: float = 0.0, maximum: float = math.inf) -> float:
    """Seconds in the duration, longer than 0 and from minimum to maximum; ValueError saying
    what is wrong, in the words every command and the configuration use."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ValueError(f"invalid duration {text!r}: {HELP}") from None
    return within(text, seconds, minimum, maximum)


def within(text: str, seconds: float, minimum: float, maximum: float) -> float:
    """The seconds written as text, or ValueError when they are not from minimum to maximum."""
    if not seconds > 0 or seconds < minimum:
        least = "longer than 0s" if minimum <= 0 else f"at least {format_duration(minimum)}"
        raise ValueError(f"invalid duration {text!r}: must be {least}")
    if seconds > maximum:
        raise ValueError(f"invalid duration {text!r}: must be at most {format_duration(maximum)}")
    return seconds


def argument(
    minimum: float = 0.0, maximum: float = LONGEST_SECONDS, *, bare_seconds: bool = False
) -> Callable[[str], float]:
    """An argparse type for a duration from minimum to maximum (bare_seconds: a plain number
    is taken as seconds too, as --timeout always took it)."""

    def parse(text: str) -> float:
        try:
            if bare_seconds and (number := _number(text)) is not None:
                return within(text, number, minimum, maximum)
            return bounded(text, minimum, maximum)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
