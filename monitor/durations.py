"""One grammar for durations, wherever a user writes one: the configuration, the command line
(preflight, demo, verdict) and the verdict's PromQL windows.

A duration is one or more parts, each a number (decimals allowed) and a unit: ms, s, m, h, d or
w; `15s`, `200ms`, `1.5h`, `1h30m`, `2d`. A bare number is not one: units matter.
"""

from __future__ import annotations

import re

UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
HELP = "expected a number with a unit ms, s, m, h, d or w, e.g. 15s or 1h30m"


def parse_duration(text: str) -> float:
    """Seconds in the duration (spaces ignored: "15 s" too); ValueError when it is not one."""
    compact = "".join(text.split())
    parts = _PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"{text!r} is not a duration: {HELP}")
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in parts)
