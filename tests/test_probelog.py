"""The one record of the probes: every view (baseline, window, page) reads the same records."""

from __future__ import annotations

import time

from clocks import Clock
from databases import FreshDatabase
from rollouts import closing, learn, look, migrate, monitor_for, probe, scripted_server

from monitor.http.status.history import last_hour
from monitor.observe.probe import ProbeResult
from monitor.observe.probelog import Around, Observed, ProbeLog
from monitor.observe.readings import Backfill, Connections, Drift, Lookup, Readings

NOW = 1_790_000_000.0


def answer(status: int | None = 401, seconds: float = 0.02) -> ProbeResult:
    """A probe result: answered with the status, or (None) no answer."""
    outcome = "success" if status is not None else "timeout"
    return ProbeResult(outcome, seconds, status, detail="" if status else "no answer by then")


def test_a_record_keeps_the_probe_and_what_the_checks_reported_around_it() -> None:
    readings = Readings()
    readings.publish("drift", Drift(4, 1))
    readings.publish("backfill", Backfill({"threadsFullName": 3}))
    readings.publish("query_performance", Lookup(0.002, "Index Scan", "idx"))
    readings.publish("connections", Connections(20, 100, 0, 0))
    log = ProbeLog(readings, lambda: True, Clock(NOW))
    first = log.record(answer())
    second = log.record(answer(None, 3.0))
    expected_around = Around(4, 1, (("threadsFullName", 3),), 0.002, ("Index Scan", "idx"), 0.2)
    assert first == Observed(NOW, "success", 401, 0.02, "", True, expected_around)
    assert second == Observed(
        NOW, "timeout", None, None, "no answer by then", True, first.around, waited=3.0
    )
    assert (first.latency, second.latency) == (0.02, 3.0)
    assert second.around is first.around  # shared until a check reports again
    readings.publish("drift", Drift(4, 2))
    assert log.record(answer()).around.wrongly_invalid == 2


def test_the_log_keeps_its_span_and_capacity_and_merges_what_is_restored() -> None:
    clock = Clock(NOW)
    log = ProbeLog(clock=clock, span=7200.0, capacity=4)
    for step in range(3):
        clock.now = NOW + step * 3600
        log.record(answer())
    assert [o.at - NOW for o in log.entries()] == [3600, 7200]  # the first is two hours old
    log.restore([Observed(NOW + 5000, "success"), Observed(NOW + 3600, "success", 401, 0.02)])
    assert [o.at - NOW for o in log.entries()] == [3600, 5000, 7200]  # once each, in order
    assert [o.at - NOW for o in log.since(NOW + 5000)] == [5000, 7200]
    for _ in range(3):
        log.record(answer())
    assert len(log.entries()) == 4


def test_each_probe_is_one_record_every_view_shares(fresh_db: FreshDatabase) -> None:
    """The baseline learns from the log's quiet records, the window since the migration counts
    the very same records after it, and the page draws the log's last hour."""
    answers = [(401, 0.0)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=3)) as m,
    ):
        learn(m, 3)
        migrate(fresh_db)
        look(m)
        probe(m, 2)
        records = m.memory.log.entries()
        assert len(records) == 5  # one record per probe, whichever view reads it
        assert [o.quiet for o in records] == [True, True, True, False, False]
        summary = m.memory.baseline.summary()
        assert summary is not None
        assert summary.probes == 3
        window = m.memory.live._window.probes  # the records themselves, not copies
        assert len(window) == 2
        assert all(any(o is r for r in records) for o in window)
        assert last_hour(m.memory.log, time.time()) == records
