"""What the status page shows, taken from memory at one moment, and the small pieces of HTML
every section of it writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from html import escape

from monitor.http.status.history import Minute, per_minute
from monitor.http.status.now import Paging, Vitals
from monitor.judge.baseline import Summary
from monitor.judge.observation import Decision, Thresholds
from monitor.observe.answers import Expected
from monitor.observe.migration import MigrationView
from monitor.observe.probelog import Observed
from monitor.observe.readings import Alerts

REFRESH_SECONDS = 15


@dataclass(frozen=True)
class Status:
    """Everything the page shows, taken from memory at one moment."""

    migration: str
    known_state: str | None  # None until the schema check first reported
    view: MigrationView
    decisions: Sequence[Decision]
    baseline: Summary | None
    baseline_source: str
    samples: Sequence[Observed]
    thresholds: Thresholds
    now: float
    refresh_seconds: int = REFRESH_SECONDS
    vitals: Vitals = field(default_factory=Vitals)
    now_decisions: Sequence[Decision] = ()  # the criteria on the last five minutes
    paging: Sequence[Paging] = ()  # alerts the daemon's own numbers say are due
    last_detail: str = ""  # the last probe's detail, redacted
    replica: str = ""  # which replica runs the database checks, when several monitors share it
    alerts: Alerts | None = None  # the alerts firing, as checks.alerts last asked; None: not asked
    expected: Expected = field(default_factory=Expected)  # the app's own answers

    @cached_property
    def minutes(self) -> list[Minute]:
        """The samples by minute, for the charts (grouped once a render)."""
        return per_minute(self.samples)


def utc(moment: float | datetime) -> str:
    """2026-11-24 03:04:05 UTC."""
    at = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def definitions(rows: Sequence[tuple[str, str, str]]) -> str:
    """A <dl> of (name, text, id) rows, the text escaped."""
    items = "".join(
        f'<dt>{escape(name)}</dt><dd id="{escape(ident)}">{escape(text)}</dd>'
        for name, text, ident in rows
    )
    return f"<dl>{items}</dl>"
