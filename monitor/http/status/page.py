"""The status page at /: the success criteria, the migration's phase, charts of the last hour.

Rendered on the server from memory only (never the database), with inline CSS and SVG and no
script, so that it works from a phone behind the same basic auth as /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from html import escape
from importlib.resources import files

from monitor.config.durations import human_duration, short_duration
from monitor.http.status.charts import (
    Chart,
    Reference,
    Series,
    count,
    milliseconds,
    percent,
    render_chart,
    short_count,
)
from monitor.http.status.history import DRIFT_KINDS, Minute, drift_of, last_hour, per_minute
from monitor.http.status.now import Paging, Recent, Vitals, now_decisions, recent, would_page
from monitor.judge.baseline import Baseline, Summary
from monitor.judge.criteria import overall
from monitor.judge.judgement import Judgement
from monitor.judge.observation import (
    BaselineView,
    Decision,
    Thresholds,
    baseline_problem,
    baseline_usable,
)
from monitor.judge.rollout import PHASES, VERDICT_WINDOWS, phase
from monitor.observe.migration import MigrationTracker, MigrationView
from monitor.observe.probelog import Observed, ProbeLog
from monitor.observe.readings import Alerts

REFRESH_SECONDS = 15
PAGE_WINDOW = "24h"  # the criteria shown are the verdict's on this window, as `verdict` decides
CSS = files(__package__).joinpath("page.css").read_text(encoding="utf-8")


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

    @cached_property
    def minutes(self) -> list[Minute]:
        """The samples by minute, for the charts (grouped once a render)."""
        return per_minute(self.samples)


class StatusPage:
    """Renders the page from the daemon's memory: the migration's view, the judgement of the
    window since the migration, the baseline, and the last hour of the probe log."""

    def __init__(
        self,
        *,
        migration: str,
        tracker: MigrationTracker,
        judgement: Judgement,
        baseline: Baseline,
        log: ProbeLog,
        vitals: Callable[[], Vitals],
        redact: Callable[[str], str],
        clock: Callable[[], float] = time.time,
        replica: Callable[[], str] = lambda: "",
        alerts: Callable[[], Alerts | None] = lambda: None,
    ) -> None:
        self._alerts = alerts
        self._migration = migration
        self._replica = replica
        self._tracker = tracker
        self._judgement = judgement
        self._baseline = baseline
        self._log = log
        self._vitals = vitals
        self._redact = redact
        self._clock = clock

    def status(self) -> Status:
        """What the page would show now."""
        now, vitals = self._clock(), self._vitals()
        samples = last_hour(self._log, now)
        view, known = self._tracker.current(), self._tracker.known_state()
        observation = self._judgement.observation()
        thresholds = self._judgement.thresholds
        # The criteria as the verdict decides them (its default window): a pass only once over.
        verdict = self._judgement.verdict(PAGE_WINDOW, VERDICT_WINDOWS[PAGE_WINDOW])
        summary, source = self._baseline.frozen()
        return Status(
            migration=self._migration,
            known_state=known,
            view=view,
            decisions=verdict.decisions,
            baseline=summary,
            baseline_source=source,
            samples=samples,
            thresholds=thresholds,
            now=now,
            vitals=vitals,
            now_decisions=now_decisions(observation, samples, now, thresholds),
            paging=would_page(samples, vitals, known, now, thresholds, running=view.running),
            last_detail=self._redact(error_kind(samples[-1].detail)) if samples else "",
            replica=self._replica(),
            alerts=self._alerts(),
        )

    def render(self) -> bytes:
        """The page, UTF-8."""
        return render(self.status()).encode()


def error_kind(detail: str) -> str:
    """The kind of a probe's error ('ConnectError'), not its text: a library's message can
    quote what it was sent (a header's value), and the page is no place for that."""
    return detail.split(":", 1)[0].strip()


def utc(moment: float | datetime) -> str:
    """2026-11-24 03:04:05 UTC."""
    at = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(status: Status) -> str:
    """The whole page."""
    verdict = overall(status.decisions)
    last = recent(status.samples, status.now)
    level = now_level(status, last)
    title = f"{NOW_WORDS[level]} now, {verdict} since the migration"
    return "".join(
        [
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta http-equiv="refresh" content="{status.refresh_seconds}">',
            f"<title>{escape(title)} - rollout-monitor</title>",
            f"<style>{CSS}</style></head><body><main>",
            "<header><h1>rollout-monitor</h1>",
            f"<p>Migration <code>{escape(status.migration)}</code></p>",
            f'<p class="replica">{escape(status.replica)}</p>' if status.replica else "",
            "</header>",
            now_section(status, level, last),
            migration_section(status),
            criteria_section(status.decisions, verdict, status.now_decisions, status.alerts),
            charts_section(status),
            footer(status),
            "</main></body></html>\n",
        ]
    )


def migration_section(status: Status) -> str:
    """State, phase and time since applied."""
    current = phase(status.known_state, status.view, status.now)
    state = status.known_state or "unknown"
    applied = status.view.applied_at
    when = (
        "not applied"
        if current in ("unknown", "not_applied", "migrating") or applied is None
        else (
            f"{human_duration(status.now - applied.timestamp())} ago, at {utc(applied)}"
            f" (from {status.view.applied_source or 'unknown'})"
        )
    )
    rows = [
        ("State", state, f"state-{state}"),
        ("Phase", PHASES[current], f"phase-{current}"),
        ("Applied", when, "applied"),
    ]
    return f'<section id="migration"><h2>Migration</h2>{definitions(rows)}</section>'


def definitions(rows: Sequence[tuple[str, str, str]]) -> str:
    """A <dl> of (name, text, id) rows, the text escaped."""
    items = "".join(
        f'<dt>{escape(name)}</dt><dd id="{escape(ident)}">{escape(text)}</dd>'
        for name, text, ident in rows
    )
    return f"<dl>{items}</dl>"


def criteria_section(
    decisions: Sequence[Decision],
    verdict: str,
    now: Sequence[Decision] = (),
    alerts: Alerts | None = None,
) -> str:
    """The plan's success criteria as the verdict decides them over its default window, each
    with its result in words and the reason, whether one that failed still fails now, and the
    alerts of it firing."""
    current = {d.criterion: d for d in now}
    items = "".join(
        f'<li id="criterion-{escape(d.criterion)}" class="criterion {escape(d.result)}">'
        f'<span class="result {escape(d.result)}">{escape(d.result)}</span> '
        f'<strong class="title">{escape(d.title)}</strong>'
        f'<p class="reason">{escape(d.reason)}</p>'
        f"{now_note(d, current.get(d.criterion), firing_for(d.criterion, alerts))}</li>"
        for d in decisions
    )
    return (
        f'<section id="criteria"><h2>Success criteria, the verdict\'s {PAGE_WINDOW} window: '
        f'<span id="verdict" class="result {escape(verdict)}">{escape(verdict)}</span></h2>'
        f'<ol class="criteria">{items}</ol></section>'
    )


# The alerts of alerts/alerting.rules.yml that speak for each criterion now.
CRITERION_ALERTS = {
    "migration_completed": (
        "RolloutMigrationPartial",
        "RolloutMigrationRolledBack",
        "RolloutIndexInvalid",
    ),
    "users_can_authenticate": (
        "RolloutCallbackDown",
        "RolloutLoginsFailing",
        "RolloutLoginsFailingSlowly",
    ),
    "new_fields_populated": ("RolloutBackfillStalled",),
    "token_validity_tracking": ("RolloutTokensWronglyInvalid",),
    "latency_within_10pct": ("RolloutCallbackLatencyRegression",),
    "error_rate_within_baseline": (
        "RolloutCallbackErrorBudgetBurnFast",
        "RolloutCallbackErrorBudgetBurnSlow",
    ),
}


def firing_for(criterion: str, alerts: Alerts | None) -> list[str]:
    """The criterion's alerts firing now, as last asked."""
    names = CRITERION_ALERTS.get(criterion, ())
    return [] if alerts is None else [a.name for a in alerts.firing if a.name in names]


def now_note(window: Decision, now: Decision | None, firing: Sequence[str] = ()) -> str:
    """The criterion's alerts firing, or, for one that failed in the window: does it still
    fail now, or pass again? Never "passing now" while an alert of it fires."""
    if firing:
        words = f"Alert firing: {', '.join(firing)}."
        return f'<p class="now fail">{escape(words)}</p>'
    if window.result != "fail" or now is None or now.result == "inconclusive":
        return ""
    words = (
        f"Still failing now: {now.reason}."
        if now.result == "fail"
        else f"Failed earlier in the window, passing now (last 5 minutes): {now.reason}."
    )
    return f'<p class="now {escape(now.result)}">{escape(words)}</p>'


NOW_WORDS = {"bad": "FAILING", "warn": "DEGRADED", "ok": "OK", "unknown": "NO DATA"}


def now_level(status: Status, last: Recent) -> str:
    """bad: the last probe failed, the database is down, something would page or an alert
    pages; warn: some probe failed in the last five minutes; ok: none did; unknown: no probe
    yet."""
    samples = status.samples
    last_failed = bool(samples) and samples[-1].outcome != "success"
    paging = status.alerts is not None and any(a.paging for a in status.alerts.firing)
    if last_failed or status.paging or paging or status.vitals.postgres_up is False:
        return "bad"
    if not samples:
        return "unknown"
    return "warn" if last.failures else "ok"


def now_section(status: Status, level: str, last: Recent) -> str:
    """The last probe, the last five minutes, the database, and what would page."""
    rows = [
        ("Callback", last_probe_text(status), "now-callback"),
        ("Last 5 minutes", recent_text(last), "now-recent"),
        *database_rows(status.vitals),
        ("Alerts firing", alerts_text(status.alerts), "now-alerts"),
        ("Would page", paging_text(status.paging), "now-paging"),
    ]
    return (
        f'<section id="now" class="now-{escape(level)}"><h2>Now: '
        f'<span id="now-level" class="level {escape(level)}">{NOW_WORDS[level]}</span></h2>'
        f"{definitions(rows)}</section>"
    )


def last_probe_text(status: Status) -> str:
    """The last probe's outcome, status code or reason, and how long ago."""
    if not status.samples:
        return "no probe yet"
    last = status.samples[-1]
    answer = f"HTTP {last.status}" if last.status is not None else status.last_detail
    ago = human_duration(status.now - last.at)
    return f"{last.outcome} ({answer or 'no answer'}), {ago} ago"


def recent_text(last: Recent) -> str:
    """How many probes, how many failed, their p95."""
    if not last.probes:
        return "no probe"
    p95 = last.latencies.quantile(0.95)
    latency = "no answer" if p95 is None else f"p95 {milliseconds(p95)}"
    return f"{last.failures} of {last.probes} probes failed; {latency}"


def database_rows(vitals: Vitals) -> list[tuple[str, str, str]]:
    """Reachable, locks and connections, as the checks last saw them."""
    reachable = {
        True: "reachable",
        False: "UNREACHABLE: the criteria below use the last data seen before",
        None: "unknown",
    }[vitals.postgres_up]
    locks = (
        "unknown"
        if vitals.lock_waiting is None
        else f"{sessions(vitals.lock_waiting)} waiting on a lock,"
        f" {vitals.blocked_by_ddl or 0:g} of them behind DDL"
    )
    ratio = vitals.connections_ratio
    connections = (
        "unknown"
        if ratio is None or vitals.connections is None
        else f"{vitals.connections:g} of {vitals.max_connections:g} ({ratio:.0%})"
    )
    return [
        ("Database", reachable, "now-database"),
        ("Locks", locks, "now-locks"),
        ("Connections", connections, "now-connections"),
    ]


def sessions(number: float) -> str:
    """'1 session', '3 sessions'."""
    return f"{number:g} session" + ("" if number == 1 else "s")


def alerts_text(alerts: Alerts | None) -> str:
    """The rollout's alerts firing and where that comes from, or why it is not known."""
    if alerts is None:
        return "not asked: set checks.alerts.url to Alertmanager (or Prometheus)"
    if alerts.error is not None:
        return f"unknown: {alerts.source} did not answer ({alerts.error})"
    if not alerts.firing:
        return f"none ({alerts.source})"
    shown = "; ".join(
        f"{a.name}{f' x{a.count}' if a.count > 1 else ''}"
        f" ({'paging' if a.paging else 'silenced or inhibited'})"
        for a in alerts.firing
    )
    return f"{shown} ({alerts.source})"


def paging_text(paging: Sequence[Paging]) -> str:
    """The alerts due, with why; 'nothing' when none is."""
    if not paging:
        return "nothing"
    return "; ".join(f"{p.alert} ({p.why})" for p in paging)


def charts_section(status: Status) -> str:
    """The four charts of the last hour."""
    figures = "".join(render_chart(chart) for chart in charts(status))
    return f'<section id="charts"><h2>The last hour</h2>{figures}</section>'


def charts(status: Status) -> list[Chart]:
    """Callback success, latency against the baseline, token drift, backfill."""
    start, end = status.now - 3600, status.now
    return [
        success_chart(status, start, end),
        latency_chart(status, start, end),
        Chart(
            "drift",
            "Token validity drift (tokens)",
            start,
            end,
            drift(status.samples),
            (),
            count,
            axis=short_count,
        ),
        Chart(
            "backfill",
            "Users missing a new field",
            start,
            end,
            backfill(status.samples),
            (),
            count,
            axis=short_count,
        ),
    ]


def middle(start: float, end: float) -> float:
    """Where a minute is drawn: its middle, or now for the minute still running."""
    return min(start + 30, end)


def success_chart(status: Status, start: float, end: float) -> Chart:
    """Per-minute share of successful probes against the objective; now: the last 5 minutes,
    as everywhere on the page."""
    minutes = status.minutes
    points = tuple((middle(m.start, end), m.success_ratio) for m in minutes)
    last = recent(status.samples, status.now)
    ratio = last.error_ratio
    now = (
        "no probe in the last 5 minutes"
        if ratio is None
        else f"last 5 minutes {percent(1 - ratio)}"
    )
    return Chart(
        "success",
        "Callback success per minute",
        start,
        end,
        (Series("success", points, now),),
        (Reference("objective", status.thresholds.objective),),
        percent,
        high=1.0,
    )


def latency_chart(status: Status, start: float, end: float) -> Chart:
    """Per-minute p95 latency against the baseline's p95 and the tolerated limit; now: the last
    5 minutes' p95, as everywhere on the page."""
    minutes = status.minutes
    points = tuple((middle(m.start, end), m.p95_seconds) for m in minutes if m.p95_seconds)
    p95 = recent(status.samples, status.now).latencies.quantile(0.95)
    now = "no probe in the last 5 minutes" if p95 is None else f"last 5 minutes {milliseconds(p95)}"
    return Chart(
        "latency",
        "Callback latency, p95 per minute",
        start,
        end,
        (Series("p95", points, now),),
        baseline_lines(status),
        milliseconds,
        axis=short_duration,
    )


def baseline_lines(status: Status) -> tuple[Reference, ...]:
    """The baseline's p95 and the limit above it, once the baseline is usable as evidence."""
    base = status.baseline
    p95 = None if base is None else base.duration_seconds.get("0.95")
    if base is None or p95 is None or not baseline_usable(baseline_view(status), status.thresholds):
        return ()
    limit = status.thresholds.latency_tolerance
    return (
        Reference(f"baseline p95 ({base.probes} probes, {status.baseline_source})", p95),
        Reference(f"limit {limit:.2f}x baseline", p95 * limit),
    )


def baseline_view(status: Status) -> BaselineView | None:
    """The criteria's view of the frozen baseline; None while it is being learned."""
    base = status.baseline
    return None if base is None else base.view(status.baseline_source)


def drift(samples: Sequence[Observed]) -> tuple[Series, ...]:
    """Stale-valid and wrongly-invalid tokens as the drift check last reported at each probe."""
    drifts = [(s.at, drift_of(s)) for s in samples]
    return tuple(
        reported(kind, tuple((at, kinds[kind]) for at, kinds in drifts if kind in kinds), samples)
        for kind in DRIFT_KINDS
    )


def backfill(samples: Sequence[Observed]) -> tuple[Series, ...]:
    """Users still missing each new column, one line per column, in the order first seen."""
    missing = [(s.at, dict(s.around.missing)) for s in samples]
    columns = list(dict.fromkeys(c for _, users in missing for c in users))
    return tuple(
        reported(
            column, tuple((at, users[column]) for at, users in missing if column in users), samples
        )
        for column in columns
    )


def reported(
    name: str, points: tuple[tuple[float, float], ...], samples: Sequence[Observed]
) -> Series:
    """A series of what a check reported at each probe; not "now" when the last probe had no
    report of it (the check withdrew it: the column is gone, the check failed)."""
    if points and samples and points[-1][0] < samples[-1].at:
        return Series(name, points, f"not reported now (last {count(points[-1][1])})")
    return Series(name, points)


def footer(status: Status) -> str:
    """When this was rendered, how often it refreshes, and the daemon's other endpoints."""
    links = " ".join(f'<a href="{p}">{p}</a>' for p in ("/metrics", "/healthz", "/readyz"))
    return (
        f"<footer><p>Rendered {escape(utc(status.now))}; refreshes every "
        f"{status.refresh_seconds} s. Baseline: {escape(baseline_text(status))}.</p>"
        f"<p>{links}</p></footer>"
    )


def baseline_text(status: Status) -> str:
    """The baseline in words."""
    base = status.baseline
    if base is None:
        return "still learning (the migration has not left pending)"
    ratio = "no data" if base.success_ratio is None else percent(base.success_ratio)
    p95 = base.duration_seconds.get("0.95")
    latency = "no data" if p95 is None else milliseconds(p95)
    text = f"{base.probes} probes from {status.baseline_source}, success {ratio}, p95 {latency}"
    problem = baseline_problem(baseline_view(status), status.thresholds)
    return text if problem is None else f"unusable as evidence ({problem}); {text}"
