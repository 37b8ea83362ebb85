"""The project's own names the dashboard is built from, checked: a criterion, migration state,
rollout phase or alert the dashboard names but the project does not have stops the build, and
so does one the project has but the dashboard leaves out."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from monitor.assets import rule_groups


class UnknownName(ValueError):
    """The dashboard names a criterion, state, phase or alert the project does not have."""


def same_names(what: str, used: Sequence[str], known: Sequence[str]) -> None:
    if sorted(used) != sorted(known):
        raise UnknownName(f"{what}: the dashboard has {sorted(used)}, the project {sorted(known)}")


@cache
def alert_names() -> frozenset[str]:
    groups = rule_groups(("alerts/alerting.rules.yml",))
    return frozenset(
        rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule
    )


def alert(name: str) -> str:
    """The name of an alert of alerts/alerting.rules.yml, for a description."""
    if name not in alert_names():
        raise UnknownName(f"alert {name!r} is not in alerts/alerting.rules.yml")
    return name
