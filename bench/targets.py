"""Every benchmark's verdict: each figure against its target, a table, a summary and an exit code.

    targets = Targets()                      # early: a bad BENCH_TARGETS is bad usage (exit 2)
    targets.at_most("database time a minute", 23.4, 60, "ms")
    targets.at_least("latency +30% caught", 99.8, 95, "%")
    targets.equal("leaders among the replicas", 1, 1)
    return targets.finish(report)            # prints the table and the summary line; 0 or 1

The table has one row per target (what, measured, limit, met), then a line
`targets: N met, M missed`. The exit code is 0 when every target is met and 1 when any is
missed; argparse's 2 stays for bad usage. A figure that could not be measured (None or NaN) is a
missed target, never a met one, and a benchmark that judged nothing has missed one too.

With BENCH_TARGETS=impossible in the environment every target is judged unmet and its limit
shown as "impossible": tests/test_benchmarks.py runs every script so, to prove that its exit
code follows its targets (a script that cannot fail would pass CI whatever it measured).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Literal, Protocol

ENVIRONMENT = "BENCH_TARGETS"
IMPOSSIBLE = "impossible"
USAGE_ERROR = 2
Kind = Literal["at most", "at least", "equal"]


class Printer(Protocol):
    """Where the table goes: common.Report (stdout and the .md file) or anything alike."""

    data: dict[str, Any]

    def print(self, text: str) -> None:
        """Print text (and keep it)."""


def impossible() -> bool:
    """Whether BENCH_TARGETS asks for every target to be judged unmet; exit 2 on a bad value."""
    value = os.environ.get(ENVIRONMENT, "")
    if value not in ("", IMPOSSIBLE):
        print(f"{ENVIRONMENT}={value!r}: the only value is {IMPOSSIBLE!r}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)
    return value == IMPOSSIBLE


def number(value: float, unit: str = "", digits: int = 2) -> str:
    """A figure with its unit: 1,234.50 ms, 0.05%, 3 (a whole number without decimals)."""
    text = f"{value:,.0f}" if float(value).is_integer() and digits >= 0 else f"{value:,.{digits}f}"
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "x") else f"{text} {unit}"


@dataclass(frozen=True)
class Target:
    """One figure against its limit."""

    what: str
    measured: float | None
    kind: Kind
    limit: float
    unit: str = ""
    digits: int = 2
    shown: str | None = None  # the measured value in words, when the number alone says little
    # (shown only when there is a figure: else "not measured")
    impossible: bool = False

    @property
    def measurable(self) -> bool:
        """Whether there is a figure at all (None and NaN are not one)."""
        return self.measured is not None and not math.isnan(self.measured)

    @property
    def met(self) -> bool:
        """Whether the figure is within its limit; never when unmeasured or impossible."""
        if self.impossible or self.measured is None or not self.measurable:
            return False
        if self.kind == "at most":
            return self.measured <= self.limit
        if self.kind == "at least":
            return self.measured >= self.limit
        return self.measured == self.limit

    def row(self) -> list[str]:
        """The table's cells: what, measured, limit, met."""
        if self.measured is None or not self.measurable:
            measured = "not measured"
        elif self.shown is not None:
            measured = self.shown
        else:
            measured = number(self.measured, self.unit, self.digits)
        limit = IMPOSSIBLE if self.impossible else self.limit_text()
        return [self.what, measured, limit, "yes" if self.met else "no"]

    def limit_text(self) -> str:
        """E.g. 'at most 60 ms'; 'equal' reads as '= 1'."""
        value = number(self.limit, self.unit, self.digits)
        return f"= {value}" if self.kind == "equal" else f"{self.kind} {value}"

    def as_dict(self) -> dict[str, Any]:
        """For the JSON results."""
        return {
            "what": self.what,
            "measured": self.measured,
            "kind": self.kind,
            "limit": self.limit,
            "unit": self.unit,
            "met": self.met,
            "impossible": self.impossible,
        }


class Targets:
    """The targets a benchmark judged, in order."""

    def __init__(self) -> None:
        self.impossible = impossible()
        self.judged: list[Target] = []

    def add(
        self,
        what: str,
        measured: float | None,
        kind: Kind,
        limit: float,
        unit: str = "",
        *,
        digits: int = 2,
        shown: str | None = None,
    ) -> Target:
        """Judge one figure; returns the target (met or not)."""
        target = Target(what, measured, kind, limit, unit, digits, shown, self.impossible)
        self.judged.append(target)
        return target

    def at_most(
        self,
        what: str,
        measured: float | None,
        limit: float,
        unit: str = "",
        *,
        digits: int = 2,
        shown: str | None = None,
    ) -> Target:
        """The figure must not exceed the limit."""
        return self.add(what, measured, "at most", limit, unit, digits=digits, shown=shown)

    def at_least(
        self,
        what: str,
        measured: float | None,
        limit: float,
        unit: str = "",
        *,
        digits: int = 2,
        shown: str | None = None,
    ) -> Target:
        """The figure must reach the limit."""
        return self.add(what, measured, "at least", limit, unit, digits=digits, shown=shown)

    def equal(
        self,
        what: str,
        measured: float | None,
        limit: float,
        unit: str = "",
        *,
        digits: int = 2,
        shown: str | None = None,
    ) -> Target:
        """The figure must be exactly the limit (counts)."""
        return self.add(what, measured, "equal", limit, unit, digits=digits, shown=shown)

    @property
    def missed(self) -> list[Target]:
        """The targets not met."""
        return [t for t in self.judged if not t.met]

    def render(self, title: str = "Targets") -> str:
        """The Markdown table and the summary line."""
        rows = [t.row() for t in self.judged]
        if not rows:  # judging nothing is no pass
            rows = [["at least one target judged", "none", "at least 1", "no"]]
        headers = ["target", "measured", "limit", "met"]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

        def line(cells: list[str]) -> str:
            """One row, each cell padded to its column."""
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        lines = [
            f"\n### {title}\n",
            line(headers),
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        ]
        lines += [line(r) for r in rows]
        return "\n".join(lines) + "\n\n" + self.summary()

    def summary(self) -> str:
        """`targets: N met, M missed` (judging nothing counts as one missed)."""
        missed = len(self.missed) if self.judged else 1
        return f"targets: {len(self.judged) - len(self.missed)} met, {missed} missed"

    def exit_code(self) -> int:
        """0 when every target is met (and there is one), 1 otherwise."""
        return 0 if self.judged and not self.missed else 1

    def finish(self, report: Printer | None = None, title: str = "Targets") -> int:
        """Print the table and the summary (through the report when given, which also keeps
        them for its JSON); the exit code."""
        text = self.render(title)
        if report is None:
            print(text, flush=True)
        else:
            report.print(text)
            report.data["targets"] = [t.as_dict() for t in self.judged]
            report.data["targets_summary"] = self.summary()
        return self.exit_code()
