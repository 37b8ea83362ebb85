"""PromQL the monitor writes (the daemon's baseline and `verdict`): the selector added to every
metric, durations, and exact increases."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_STRING = r'"(?:[^"\\\n]|\\.)*"' + r"|'(?:[^'\\\n]|\\.)*'"
_MATCHER = rf"\s*{_NAME}\s*(?:=~|!~|!=|=)\s*(?:{_STRING})\s*"
_MATCHERS = re.compile(rf"(?:{_MATCHER}(?:,{_MATCHER})*,?\s*)?")
# Prometheus's --query.lookback-delta default: how far before a time an instant selector (and so
# `offset`) takes its sample from.
LOOKBACK_SECONDS = 300.0


class SelectorError(ValueError):
    """The --selector is not a list of PromQL label matchers."""


def promql_duration(seconds: float) -> str:
    """A PromQL duration of these seconds, to the millisecond (PromQL's resolution)."""
    return f"{round(seconds * 1000)}ms"


@dataclass(frozen=True)
class Selector:
    """Label matchers added to every metric the verdict reads (to pick the monitor's series)."""

    matchers: str = ""

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Validate matchers such as `job="rollout-monitor",env=~"prod.*"` (braces optional)."""
        inner = text.strip()
        if inner.startswith("{") and inner.endswith("}"):
            inner = inner[1:-1]
        if not _MATCHERS.fullmatch(inner):
            raise SelectorError(
                f'{text!r} is not a list of label matchers like job="rollout-monitor"'
            )
        return cls(inner.strip().rstrip(",").strip())

    def __call__(self, metric: str, **labels: str) -> str:
        """The metric with its own label matchers (exact values) and the selector's."""
        own = [f'{name}="{value}"' for name, value in labels.items()]
        matchers = ", ".join([*own, self.matchers] if self.matchers else own)
        return f"{metric}{{{matchers}}}"


def exact_increase(series: str, seconds: float) -> str:
    """How much each counter series grew in the `seconds` before the query's time, unextrapolated.

    increase() extrapolates to the edges of its range, so 240 probes read as 240.6 or 239.2. The
    value at the end minus the value at the start (`offset`) is exact: the probes the scrapes at
    or before the end saw, less those the scrapes at or before the start saw. `offset` may take
    its sample from up to the lookback (5 minutes) before the start, from a process that has
    restarted since: a series that reset in the range widened by the lookback, that is lower at
    the end than at the start, or that did not exist at its start, falls back to increase(),
    which handles resets and is exact only when samples fall on both edges.
    """
    duration = promql_duration(seconds)
    widened = promql_duration(seconds + LOOKBACK_SECONDS)
    start = f"{series} offset {duration}"
    restarted = f"resets({series}[{widened}]) > 0 or {start} > {series}"
    return f"(({series} - {start}) unless ({restarted})) or increase({series}[{duration}])"
