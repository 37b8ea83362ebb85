"""One fault, one page, start to resolution (issue 20): every demo fault at once, through the
shipped rules (promtool's rule manager) and the example Alertmanager configuration (a real
Alertmanager, timers scaled), to a webhook on 127.0.0.1. See alert_timeline.py for the world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alert_timeline import (
    FAULTS,
    HEAL,
    JOBS,
    ONSET,
    Labels,
    Notification,
    replayed,
    rule_timeline,
)

from monitor.demo.app import FAULTS as DEMO_FAULTS

SEED = 20
RESOLVED_WITHIN = 300  # s after the fault's end
# The page each fault should raise (slow_callback is a latency ticket, never a page).
PAGE = {
    "callback_5xx": "RolloutCallbackDown",
    "trigger_bug": "RolloutTokensWronglyInvalid",
    "lock_queue": "RolloutSessionsBlockedByDDL",
    "route_404": "RolloutCallbackDown",  # a proxy's 404: unexpected_answer, every probe
}


@pytest.fixture(scope="module")
def timeline(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[Labels]]:
    """The firing alerts at each evaluation, from promtool's rule manager."""
    return rule_timeline(tmp_path_factory.mktemp("rules"), SEED)


@pytest.fixture(scope="module")
def notifications(
    timeline: dict[int, list[Labels]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Notification]]:
    """Every webhook call of the replay into Alertmanager."""
    yield from replayed(timeline, tmp_path_factory.mktemp("alertmanager"))


def pages(notifications: list[Notification], job: str) -> list[Notification]:
    """The pager's notifications of one job's groups."""
    return [n for n in notifications if n.receiver == "pager" and n.group.get("job") == job]


def test_the_rules_fire_each_faults_page(timeline: dict[int, list[Labels]]) -> None:
    """The replay could not page if nothing fired: each fault's page does, at some evaluation."""
    fired = {
        (dict(a).get("job"), dict(a)["alertname"]) for alerts in timeline.values() for a in alerts
    }
    assert set(PAGE.items()) <= fired


@pytest.mark.parametrize("job", JOBS)
def test_each_fault_pages_once_and_resolves_within_5_minutes_of_its_end(
    notifications: list[Notification], job: str
) -> None:
    """Exactly one firing page per fault (none for the latency ticket and the healthy job),
    during the fault; its one resolved notification within 5 minutes of the heal; nothing after."""
    got = pages(notifications, job)
    firing = [n for n in got if n.status == "firing"]
    resolved = [n for n in got if n.status == "resolved"]
    shown = "\n".join(f"{n.at - ONSET:7.0f}s {n.status} {n.alertnames}" for n in got)
    if job not in PAGE:
        assert got == [], shown
        return
    assert len(firing) == 1, shown
    assert firing[0].alertnames == (PAGE[job],), shown
    assert ONSET < firing[0].at < HEAL, shown
    assert len(resolved) == 1, shown
    assert resolved[0].at > firing[0].at, shown
    assert resolved[0].at - HEAL <= RESOLVED_WITHIN, shown


def test_the_world_has_every_fault_of_the_demo() -> None:
    assert set(FAULTS) == set(DEMO_FAULTS)
