"""The quantile maths: a summary of probes (or of the operator's fixed values), and a
quantile from histogram buckets as histogram_quantile computes it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from monitor.config.schema import FixedBaseline
from monitor.judge.baseline.records import (
    QUANTILES,
    Probe,
    Summary,
)
from monitor.judge.stats import Latencies
from monitor.observe.answers import learned
from monitor.observe.metrics import PROBE_BUCKETS


def bucket_quantile(q: float, bounds: Sequence[float], values: Sequence[float]) -> float | None:
    """The q-quantile of values in buckets with these upper bounds, as histogram_quantile does."""
    return Latencies.of(values, bounds).quantile(q)


def summarize(probes: Sequence[Probe], bounds: Sequence[float] = PROBE_BUCKETS) -> Summary:
    """The summary of these probes; latency from those that have one (answered,
    or timed out: their wait), like the histogram."""
    answered = [p.duration_seconds for p in probes if p.duration_seconds is not None]
    successes = sum(1 for p in probes if p.outcome == "success")
    latencies = Latencies.of(answered, bounds)
    quantiles = {q: latencies.quantile(float(q)) for q in QUANTILES}
    lookups = [p.user_lookup_seconds for p in probes if p.user_lookup_seconds is not None]
    plans = [p.user_lookup_plan for p in probes if p.user_lookup_plan is not None]
    ratios = [p.db_connections_ratio for p in probes if p.db_connections_ratio is not None]
    shapes = [p.answer for p in probes if p.outcome == "success" and p.answer is not None]
    return Summary(
        probes=len(probes),
        success_ratio=successes / len(probes) if probes else None,
        duration_seconds={q: v for q, v in quantiles.items() if v is not None},
        user_lookup_seconds=statistics.median(lookups) if lookups else None,
        user_lookup_plan=plans[-1] if plans else None,
        db_connections_ratio=max(ratios) if ratios else None,
        bucket_counts=latencies.cumulative,
        answered=latencies.total,
        answers=learned(shapes),
        answers_from=len(shapes),
    )


def configured(fixed: FixedBaseline, min_probes: int) -> Summary:
    """The operator's baseline; it stands for min_probes probes, so that it is used."""
    quantiles = {"0.5": fixed.p50, "0.95": fixed.p95, "0.99": fixed.p99}
    return Summary(
        probes=min_probes,
        success_ratio=fixed.success_ratio,
        duration_seconds={q: v for q, v in quantiles.items() if v is not None},
        user_lookup_seconds=fixed.user_lookup_execution,
        db_connections_ratio=fixed.db_connections_ratio,
    )
