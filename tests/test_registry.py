"""Checks register themselves (issue 13): every entry of the configuration's `checks` has a
check file that registers it, and the monitor builds them from the registry alone."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.checks import build_checks
from monitor.checks.registry import registered
from monitor.config.checks import ChecksConfig
from monitor.config.schema import Config
from monitor.db.pool import Database
from monitor.observe.metrics import Metrics
from monitor.observe.migration import MigrationTracker
from monitor.observe.probelog import ProbeLog
from monitor.observe.readings import Readings

ORDER = [
    "schema",
    "drift",
    "migration_run",
    "backfill",
    "connections",
    "activity",
    "query_performance",
    "pool",
]


def checks_of(config: Config) -> list[str]:
    db = Database(config.database, "postgresql://nobody@127.0.0.1:1/none", lambda _: None)
    built = build_checks(
        config,
        db,
        Metrics(CollectorRegistry()),
        tracker=MigrationTracker(),
        log=ProbeLog(),
        readings=Readings(),
    )
    return [check.name for check in built]


def test_every_config_entry_has_a_registered_check_and_none_more() -> None:
    keys = {registration.key for registration in registered()}
    assert keys == set(ChecksConfig.model_fields) - {"sql"}


def test_the_checks_are_built_in_once_order_from_the_registry() -> None:
    assert registered()[0].key == "schema_check"
    assert checks_of(Config()) == [*ORDER, "callback"]


def test_a_disabled_check_is_not_built() -> None:
    config = Config.model_validate({"checks": {"drift": {"enabled": False}}})
    assert checks_of(config) == [name for name in [*ORDER, "callback"] if name != "drift"]
