"""The baseline's metric families, from a summary."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from monitor.judge.baseline.records import (
    SOURCES,
    Summary,
)
from monitor.judge.stats import Latencies
from monitor.observe.metrics import gauge, labelled_gauge, one_hot


def families(summary: Summary, frozen: bool, min_probes: int, source: str) -> list[Metric]:
    """The baseline gauges; the values only once enough probes are behind them."""
    result: list[Metric] = [
        gauge(
            "rollout_baseline_frozen",
            "1 once the migration left pending and the baseline is fixed, 0 while learning.",
            float(frozen),
        ),
        gauge(
            "rollout_baseline_auth_callback_probes",
            "Callback probes behind the baseline.",
            summary.probes,
        ),
        one_hot(
            "rollout_baseline_source",
            "1 for where the frozen baseline came from; none while it is being learned.",
            "source",
            SOURCES,
            source,
        ),
    ]
    if summary.probes < min_probes:
        return result
    return result + callback_families(summary) + database_families(summary)


def callback_families(summary: Summary) -> list[Metric]:
    """The callback's success ratio and latency quantiles, where known."""
    result: list[Metric] = []
    if summary.success_ratio is not None:
        result.append(
            gauge(
                "rollout_baseline_auth_callback_success_ratio",
                "Share of callback probes with outcome success before the migration.",
                summary.success_ratio,
            )
        )
    if summary.duration_seconds:
        result.append(
            labelled_gauge(
                "rollout_baseline_auth_callback_duration_seconds",
                "Callback probe latency before the migration, from the histogram's buckets.",
                ["quantile"],
                {(q,): v for q, v in summary.duration_seconds.items()},
            )
        )
    if (latencies := summary.latencies) is not None:
        result.append(answered_probes_family(latencies))
    return result


ANSWERED_PROBES = "rollout_baseline_auth_callback_answered_probes"


def answered_probes_family(latencies: Latencies) -> Metric:
    """The baseline's answered probes per latency bucket, cumulative like a histogram's: what
    the verdict's latency test needs of it."""
    bounds = [*(format_bound(b) for b in latencies.bounds), "+Inf"]
    counts = [*latencies.cumulative, latencies.total]
    return labelled_gauge(
        ANSWERED_PROBES,
        "Answered callback probes before the migration no slower than le seconds (cumulative).",
        ["le"],
        {(le,): float(count) for le, count in zip(bounds, counts, strict=True)},
    )


def format_bound(bound: float) -> str:
    """A bucket bound as prometheus_client writes le (0.005, 1.0, 10.0)."""
    return repr(float(bound))


def database_families(summary: Summary) -> list[Metric]:
    """The user lookup's time and plan and the connection usage, where known."""
    result: list[Metric] = []
    if summary.user_lookup_seconds is not None:
        result.append(
            gauge(
                "rollout_baseline_user_lookup_execution_seconds",
                "Median execution time of the login lookup before the migration (EXPLAIN ANALYZE).",
                summary.user_lookup_seconds,
            )
        )
    if (plan := summary.user_lookup_plan) is not None:
        result.append(
            labelled_gauge(
                "rollout_baseline_user_lookup_plan_info",
                "How the login lookup reached users before the migration: scan node and index.",
                ["node", "index"],
                {(plan.node, plan.index): 1.0},
            )
        )
    if summary.db_connections_ratio is not None:
        result.append(
            gauge(
                "rollout_baseline_db_connections_ratio",
                "Most client connections seen before the migration, over max_connections.",
                summary.db_connections_ratio,
            )
        )
    return result
