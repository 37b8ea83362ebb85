"""Helpers to build and run the monitor in-process against a test database."""

from __future__ import annotations

from typing import Any

from monitor.config.schema import Config
from monitor.daemon.service import Monitor
from monitor.output.redact import Redactor

# What the migration_run check exports only while the migration's session is seen (and
# building an index, for the ratio).
WHILE_RUNNING = frozenset(
    {"rollout_migration_statement_info", "rollout_migration_index_build_progress_ratio"}
)
# Exported only when the callback is https (tests/test_probe_tls.py shows them there).
OVER_TLS = frozenset(
    {
        "rollout_auth_callback_tls_info",
        "rollout_auth_callback_ssl_earliest_cert_expiry_timestamp_seconds",
    }
)


def make_config(url: str, **sections: Any) -> Config:
    """A Config for the URL, callback probe off unless a section turns it on."""
    data: dict[str, Any] = {"database": {"url": url}, "checks": {"callback": {"enabled": False}}}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Config.model_validate(data)


def run_once(config: Config) -> tuple[Monitor, bool]:
    """A fresh monitor (own registry) after one run of every check, and whether all succeeded."""
    monitor = Monitor(config, Redactor())
    try:
        _, ok = monitor.once()
    finally:
        monitor.close()
    return monitor, ok


def value(monitor: Monitor, metric: str, **labels: str) -> float | None:
    """One sample from the monitor's registry."""
    return monitor.registry.get_sample_value(metric, labels)


def outcome_count(monitor: Monitor, check: str, outcome: str) -> float | None:
    """How many runs of a check ended with the outcome."""
    return value(monitor, "rollout_check_runs_total", check=check, outcome=outcome)
