"""How a check joins the monitor, the way postgres_exporter's collectors do: each check file
registers a factory under its entry in the configuration (`checks.<key>`), and the factory gets
that entry's settings and the parts it asks for, nothing else. Adding a check is one new file
here plus its entry in config.ChecksConfig."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.checks.base import Check
from monitor.config.schema import AppConfig, LargeTablesSettings, MigrationConfig
from monitor.db.pool import Database
from monitor.observe.answers import ExpectedAnswers
from monitor.observe.metrics import Metrics
from monitor.observe.migration import MigrationTracker
from monitor.observe.probelog import ProbeLog
from monitor.observe.readings import Readings


@dataclass(frozen=True)
class Parts:
    """What the checks share: the pool, the app's tables, the migration, and where results go."""

    db: Database
    app: AppConfig
    migration: MigrationConfig
    large_tables: LargeTablesSettings
    application_name: str  # the monitor's own, in pg_stat_activity
    tracker: MigrationTracker
    readings: Readings
    metrics: Metrics
    log: ProbeLog  # where the callback check hands each probe
    expected_answers: ExpectedAnswers  # the app's own answers, as learned or configured


Factory = Callable[[Any, Parts], Check]


@dataclass(frozen=True)
class Registration:
    """A check's entry: its key in ChecksConfig, its place in a `once` run, its factory."""

    key: str
    order: int  # `once` runs the lowest first: the schema check, which the others read
    factory: Factory


_REGISTERED: dict[str, Registration] = {}


def register(key: str, order: int) -> Callable[[Factory], Factory]:
    """Register the decorated factory as the check of `checks.<key>`."""

    def add(factory: Factory) -> Factory:
        if key in _REGISTERED and _REGISTERED[key].factory is not factory:
            raise ValueError(f"check {key!r} is registered twice")
        _REGISTERED[key] = Registration(key, order, factory)
        return factory

    return add


def registered() -> list[Registration]:
    """Every check of this package (each module imported once), in `once` order."""
    package = importlib.import_module("monitor.checks")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"monitor.checks.{module.name}")
    return sorted(_REGISTERED.values(), key=lambda r: (r.order, r.key))
