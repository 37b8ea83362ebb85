"""Reads change nothing (issue 18): a scrape, a page render, the criteria and the baseline's
summary read what events wrote (a probe logged, the migration's view published); any number of
them between two events, at any time, leave every output and every record as they were.

Before: LiveView.observation() followed the migration itself (it reset, trimmed and admitted
probes, and set when the migration left), Baseline.summary() froze the baseline, and the probe
log trimmed itself on a read."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from worlds import Watching

from monitor.http.status.now import Vitals
from monitor.http.status.page import StatusPage
from monitor.judge.rollout import WINDOW_SECONDS
from monitor.observe.readings import Backfill, Drift, Logins, SchemaHealth
from monitor.output.redact import Redactor


def page_of(world: Watching) -> StatusPage:
    return StatusPage(
        migration="m",
        tracker=world.tracker,
        judgement=world.judgement,
        baseline=world.baseline,
        log=world.log,
        vitals=Vitals,
        redact=Redactor(),
        clock=world.clock,
    )


def records(world: Watching) -> dict[str, Any]:
    """Everything the events wrote: the log, the window and its times, the baseline."""
    live, baseline = world.live, world.baseline
    return {
        "log": [id(o) for o in world.log._entries],
        "window": [id(o) for o in live._window.probes],
        "counts": (live._window.successes, list(live._window.buckets)),
        "times": (live._applied_at, live._started_at, live._left_at, live._last_look),
        "baseline": (baseline._frozen, baseline._learned, baseline._confirmed_until),
    }


def outputs(world: Watching) -> tuple[Any, ...]:
    """What a scrape, a page load and the criteria show."""
    registry = CollectorRegistry()
    registry.register(world.baseline)
    registry.register(world.judgement)
    samples = [(s.name, s.labels, s.value) for f in registry.collect() for s in f.samples]
    return (
        samples,
        page_of(world).render(),
        world.judgement.decisions(),
        world.baseline.summary(),
        world.baseline.source,
    )


def read_everything(world: Watching, times: int = 5) -> None:
    for _ in range(times):
        outputs(world)
        world.judgement.baseline_health()
        world.log.entries()


def test_reads_between_two_events_change_no_output_and_no_record() -> None:
    world = Watching(min_probes=3)
    world.publish("pending")
    for _ in range(4):
        world.probe(0.02)
        world.publish("pending")
    world.readings.publish("schema", SchemaHealth(True, True, trigger_missing=False))
    world.readings.publish("drift", Drift(1.0, 0.0))
    world.readings.publish("backfill", Backfill({"threadsFullName": 3.0}))
    world.readings.publish("activity", Logins(2.0, 0.0))
    world.clock.now += 5
    # The migration's run, then applied: published, so the baseline freezes now, not at a read.
    world.publish("pending", started_at=world.clock.now, running=True)
    written = records(world)
    read_everything(world)
    assert records(world) == written
    world.probe(0.5, "timeout")
    world.publish("applied", applied_at=world.clock.now, started_at=world.clock.now - 15)
    for _ in range(3):
        world.probe(0.03)
    written, shown = records(world), outputs(world)
    read_everything(world)
    assert records(world) == written
    assert outputs(world) == shown


def test_time_passing_moves_what_reads_count_but_not_what_is_kept() -> None:
    """A day later the window's probes fall out of what a read counts; only the next event
    drops them."""
    world = Watching(fixed={"success_ratio": 1.0, "p95": "20ms"})
    world.publish("applied", applied_at=world.clock.now)
    for _ in range(3):
        world.probe(0.02)
    assert world.judgement.observation().probes == 3
    written = records(world)
    world.clock.now += WINDOW_SECONDS + 60
    read_everything(world)
    assert world.judgement.observation().probes == 0
    assert records(world) == written
    world.probe(0.02)
    assert len(world.live._window.probes) == 1
    assert world.judgement.observation().probes == 1


def test_leaving_the_applied_state_is_seen_when_published_not_when_read() -> None:
    """The old view noticed a departure from applied at its next read: a scrape's time became
    the window's `left_at`. Now it is the publish's."""
    world = Watching(fixed={"success_ratio": 1.0, "p95": "20ms"})
    world.publish("applied", applied_at=world.clock.now)
    world.probe(0.02)
    world.publish("rolled_back")
    left = world.clock.now
    world.clock.now += 100
    read_everything(world)
    assert world.live._left_at == left
