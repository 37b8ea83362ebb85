"""The status page at /: the success criteria, the migration's phase, charts of the last hour.

Rendered on the server from memory only (never the database), with inline CSS and SVG and no
script, so that it works from a phone behind the same basic auth as /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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
from monitor.http.status.criteria_section import PAGE_WINDOW, criteria_section
from monitor.http.status.history import DRIFT_KINDS, drift_of, last_hour
from monitor.http.status.now import Vitals, now_decisions, recent, would_page
from monitor.http.status.now_section import NOW_WORDS, now_level, now_section
from monitor.http.status.status import Status, definitions, utc
from monitor.judge.baseline import Baseline
from monitor.judge.criteria import overall
from monitor.judge.judgement import Judgement
from monitor.judge.observation import BaselineView, baseline_problem, baseline_usable
from monitor.judge.rollout import PHASES, VERDICT_WINDOWS, phase
from monitor.observe.answers import Expected
from monitor.observe.migration import MigrationTracker
from monitor.observe.probelog import Observed, ProbeLog
from monitor.observe.readings import Alerts

CSS = files(__package__).joinpath("page.css").read_text(encoding="utf-8")


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
        expected: Callable[[], Expected] = Expected,
    ) -> None:
        self._alerts = alerts
        self._expected = expected
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
            last_detail=self._redact(shown_detail(samples[-1])) if samples else "",
            replica=self._replica(),
            alerts=self._alerts(),
            expected=self._expected(),
        )

    def render(self) -> bytes:
        """The page, UTF-8."""
        return render(self.status()).encode()


def shown_detail(last: Observed) -> str:
    """What the page says of the last probe's detail: what changed in an unexpected answer
    (shapes, no content), else only the error's kind."""
    return last.detail if last.outcome == "unexpected_answer" else error_kind(last.detail)


def error_kind(detail: str) -> str:
    """The kind of a probe's error ('ConnectError'), not its text: a library's message can
    quote what it was sent (a header's value), and the page is no place for that."""
    return detail.split(":", 1)[0].strip()


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
