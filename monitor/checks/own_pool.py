"""The monitor's own connection pool, from psycopg_pool's statistics (memory only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client.metrics_core import Metric

from monitor.checks.registry import Parts, register
from monitor.config.checks import FastCheckSettings
from monitor.observe.metrics import counter, gauge

GAUGES = {
    "pool_min": ("rollout_monitor_pool_min_size", "Minimum connections the monitor keeps."),
    "pool_max": ("rollout_monitor_pool_max_size", "Cap on the monitor's connections."),
    "pool_size": (
        "rollout_monitor_pool_connections",
        "Connections the monitor has open or opening.",
    ),
    "pool_available": ("rollout_monitor_pool_idle_connections", "The monitor's idle connections."),
    "requests_waiting": (
        "rollout_monitor_pool_waiting_requests",
        "Checks waiting for one of the monitor's connections.",
    ),
}
COUNTERS = {
    "requests_num": ("rollout_monitor_pool_requests_total", "Connections asked of the pool."),
    "requests_errors": (
        "rollout_monitor_pool_request_errors_total",
        "Requests for a connection that failed (timeout or pool closed).",
    ),
    "connections_num": ("rollout_monitor_pool_connects_total", "Connection attempts to Postgres."),
    "connections_errors": (
        "rollout_monitor_pool_connect_errors_total",
        "Connection attempts to Postgres that failed.",
    ),
    "connections_lost": (
        "rollout_monitor_pool_connections_lost_total",
        "Connections found broken when checked out.",
    ),
}


class PoolCheck:
    """Exports the pool's size, idle and waiting counts, and its cumulative counters."""

    name = "pool"

    def __init__(self, stats: Callable[[], dict[str, int]], interval: float) -> None:
        self._stats = stats
        self.interval = interval

    def run(self) -> Sequence[Metric]:
        """Read the statistics; no database access."""
        stats = self._stats()
        return [
            *(gauge(name, doc, stats.get(key, 0)) for key, (name, doc) in GAUGES.items()),
            *(counter(name, doc, stats.get(key, 0)) for key, (name, doc) in COUNTERS.items()),
        ]


@register("pool", order=6)
def _build(settings: FastCheckSettings, parts: Parts) -> PoolCheck:
    return PoolCheck(parts.db.stats, settings.interval)
