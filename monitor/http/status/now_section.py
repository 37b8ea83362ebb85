"""The status page's "now": the last probe, the last five minutes, the database, the alerts
firing and those the daemon's own numbers say would page, and how bad it is overall."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from monitor.config.durations import human_duration
from monitor.http.status.charts import milliseconds
from monitor.http.status.now import Paging, Recent, Vitals
from monitor.http.status.status import Status, definitions
from monitor.observe.answers import Expected
from monitor.observe.readings import Alerts

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
        ("Healthy answer", expected_text(status.expected), "now-answer"),
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
    if last.outcome == "unexpected_answer":  # what changed: "was 400 ..., now 404 ..."
        answer = status.last_detail
    ago = human_duration(status.now - last.at)
    return f"{last.outcome} ({answer or 'no answer'}), {ago} ago"


def expected_text(expected: Expected) -> str:
    """What the app's healthy answer is taken to be, and why."""
    answers = " | ".join(sorted(expected.answers))
    if expected.source == "learned":
        return f"{answers}: the app's own, learned before the migration ({expected.probes} answers)"
    if expected.source == "configuration":
        return f"{answers}: configured (checks.callback.expected_answers)"
    return (
        "any status of checks.callback.valid_status_codes: the app's own answer is learned while"
        " the migration is pending (none yet, or this monitor started after it)"
    )


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
