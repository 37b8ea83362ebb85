"""The verdict for people (a table) and for pipelines (JSON, schema_version 1)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.judge.criteria import overall
from monitor.judge.observation import BaselineView, Decision, Result, Thresholds
from monitor.judge.window import Window

SCHEMA_VERSION = 1
EXIT_CODES: dict[Result, int] = {"pass": 0, "fail": 1, "inconclusive": 3}


@dataclass(frozen=True)
class Verdict:
    """Every criterion's decision over one window, and what they were decided against."""

    window: Window
    baseline: BaselineView | None
    thresholds: Thresholds
    decisions: Sequence[Decision]

    @property
    def result(self) -> Result:
        """pass, fail or inconclusive, for the whole rollout."""
        return overall(self.decisions)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 3 inconclusive."""
        return EXIT_CODES[self.result]


def rfc3339(unix: float | None) -> str | None:
    """UTC, with a Z; milliseconds only when the time has them."""
    if unix is None:
        return None
    moment = datetime.fromtimestamp(round(unix, 3), UTC)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def as_json(verdict: Verdict) -> str:
    """The stable JSON document (schema_version 1), documented in docs/verdict.md."""
    return json.dumps(as_document(verdict), indent=2)


def as_document(verdict: Verdict) -> dict[str, Any]:
    """The JSON document's contents (as_json), for a caller that adds keys of its own."""
    w, b, t = verdict.window, verdict.baseline, verdict.thresholds
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": verdict.result,
        "exit_code": verdict.exit_code,
        "window": {
            "name": w.name,
            "seconds": w.seconds,
            "start": rfc3339(w.start),
            "end": rfc3339(w.end),
            "complete": w.complete,
        },
        "evaluated_at": rfc3339(w.at),
        "applied_at": rfc3339(w.applied_at),
        "started_at": rfc3339(w.started_at),
        "baseline": {
            "source": "none" if b is None else b.source,
            "probes": 0 if b is None else b.probes,
            "success_ratio": None if b is None else b.success_ratio,
            "p95_seconds": None if b is None else b.p95_seconds,
        },
        "thresholds": {
            "objective": t.objective,
            "min_probes": t.min_probes,
            "latency_tolerance": t.latency_tolerance,
        },
        "criteria": [
            {
                "criterion": d.criterion,
                "title": d.title,
                "result": d.result,
                "reason": d.reason,
                "observed": d.observed,
            }
            for d in verdict.decisions
        ],
    }


def as_table(verdict: Verdict) -> str:
    """A header (verdict, window, applied time, baseline) and one row per criterion."""
    w, b = verdict.window, verdict.baseline
    if w.applied_at is None:
        window = f"window {w.name}: no applied time in Prometheus"
    else:
        done = "complete" if w.complete else "not over"
        window = f"window {w.name} {rfc3339(w.start)} .. {rfc3339(w.end)} ({done})"
    source = "none" if b is None else f"{b.source}, {b.probes} probes"
    lines = [
        f"verdict: {verdict.result.upper()} (exit {verdict.exit_code})",
        f"{window}; evaluated at {rfc3339(w.at)}; baseline: {source}",
        "",
    ]
    rows = [("CRITERION", "RESULT", "REASON")]
    rows += [(d.criterion, d.result, d.reason) for d in verdict.decisions]
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    lines += [f"{c:<{width[0]}}  {r:<{width[1]}}  {why}".rstrip() for c, r, why in rows]
    return "\n".join(lines)
