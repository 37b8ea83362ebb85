"""The callback baseline from Prometheus: the monitor's exported gauges, or the hour before."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.baseline import QUANTILES, Summary
from monitor.criteria import BaselineView
from monitor.promapi import Prometheus, Sample
from monitor.verdict.query import Selector, exact_increase

HISTORY_SECONDS = 3600.0  # the probes of the hour before the migration stand in for a baseline
REQUESTS = "rollout_auth_callback_requests_total"
BUCKETS = "rollout_auth_callback_duration_seconds_bucket"


def window_counts(
    prom: Prometheus,
    select: Selector,
    end: float,
    seconds: float,
    quantiles: Sequence[str] = QUANTILES,
) -> tuple[int, int, dict[str, float]]:
    """Probes, successes and latency quantiles of the `seconds` before `end`, all replicas."""
    by_outcome = prom.vector(f"sum by (outcome) ({exact_increase(select(REQUESTS), seconds)})", end)
    probes = round(sum(s.value for s in by_outcome))
    successes = round(sum(s.value for s in by_outcome if s.labels.get("outcome") == "success"))
    buckets = f"sum by (le) ({exact_increase(select(BUCKETS), seconds)})"
    found = {}
    for q in quantiles:
        value = prom.scalar(f"histogram_quantile({q}, {buckets})", end)
        if value is not None:
            found[q] = value
    return probes, successes, found


def baseline_before(
    prom: Prometheus, selector: str, applied_at: float, window_seconds: float = HISTORY_SECONDS
) -> Summary | None:
    """The callback's summary over the window before the migration, or None without a probe.

    The same computations as the verdict's window (exact counter increases over every replica,
    histogram_quantile over the summed buckets), so like compares with like. `selector` is
    --selector's label matchers ("" for none). Raises PrometheusError when Prometheus cannot
    answer, SelectorError (a ValueError) for matchers that are not.
    """
    probes, successes, quantiles = window_counts(
        prom, Selector.parse(selector), applied_at, window_seconds
    )
    if probes == 0:
        return None
    return Summary(probes=probes, success_ratio=successes / probes, duration_seconds=quantiles)


def exported_baseline(prom: Prometheus, select: Selector, at: float) -> Summary | None:
    """The frozen baseline a monitor exports (rollout_baseline_*); of several, the most probes."""
    frozen = prom.vector(
        f"{select('rollout_baseline_auth_callback_probes')}"
        f" and {select('rollout_baseline_frozen')} == 1",
        at,
    )
    if not frozen:
        return None
    # Deterministic among equals: the most probes, then the first by labels.
    best = min(frozen, key=lambda s: (-s.value, sorted(s.labels.items())))
    ratio = _matching(prom.vector(select("rollout_baseline_auth_callback_success_ratio"), at), best)
    durations = prom.vector(select("rollout_baseline_auth_callback_duration_seconds"), at)
    quantiles = {
        q: value
        for q in QUANTILES
        if (value := _matching([s for s in durations if s.labels.get("quantile") == q], best))
        is not None
    }
    return Summary(probes=round(best.value), success_ratio=ratio, duration_seconds=quantiles)


def _matching(samples: Sequence[Sample], target: Sample) -> float | None:
    """The value of the sample with the target's labels (quantile aside), if there is one."""
    want = {k: v for k, v in target.labels.items() if k != "__name__"}
    for sample in samples:
        labels = {k: v for k, v in sample.labels.items() if k not in ("__name__", "quantile")}
        if labels == want:
            return sample.value
    return None


def choose_baseline(
    prom: Prometheus, select: Selector, applied_at: float, at: float, min_probes: int
) -> BaselineView | None:
    """The monitor's exported baseline if it has enough probes, else Prometheus's history.

    Neither has enough: the one with more probes, so the reason names how many there were.
    """
    exported = exported_baseline(prom, select, at)
    if exported is not None and exported.probes >= min_probes:
        return view(exported, "monitor")
    history = baseline_before(prom, select.matchers, applied_at)
    candidates = ((history, "prometheus_history"), (exported, "monitor"))
    known = [(summary, source) for summary, source in candidates if summary is not None]
    if not known:
        return None
    summary, source = max(known, key=lambda pair: pair[0].probes)
    return view(summary, source)


def view(summary: Summary, source: str) -> BaselineView:
    """The criteria's view of a baseline summary."""
    return BaselineView(
        probes=summary.probes,
        success_ratio=summary.success_ratio,
        p95_seconds=summary.duration_seconds.get("0.95"),
        source=source,
    )
