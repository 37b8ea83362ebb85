"""The callback baseline from Prometheus: the monitor's exported gauges, or the hour before."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor.config.schema import BaselineSettings
from monitor.judge.baseline import ANSWERED_PROBES, QUANTILES, Fetch, Summary
from monitor.judge.observation import BaselineView
from monitor.judge.stats import Latencies
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.promql.query import Selector, exact_increase, promql_duration

if TYPE_CHECKING:
    from monitor.promql.api import Prometheus, Sample

# The fetch runs in the probe's thread: a Prometheus that does not answer delays one probe by
# at most four queries of this, once a minute, and only while the baseline is too thin.
PROMETHEUS_TIMEOUT_SECONDS = 5.0
HISTORY_SECONDS = 3600.0  # the probes of the hour before the migration stand in for a baseline
REQUESTS = "rollout_auth_callback_requests_total"
BUCKETS = "rollout_auth_callback_duration_seconds_bucket"
STATE = "rollout_migration_state"
RUNNING = "rollout_migration_running"
# How far before the applied time to look for the last sample of the migration pending, and the
# subquery's step: each scrape is found when scraped at most this often, else one up to a step
# earlier (a baseline ending a little early, never one holding the migration's run).
PENDING_LOOKBACK = "1d"
PENDING_STEP = "15s"
# The first applied scrape is searched again over the 15 s before the one found, at 1 s steps.
FINE_STEP = "1s"
FINE_SPAN = 15.0


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


def window_latencies(
    prom: Prometheus, select: Selector, end: float, seconds: float
) -> Latencies | None:
    """The answered probes of the `seconds` before `end` by latency bucket, all replicas."""
    by_le = prom.vector(f"sum by (le) ({exact_increase(select(BUCKETS), seconds)})", end)
    return latencies_of(by_le)


def latencies_of(samples: Sequence[Sample]) -> Latencies | None:
    """Cumulative bucket samples (label le) as Latencies; None unless the monitor's own buckets
    are all there (a replica with other buckets would make the counts disagree)."""
    counts = {_bound(s.labels.get("le", "")): round(s.value) for s in samples}
    total = counts.pop(math.inf, None)
    if total is None or sorted(counts) != list(PROBE_BUCKETS):
        return None
    return Latencies(PROBE_BUCKETS, tuple(counts[b] for b in PROBE_BUCKETS), total)


def _bound(le: str) -> float:
    try:
        return float(le)
    except ValueError:
        return math.nan


def last_pending(prom: Prometheus, select: Selector, applied_at: float) -> float | None:
    """When a replica last exported the migration pending, at or before the applied time.

    Prisma's finished_at is the end of the migration's run (index builds, lock queues), which the
    schema check sees as running or partial: the last pending scrape with no run under way is the
    baseline's end, not finished_at.
    timestamp() of the selector itself gives the scrape's own time, not the subquery's step.
    """
    pending = select(STATE, state="pending")
    # Pending with its run under way (a lock queue) is the migration, not before it.
    running = f"{select(RUNNING)} == 1"
    quiet = f"{pending} == 1 unless ignoring (state) {running}"
    seen = f"(timestamp({pending}) and {quiet})[{PENDING_LOOKBACK}:{PENDING_STEP}]"
    found = prom.scalar(f"max(max_over_time({seen}))", applied_at)
    return None if found is None else min(found, applied_at)


def first_applied(
    prom: Prometheus, select: Selector, applied_at: float, end: float
) -> float | None:
    """When a replica first exported the migration applied, from the applied time to `end`:
    the scrape from which its counters hold no more of the run's probes (a probe answered just
    before the applied time is counted at the scrape after it, and the schema check sees the
    application a look late). None when none did.

    A subquery step sees the last scrape at or before it, so the search at 15 s steps finds a
    scrape up to a step after the first one, or none after its last step; the 15 s before it
    (or before `end`) are searched again at 1 s steps."""
    if end <= applied_at:
        return None
    coarse = _first_applied_seen(prom, select, applied_at, end, PENDING_STEP)
    top = end if coarse is None else coarse
    start = max(applied_at, top - FINE_SPAN)
    fine = _first_applied_seen(prom, select, start, top, FINE_STEP) if top > start else None
    found = [t for t in (coarse, fine) if t is not None]
    return min(found) if found else None


def _first_applied_seen(
    prom: Prometheus, select: Selector, since: float, end: float, step: str
) -> float | None:
    """The earliest scrape at or after `since` exporting the migration applied, as subquery
    steps of `step` up to `end` see them (each the last scrape at or before it)."""
    applied = select(STATE, state="applied")
    span = promql_duration(end - since)
    seen = f"(timestamp({applied}) >= {since:.3f} and {applied} == 1)[{span}:{step}]"
    return prom.scalar(f"min(min_over_time({seen}))", end)


def baseline_before(
    prom: Prometheus,
    selector: str,
    applied_at: float,
    window_seconds: float = HISTORY_SECONDS,
    started_at: float | None = None,
) -> Summary | None:
    """The callback's summary over the window before the migration, or None without a probe.

    The window ends at the last scrape that saw the migration pending (at or before applied_at);
    none in the day before: None, since which probes came before the migration is unknown. The
    same computations as the verdict's window (exact counter increases over every replica,
    histogram_quantile over the summed buckets), so like compares with like. `selector` is
    --selector's label matchers ("" for none). Raises PrometheusError when Prometheus cannot
    answer, SelectorError (a ValueError) for matchers that are not. With the run's start known,
    the window ends there at the latest: the schema check sees the run a look late, and the
    probes meanwhile are the run's, not the baseline's.
    """
    select = Selector.parse(selector)
    end = last_pending(prom, select, applied_at)
    if end is None:
        return None
    if started_at is not None and started_at <= applied_at:
        end = min(end, started_at)
    probes, successes, quantiles = window_counts(prom, select, end, window_seconds)
    if probes <= 0:
        return None
    latencies = window_latencies(prom, select, end, window_seconds)
    return Summary(
        probes=probes,
        success_ratio=successes / probes,
        duration_seconds=quantiles,
        bucket_counts=() if latencies is None else latencies.cumulative,
        answered=None if latencies is None else latencies.total,
    )


def exported_baseline(prom: Prometheus, select: Selector, at: float) -> BaselineView | None:
    """The frozen baseline a monitor exports (rollout_baseline_*) with a success ratio and a p95;
    of several, the most probes. Its source as the monitor exports it (monitor if it does not)."""
    frozen = prom.vector(
        f"{select('rollout_baseline_auth_callback_probes')}"
        f" and {select('rollout_baseline_frozen')} == 1",
        at,
    )
    ratios = prom.vector(select("rollout_baseline_auth_callback_success_ratio"), at)
    p95s = prom.vector(
        select("rollout_baseline_auth_callback_duration_seconds", quantile="0.95"), at
    )
    sources = prom.vector(f"{select('rollout_baseline_source')} == 1", at)
    answered = prom.vector(select(ANSWERED_PROBES), at)
    complete = [
        BaselineView(
            probes=round(replica.value),
            success_ratio=ratio,
            p95_seconds=p95,
            source=_matching(sources, replica).get("source", "monitor"),
            latencies=latencies_of(_all_matching(answered, replica)),
        )
        for replica in sorted(frozen, key=lambda s: sorted(s.labels.items()))
        if (ratio := _value(ratios, replica)) is not None
        and (p95 := _value(p95s, replica)) is not None
    ]
    # Deterministic among equals: the first by labels.
    return max(complete, key=lambda v: v.probes, default=None)


def _matching(samples: Sequence[Sample], target: Sample) -> dict[str, str]:
    """The labels of the sample of the target's replica (its own label aside), or none."""
    return next((s.labels for s in _all_matching(samples, target)), {})


def _all_matching(samples: Sequence[Sample], target: Sample) -> list[Sample]:
    """Every sample of the target's replica (its own labels aside)."""
    want = _replica(target.labels)
    return [s for s in samples if _replica(s.labels) == want]


def _value(samples: Sequence[Sample], target: Sample) -> float | None:
    """The value of the sample of the target's replica, if there is one."""
    return next((s.value for s in _all_matching(samples, target)), None)


def _replica(labels: dict[str, str]) -> dict[str, str]:
    """The labels naming a monitor replica: the series' own (name, quantile, source) aside."""
    return {k: v for k, v in labels.items() if k not in ("__name__", "quantile", "source", "le")}


def choose_baseline(  # noqa: PLR0917  # the window's parts, in its order
    prom: Prometheus,
    select: Selector,
    applied_at: float,
    at: float,
    min_probes: int,
    started_at: float | None = None,
) -> BaselineView | None:
    """The monitor's exported baseline if it has enough probes, else Prometheus's history.

    Neither has enough: the one with more probes, so the reason names how many there were.
    """
    exported = exported_baseline(prom, select, at)
    if exported is not None and exported.probes >= min_probes:
        return exported
    history = baseline_before(prom, select.matchers, applied_at, started_at=started_at)
    candidates = (None if history is None else history.view("prometheus_history"), exported)
    return max((c for c in candidates if c is not None), key=lambda v: v.probes, default=None)


def history_fetch(settings: BaselineSettings) -> Fetch | None:
    """The callback's summary over the baseline window before the migration, from Prometheus
    (baseline.prometheus_url); None when no URL is configured."""
    url, selector = settings.prometheus_url, settings.prometheus_selector
    if url is None:
        return None

    def fetch(applied_at: float) -> Summary | None:
        # Prometheus's client (httpx) is loaded when first asked, not at start.
        from monitor.promql.api import Prometheus  # noqa: PLC0415

        with Prometheus(url, PROMETHEUS_TIMEOUT_SECONDS) as prometheus:
            return baseline_before(prometheus, selector, applied_at, settings.window)

    return fetch
