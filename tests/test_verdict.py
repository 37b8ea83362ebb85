"""`rollout-monitor verdict` against a real Prometheus holding generated rollouts (one job each).

Every scenario is two monitor replicas scraped every 15 s, migration applied at 01:00:07 on
2026-11-01 (tests/prometheus_blocks.py). Unless a test says otherwise the verdict is asked at
02:30 about the 1h window, so the window is 01:00:07..02:00:07 and complete: it counts what the
scrapes after 01:00:00 (the last one at or before the start) up to 02:00:00 saw. Expected numbers
come from the scenarios' own probes and from histogram_quantile's interpolation worked out by hand.

Latency in every scenario: per replica 9 in 10 probes take 45 ms (bucket 0.04..0.05], every tenth
70 ms (0.06..0.075]; 240 probes per replica an hour, 480 for the two. The p95 rank is
0.95 x 480 = 456: past the 432 at or below 0.05, so 0.06 + 0.015 x (456 - 432) / 48 = 0.0675 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from clocks import Clock
from prometheus_api import (
    answer_by_query,
    answer_with,
    endless_body,
    hostile_prometheus,
    trickled_body,
    vector_body,
)
from prometheus_blocks import (
    APPLIED,
    APPLIED_AT,
    BASE,
    EXPORTED_BASELINE,
    INSTANCES,
    TIMES,
    LoadedPrometheus,
    Probe,
    Scenario,
    healthy_applied_at,
    healthy_probe,
    healthy_state,
    loaded_prometheus,
    seen_applied_from,
    step,
)
from worlds import Watching

from monitor.cli import main
from monitor.config.schema import BaselineSettings
from monitor.demo.postgres import free_port
from monitor.http.gates import respond
from monitor.judge.baseline import Summary
from monitor.judge.gate import Gate
from monitor.judge.history import baseline_before
from monitor.judge.observation import Thresholds
from monitor.observe.migration import MigrationView
from monitor.observe.probe import ProbeResult
from monitor.observe.readings import Drift, Logins, Readings, SchemaHealth
from monitor.output.redact import Redactor
from monitor.promql.api import Prometheus

AT = "2026-11-01T02:30:00Z"
DEADLINE = 3.0  # the callback's default timeout: a probe that timed out is observed at it
HOUR = 3600
P95 = 0.0675


def slower(instance: str, t: int) -> Probe | None:
    """30% slower after the migration: 58.5 ms and 91 ms."""
    probe = healthy_probe(instance, t)
    if t <= APPLIED or probe is None or probe.duration is None:
        return probe
    return Probe(probe.outcome, round(probe.duration * 1.3, 6))


def failing(instance: str, t: int) -> Probe | None:
    """After the migration 1 in 20 probes fail: the 1st of every 40 times out, the 21st gets a 500.

    The first fails at 01:00:15, the first scrape inside the window: increase() would not see it
    (its range starts at 01:00:07 and that scrape already counts it).
    """
    probe = healthy_probe(instance, t)
    if t <= APPLIED or probe is None:
        return probe
    if step(t) % 40 == 1:
        return Probe("timeout", DEADLINE)
    if step(t) % 40 == 21:
        return Probe("server_error", probe.duration)
    return probe


def timing_out_at_the_deadline(instance: str, t: int) -> Probe | None:
    """After the migration every 5th probe times out, observed at its 3 s wait as the daemon
    exports it (issue 20): 48 of 240 per replica an hour."""
    probe = healthy_probe(instance, t)
    if t <= APPLIED or probe is None or step(t) % 5:
        return probe
    return Probe("timeout", DEADLINE)


def wrongly_invalid(instance: str, t: int) -> float:
    """The trigger flags unexpired tokens invalid from 01:20 to 01:30 (b sees 2 of a's 3)."""
    if APPLIED + 1200 <= t < APPLIED + 1800:
        return 3.0 if instance == "a" else 2.0
    return 0.0


def missing_after_half_hour(instance: str, t: int) -> float:
    """From 01:30 two users who logged in still miss threadsFullName."""
    return 2.0 if t >= APPLIED + 1800 else 0.0


def rolled_back_from(instance: str) -> int:
    """a sees the roll-back at 01:40:00, b at 01:40:30."""
    return APPLIED + 2400 + (30 if instance == "b" else 0)


def rolled_back_state(instance: str, t: int) -> str:
    """Applied, then rolled back."""
    return "rolled_back" if t >= rolled_back_from(instance) else healthy_state(instance, t)


def rolled_back_applied_at(instance: str, t: int) -> float | None:
    """The applied time is exported only while applied."""
    return None if t >= rolled_back_from(instance) else healthy_applied_at(instance, t)


def partial_for_a_minute(instance: str, t: int) -> str:
    """a sees an object of the migration missing from 01:20 to 01:21 (dropped, then recreated)."""
    if instance == "a" and APPLIED + 1200 <= t < APPLIED + 1260:
        return "partial"
    return healthy_state(instance, t)


def applied_at_unless_partial(instance: str, t: int) -> float | None:
    """Not exported while partial."""
    return (
        None if partial_for_a_minute(instance, t) == "partial" else healthy_applied_at(instance, t)
    )


def pending(instance: str, t: int) -> str:
    """Never applied."""
    return "pending"


def never(instance: str, t: int) -> float | None:
    """No applied time."""
    return None


RUN_STARTS = APPLIED - 600  # 00:50:00: the last scrape that saw the migration pending


def restarted_at_the_start(instance: str, t: int) -> Probe | None:
    """b: its process (started at 00:45) saw 20 timeouts 00:45..00:49:45, then restarted just
    before the applied time; after the migration 1 in 10 of b's probes time out (24)."""
    probe = healthy_probe(instance, t)
    if instance != "b":
        return probe
    if BASE + 2700 <= t < BASE + 3000 or (t > APPLIED and step(t) % 10 == 1):
        return Probe("timeout", DEADLINE)
    return probe


def slower_and_failing(instance: str, t: int) -> Probe | None:
    """After the migration 1 in 20 probes fail (as `failing`) and the answered ones are 30% slower."""
    probe = failing(instance, t)
    if t <= APPLIED or probe is None or probe.duration is None:
        return probe
    return Probe(probe.outcome, round(probe.duration * 1.3, 6))


def slow_while_migrating(instance: str, t: int) -> Probe | None:
    """While the migration runs (00:50:15..01:00:00) every other probe times out and the others
    take 500 ms; after it, `slower_and_failing`."""
    if RUN_STARTS < t <= APPLIED:
        return Probe("timeout", DEADLINE) if step(t) % 2 else Probe("success", 0.5)
    return slower_and_failing(instance, t)


def migrating_for_ten_minutes(instance: str, t: int) -> str:
    """Pending until 00:50:00; partial while the migration builds its objects; then applied."""
    if t <= RUN_STARTS:
        return "pending"
    return "applied" if t >= seen_applied_from(instance) else "partial"


def timing_out_in_the_lock_queue(instance: str, t: int) -> Probe | None:
    """While the migration waits in a lock queue (00:50:15..01:00:00) every login times out."""
    return Probe("timeout", DEADLINE) if RUN_STARTS < t <= APPLIED else healthy_probe(instance, t)


def timing_out_half_an_hour_before(instance: str, t: int) -> Probe | None:
    """Timeouts from 00:30 to 00:40, long before the migration: none of its window's business."""
    return (
        Probe("timeout", DEADLINE) if BASE + 1800 < t <= BASE + 2400 else healthy_probe(instance, t)
    )


def queued_from_0050(instance: str, t: int) -> bool:
    """Running (its ALTER TABLE queued) from 00:50:15 until the replica sees it applied."""
    return RUN_STARTS < t < seen_applied_from(instance)


def started_0050(instance: str, t: int) -> float | None:
    """Prisma's started_at, 00:50:00, exported from the first look that saw the run."""
    return float(RUN_STARTS) if t > RUN_STARTS else None


def falsely_running(instance: str, t: int) -> bool:
    """A run that was not one (a deploy with nothing to apply held Prisma's lock over two looks)
    at 00:30:15..00:30:30; the migration itself is applied between two looks, unseen running."""
    return BASE + 1800 < t <= BASE + 1830


def started_0030(instance: str, t: int) -> float | None:
    """That false run's start, exported while it ran; nothing for the real application."""
    return float(BASE + 1800) if falsely_running(instance, t) else None


def applied(instance: str, t: int) -> str:
    """Applied all along: the monitor started after the migration."""
    return "applied"


def applied_at_01(instance: str, t: int) -> float:
    """From the config (migration.applied_at): 01:00:07."""
    return float(APPLIED_AT)


def trigger_until_half_hour(instance: str, t: int) -> bool:
    """The trigger is dropped at 01:30."""
    return t < APPLIED + 1800


def partial_from_half_hour(instance: str, t: int) -> str:
    """An object of the migration (the trigger) is missing from 01:30."""
    return "partial" if t >= APPLIED + 1800 else healthy_state(instance, t)


def applied_at_until_half_hour(instance: str, t: int) -> float | None:
    """Not exported once partial."""
    return None if t >= APPLIED + 1800 else healthy_applied_at(instance, t)


CONFIGURED = {"probes": 20.0, "ratio": 0.995, "0.95": 0.08}  # baseline.fixed, at min_probes
HEALTHY = Scenario("healthy")
SCENARIOS = [
    HEALTHY,
    Scenario("restarted", restarts=frozenset({("b", APPLIED + 900)})),
    Scenario("latency", probe=slower),
    Scenario("errors", probe=failing),
    Scenario("timeouts", probe=timing_out_at_the_deadline),
    Scenario("trigger_bug", wrongly_invalid=wrongly_invalid),
    Scenario("backfill", missing_field=missing_after_half_hour),
    Scenario("history", baseline_gauges=False),
    Scenario("rolled_back", state=rolled_back_state, applied_at=rolled_back_applied_at),
    Scenario("flapped", state=partial_for_a_minute, applied_at=applied_at_unless_partial),
    Scenario("pending", state=pending, applied_at=never, baseline_gauges=False),
    Scenario(
        "restart_at_start",
        probe=restarted_at_the_start,
        restarts=frozenset({("b", BASE + 2700), ("b", APPLIED + 15)}),
    ),
    Scenario(
        "slow_migration",
        probe=slow_while_migrating,
        state=migrating_for_ten_minutes,
        baseline_gauges=False,
    ),
    Scenario(
        "lock_queue",
        probe=timing_out_in_the_lock_queue,
        running=queued_from_0050,
        started_at=started_0050,
        baseline_gauges=False,
    ),
    Scenario(
        "false_run",
        probe=timing_out_half_an_hour_before,
        running=falsely_running,
        started_at=started_0030,
    ),
    Scenario("never_pending", state=applied, applied_at=applied_at_01, baseline_gauges=False),
    Scenario(
        "configured", exported={"a": CONFIGURED, "b": CONFIGURED}, exported_source="configuration"
    ),
    Scenario(
        "configured_without_p95",
        exported={"a": {"probes": 20.0, "ratio": 0.995}},
        exported_source="configuration",
    ),
    Scenario(
        "a_without_p95",
        exported={"a": {"probes": 240.0, "ratio": 1.0}, "b": EXPORTED_BASELINE["b"]},
    ),
    Scenario(
        "trigger_dropped",
        state=partial_from_half_hour,
        applied_at=applied_at_until_half_hour,
        trigger_present=trigger_until_half_hour,
    ),
    Scenario("infinite", exported={"a": {**EXPORTED_BASELINE["a"], "probes": float("inf")}}),
]
CRITERIA = [
    "migration_completed",
    "users_can_authenticate",
    "new_fields_populated",
    "token_validity_tracking",
    "latency_within_10pct",
    "error_rate_within_baseline",
]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    """One Prometheus holding every scenario, each under its own job."""
    yield from loaded_prometheus(SCENARIOS, tmp_path_factory.mktemp("verdict"))


def verdict(
    capsys: pytest.CaptureFixture[str], url: str, *args: str, job: str | None = None
) -> tuple[int, str, str]:
    """Run `rollout-monitor verdict` in-process: exit code, stdout, stderr."""
    selector = [] if job is None else ["--selector", f'job="{job}"']
    code = main(["verdict", "--prometheus-url", url, *selector, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def as_json(
    capsys: pytest.CaptureFixture[str], prom: LoadedPrometheus, job: str, *args: str
) -> tuple[int, dict[str, Any]]:
    """The JSON verdict for one scenario, at 02:30 over 1h unless args say otherwise."""
    code, out, err = verdict(
        capsys, prom.url, "--format", "json", "--window", "1h", "--at", AT, *args, job=job
    )
    assert err == ""
    return code, json.loads(out)


def results(document: dict[str, Any]) -> dict[str, str]:
    """criterion -> result."""
    return {c["criterion"]: c["result"] for c in document["criteria"]}


def criterion(document: dict[str, Any], name: str) -> dict[str, Any]:
    """One criterion's entry."""
    return next(c for c in document["criteria"] if c["criterion"] == name)


def test_the_scenarios_probe_as_the_docstring_says() -> None:
    """The ground truth: 240 probes per replica in the window, one in ten at 70 ms."""
    probes = HEALTHY.all_probes(APPLIED, APPLIED + HOUR)
    assert len(probes) == 480
    assert sum(p.duration == 0.07 for p in probes) == 48
    assert {p.outcome for p in probes} == {"success"}
    assert INSTANCES == ("a", "b")


def test_a_healthy_rollout_passes_with_the_exact_numbers(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both replicas' probes counted exactly; the baseline of a (more probes than b's)."""
    code, document = as_json(capsys, prometheus, "healthy")
    assert code == 0
    assert {k: v for k, v in document.items() if k != "criteria"} == {
        "schema_version": 1,
        "verdict": "pass",
        "exit_code": 0,
        "window": {
            "name": "1h",
            "seconds": 3600,
            "start": "2026-11-01T01:00:07Z",
            "end": "2026-11-01T02:00:07Z",
            "complete": True,
        },
        "evaluated_at": AT,
        "applied_at": "2026-11-01T01:00:07Z",
        "started_at": None,
        "baseline": {"source": "monitor", "probes": 240, "success_ratio": 1.0, "p95_seconds": P95},
        "thresholds": {"objective": 0.99, "min_probes": 20, "latency_tolerance": 1.1},
    }
    assert [c["criterion"] for c in document["criteria"]] == CRITERIA
    assert set(results(document).values()) == {"pass"}
    assert criterion(document, "migration_completed") == {
        "criterion": "migration_completed",
        "title": "Migration completes without errors",
        "result": "pass",
        "reason": "applied; every index valid; the trigger enabled",
        "observed": {},
    }
    assert criterion(document, "users_can_authenticate")["observed"] == {
        "success_ratio": 1.0,
        "probes": 480,
        "wrongly_invalid": 0.0,
    }
    assert criterion(document, "new_fields_populated")["observed"] == {
        "logins": 60.0,
        "missing": 0.0,
    }
    latency = criterion(document, "latency_within_10pct")
    assert latency["observed"]["p95_seconds"] == pytest.approx(P95)
    assert latency["observed"]["baseline_p95_seconds"] == P95
    assert latency["reason"] == "p95 67.5 ms after the migration, 1.00x the baseline 67.5 ms"
    assert criterion(document, "error_rate_within_baseline")["observed"] == {
        "error_ratio": 0.0,
        "limit_ratio": 0.01,
        "probes": 480,
    }


def test_a_replica_restarting_in_the_window_is_counted_through_its_reset(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """b restarts at 01:15: its counters start again from 0 and still add up to 240 probes.

    Its series fall back to increase(), which extrapolates from the first scrape in the range
    (01:00:15) to the start (01:00:07): 215.9 rather than 216 answers in b's 0.05 bucket. Bucket
    counts are whole probes, so the verdict rounds them back and its p95 is exact again.
    """
    code, document = as_json(capsys, prometheus, "restarted")
    assert code == 0
    assert criterion(document, "users_can_authenticate")["observed"] == {
        "success_ratio": 1.0,
        "probes": 480,
        "wrongly_invalid": 0.0,
    }
    latency = criterion(document, "latency_within_10pct")
    assert latency["observed"]["p95_seconds"] == P95


def test_a_replica_restarted_just_before_the_start_is_not_subtracted_from_itself(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """b restarts between its 01:00:00 scrape and 01:00:07: `offset` reads the old process's
    counters (61 probes, 20 timeouts), which the new one's 240 and 24 must not be reduced by
    (that read 419 probes with 4 errors: a silent pass).

    b's series fall back to increase() over 01:00:15..02:00:00, extrapolated to the window's
    edges: 216 successes read as 216 x 3592 / 3585 = 216.42 (a zero first sample extrapolates
    no further back), 24 timeouts as (24 - 1) x 3600 / 3585 = 23.10; with a's exact 240: 479.52
    probes and 456.42 successes, rounded to 480 and 456.
    """
    truth = Scenario("t", probe=restarted_at_the_start).all_probes(APPLIED, APPLIED + HOUR)
    assert (len(truth), sum(p.outcome == "success" for p in truth)) == (480, 456)
    code, document = as_json(capsys, prometheus, "restart_at_start")
    assert code == 1
    assert criterion(document, "users_can_authenticate")["observed"] == {
        "success_ratio": 0.95,
        "probes": 480,
        "wrongly_invalid": 0.0,
    }
    errors = criterion(document, "error_rate_within_baseline")
    assert (errors["result"], errors["observed"]["error_ratio"]) == ("fail", 0.05)


# The hour before the migration from Prometheus's history: both replicas' 240 healthy probes.
HISTORY_BASELINE = {
    "source": "prometheus_history",
    "probes": 480,
    "success_ratio": 1.0,
    "p95_seconds": pytest.approx(P95),
}


def test_the_baseline_ends_where_the_migration_stopped_being_pending(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """The migration runs 00:50..01:00:07 (partial), its probes slow or timing out: the baseline
    is the hour before 00:50:00, 480 healthy probes, so the window's 5% errors and 30% slower p95
    fail (with the hour before 01:00:07, 40 timeouts and 40 probes at 500 ms made both pass).

    Window: 468 answered probes, 420 at 58.5 ms and 48 at 91 ms, and 12 timeouts at their 3 s
    wait; rank 0.95 x 480 = 456 in 0.075..0.1: 0.075 + 0.025 x 36 / 48 = 0.09375 s.
    """
    before = Scenario("t", probe=slow_while_migrating).all_probes(RUN_STARTS - HOUR, RUN_STARTS)
    assert (len(before), {p.outcome for p in before}) == (480, {"success"})
    code, document = as_json(capsys, prometheus, "slow_migration")
    assert code == 1
    assert document["baseline"] == HISTORY_BASELINE
    assert results(document) == {
        **dict.fromkeys(CRITERIA, "pass"),
        "users_can_authenticate": "fail",
        "latency_within_10pct": "fail",
        "error_rate_within_baseline": "fail",
    }
    latency = criterion(document, "latency_within_10pct")
    assert latency["observed"]["p95_seconds"] == pytest.approx(0.09375)
    assert criterion(document, "error_rate_within_baseline")["observed"] == {
        "error_ratio": 0.05,
        "limit_ratio": 0.01,
        "probes": 480,
    }
    with Prometheus(prometheus.url) as prom:
        summary = baseline_before(prom, 'job="slow_migration"', float(APPLIED_AT), HOUR)
    assert summary is not None
    assert (summary.probes, summary.success_ratio) == (480, 1.0)
    assert summary.duration_seconds["0.99"] == pytest.approx(0.0735)


def test_logins_failing_in_the_migrations_lock_queue_fail_and_stay_out_of_the_baseline(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan's Risk 1: the migration's ALTER TABLE queues from 00:50 to 01:00:07, still
    pending, and logins time out. The window starts at the run (its 80 timeouts fail
    authentication; starting at the applied time it passed), and the baseline from history ends
    where the run began (it learned 80 of 480 probes as timeouts, "before the migration")."""
    code, document = as_json(capsys, prometheus, "lock_queue")
    assert code == 1
    assert document["window"]["start"] == "2026-11-01T00:50:00Z"
    assert document["started_at"] == "2026-11-01T00:50:00Z"
    assert document["baseline"] == HISTORY_BASELINE
    assert results(document) == {
        **dict.fromkeys(CRITERIA, "pass"),
        "users_can_authenticate": "fail",
        "error_rate_within_baseline": "fail",
    }
    assert criterion(document, "users_can_authenticate")["reason"] == (
        "callback success 85.71% of 560 probes, below the 99.00% objective"
        " (80 of 80 failed during the migration)"
    )


def test_a_run_that_went_quiet_again_is_not_the_migrations_start(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """A start exported for a run at 00:30 that went quiet again is older than the migration's
    last quiet look: the window starts at the applied time, without the 00:30-00:40 timeouts."""
    code, document = as_json(capsys, prometheus, "false_run")
    assert code == 0
    assert (document["started_at"], document["window"]["start"]) == (
        None,
        "2026-11-01T01:00:07Z",
    )
    assert criterion(document, "users_can_authenticate")["reason"] == (
        "callback success 100.00% of 480 probes"
    )


def test_without_a_pending_scrape_there_is_no_baseline_from_history(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """Monitors started after a `psql -f` apply never saw it pending: which probes came before
    the migration is unknown, so latency is inconclusive (it was the hour before 01:00:07, probes
    of the migrated app, and a pass); the error budget alone still decides the error rate."""
    with Prometheus(prometheus.url) as prom:
        assert baseline_before(prom, 'job="never_pending"', float(APPLIED_AT), HOUR) is None
    code, document = as_json(capsys, prometheus, "never_pending")
    assert code == 3
    assert document["baseline"]["source"] == "none"
    assert results(document) == {
        **dict.fromkeys(CRITERIA, "pass"),
        "latency_within_10pct": "inconclusive",
    }


def test_a_configured_baseline_is_reported_as_configuration(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """rollout_baseline_source{source="configuration"}: baseline.fixed, standing for 20 probes."""
    code, document = as_json(capsys, prometheus, "configured")
    assert code == 0
    assert document["baseline"] == {
        "source": "configuration",
        "probes": 20,
        "success_ratio": 0.995,
        "p95_seconds": 0.08,
    }


def test_an_exported_baseline_without_a_p95_is_passed_over(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """a's (more probes) has no p95 gauge: b's is taken; with no other, Prometheus's history."""
    code, document = as_json(capsys, prometheus, "a_without_p95")
    assert code == 1  # the window's 67.5 ms is 1.35x b's 50 ms
    assert document["baseline"] == {
        "source": "monitor",
        "probes": 200,
        "success_ratio": 0.995,
        "p95_seconds": 0.05,
    }
    code, document = as_json(capsys, prometheus, "configured_without_p95")
    assert code == 0
    assert document["baseline"] == HISTORY_BASELINE


def test_a_trigger_gone_after_the_migration_fails(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """From 01:30 the schema check finds the trigger missing (no enabled gauge for it)."""
    code, document = as_json(capsys, prometheus, "trigger_dropped")
    assert code == 1
    migration = criterion(document, "migration_completed")
    assert (migration["result"], migration["reason"]) == ("fail", "the migration is partial")
    tracking = criterion(document, "token_validity_tracking")
    assert (tracking["result"], tracking["reason"]) == (
        "fail",
        "the trigger is missing or disabled",
    )


def test_an_infinite_value_is_no_data(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """a exports +Inf baseline probes (round() crashed on it): no baseline of a's, so the hour
    before from Prometheus's history (b exports none)."""
    code, document = as_json(capsys, prometheus, "infinite")
    assert code == 0
    assert document["baseline"] == HISTORY_BASELINE


def test_a_30pct_latency_regression_fails_on_latency_only(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """58.5 and 91 ms: rank 456 lands in 0.075..0.1: 0.075 + 0.025 x 24 / 48 = 0.0875 s."""
    code, document = as_json(capsys, prometheus, "latency")
    assert code == 1
    assert document["verdict"] == "fail"
    assert results(document) == {
        **dict.fromkeys(CRITERIA, "pass"),
        "latency_within_10pct": "fail",
    }
    latency = criterion(document, "latency_within_10pct")
    assert latency["observed"]["p95_seconds"] == pytest.approx(0.0875)
    assert latency["reason"] == (
        "p95 87.5 ms after the migration, 1.30x the baseline 67.5 ms, above 1.10x beyond chance"
    )


def test_the_latency_tolerance_flag_moves_the_line(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.0875 / 0.0675 = 1.296: within a tolerance of 1.3."""
    code, document = as_json(capsys, prometheus, "latency", "--latency-tolerance", "1.3")
    assert code == 0
    assert document["thresholds"]["latency_tolerance"] == 1.3
    assert results(document)["latency_within_10pct"] == "pass"


def test_timeouts_count_in_p95_as_their_wait(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20, finding 6: a timed-out probe is in the histogram at its wait, so 20% timing out
    puts p95 in (2.5, 5]: of 480 probes 96 wait 3 s; rank 456 is the 72nd of them past 384."""
    code, document = as_json(capsys, prometheus, "timeouts")
    latency = criterion(document, "latency_within_10pct")
    assert (code, latency["result"]) == (1, "fail")
    assert latency["observed"]["p95_seconds"] == pytest.approx(2.5 + 2.5 * (456 - 384) / 96)


def test_an_error_regression_fails_authentication_and_the_error_rate(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """24 of 480 probes fail (12 timeouts, 12 server errors): 95% success.

    Latency counts the 468 answers and the 12 timeouts at their 3 s wait (issue 20): 420 at or
    below 0.05, 48 in 0.06..0.075, 12 in 2.5..5; rank 0.95 x 480 = 456: 0.06 + 0.015 x 36 / 48
    = 0.07125 s, 1.056x the baseline: a pass.
    """
    truth = Scenario("errors", probe=failing).all_probes(APPLIED, APPLIED + HOUR)
    assert (len(truth), sum(p.outcome == "success" for p in truth)) == (480, 456)
    code, document = as_json(capsys, prometheus, "errors")
    assert code == 1
    assert results(document) == {
        **dict.fromkeys(CRITERIA, "pass"),
        "users_can_authenticate": "fail",
        "error_rate_within_baseline": "fail",
    }
    authenticate = criterion(document, "users_can_authenticate")
    assert authenticate["reason"] == (
        "callback success 95.00% of 480 probes, below the 99.00% objective"
    )
    assert authenticate["observed"] == {
        "success_ratio": 0.95,
        "probes": 480,
        "wrongly_invalid": 0.0,
    }
    errors = criterion(document, "error_rate_within_baseline")
    assert errors["observed"] == {"error_ratio": 0.05, "limit_ratio": 0.01, "probes": 480}
    assert errors["reason"] == "errors 5.00% of 480 probes, limit 1.00%"
    assert criterion(document, "latency_within_10pct")["observed"]["p95_seconds"] == pytest.approx(
        0.07125
    )


def test_a_lower_objective_accepts_the_error_regression(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """95% success meets a 95% objective; the budget (5%) becomes the error limit."""
    code, document = as_json(capsys, prometheus, "errors", "--objective", "0.95")
    assert code == 0
    assert criterion(document, "error_rate_within_baseline")["observed"]["limit_ratio"] == 0.05


def test_tokens_wrongly_invalid_for_ten_minutes_fail_token_tracking(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """3 tokens flagged invalid 01:20..01:30 and 0 again by the end: still a fail for the window."""
    code, document = as_json(capsys, prometheus, "trigger_bug")
    assert code == 1
    assert results(document) == {
        **dict.fromkeys(CRITERIA, "pass"),
        "users_can_authenticate": "fail",
        "token_validity_tracking": "fail",
    }
    tracking = criterion(document, "token_validity_tracking")
    assert tracking["observed"] == {"wrongly_invalid": 3.0}
    assert tracking["reason"] == "3 unexpired tokens flagged invalid"


def test_users_missing_a_new_field_fail_new_fields_populated(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = as_json(capsys, prometheus, "backfill")
    assert code == 1
    assert results(document) == {
        **dict.fromkeys(CRITERIA, "pass"),
        "new_fields_populated": "fail",
    }
    assert criterion(document, "new_fields_populated")["observed"] == {
        "logins": 60.0,
        "missing": 2.0,
    }


def test_a_rolled_back_migration_fails_migration_completed(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rolled back at 01:40: the applied time is found in the past, the state at 02:00:07 fails."""
    code, document = as_json(capsys, prometheus, "rolled_back")
    assert code == 1
    assert document["applied_at"] == "2026-11-01T01:00:07Z"
    migration = criterion(document, "migration_completed")
    assert (migration["result"], migration["reason"]) == ("fail", "the migration is rolled_back")
    assert results(document)["new_fields_populated"] == "inconclusive"  # nothing at 02:00


def test_leaving_applied_for_a_minute_fails_migration_completed(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """Applied again by the end, but partial from 01:20 to 01:21: not "without errors"."""
    code, document = as_json(capsys, prometheus, "flapped")
    assert code == 1
    assert results(document) == {**dict.fromkeys(CRITERIA, "pass"), "migration_completed": "fail"}
    assert criterion(document, "migration_completed")["reason"] == (
        "the migration left the applied state in the window"
    )


def test_replicas_disagreeing_on_the_state_count_the_worst(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 01:40:10 a has seen the roll-back and b not yet: the window ends rolled back."""
    code, document = as_json(capsys, prometheus, "rolled_back", "--window", "2403s")
    assert code == 1
    assert document["window"]["end"] == "2026-11-01T01:40:10Z"
    migration = criterion(document, "migration_completed")
    assert (migration["result"], migration["reason"]) == ("fail", "the migration is rolled_back")


def test_no_data_is_inconclusive_everywhere(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job Prometheus has nothing of: never a silent pass."""
    code, document = as_json(capsys, prometheus, "nothing_here")
    assert code == 3
    assert document["verdict"] == "inconclusive"
    assert set(results(document).values()) == {"inconclusive"}
    assert document["window"] == {
        "name": "1h",
        "seconds": 3600,
        "start": None,
        "end": None,
        "complete": False,
    }
    assert document["applied_at"] is None
    assert document["baseline"] == {
        "source": "none",
        "probes": 0,
        "success_ratio": None,
        "p95_seconds": None,
    }
    assert (
        criterion(document, "migration_completed")["reason"] == "no data on the migration's state"
    )


def test_a_pending_migration_is_inconclusive(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = as_json(capsys, prometheus, "pending")
    assert code == 3
    assert (
        criterion(document, "migration_completed")["reason"] == "the migration is not applied yet"
    )


def test_a_window_not_over_is_inconclusive_though_passing(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """24h asked at 03:00: two hours in, 960 probes so far, every pass only 'so far'."""
    at = "2026-11-01T03:00:00Z"
    code, document = as_json(capsys, prometheus, "healthy", "--window", "24h", "--at", at)
    assert code == 3
    assert document["window"] == {
        "name": "24h",
        "seconds": 86400,
        "start": "2026-11-01T01:00:07Z",
        "end": at,
        "complete": False,
    }
    assert set(results(document).values()) == {"inconclusive"}
    authenticate = criterion(document, "users_can_authenticate")
    assert authenticate["observed"]["probes"] == len(HEALTHY.all_probes(APPLIED, APPLIED + 7200))
    assert authenticate["reason"] == (
        "passing so far; the window is not over (callback success 100.00% of 960 probes)"
    )


def test_without_exported_gauges_the_baseline_comes_from_prometheus_history(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hour before 01:00: 480 probes, all successes, p95 0.0675 s as in the window."""
    code, document = as_json(capsys, prometheus, "history")
    assert code == 0
    assert document["baseline"] == HISTORY_BASELINE


def test_baseline_before_summarizes_the_hour_before_the_migration(
    prometheus: LoadedPrometheus,
) -> None:
    """p50: rank 240 of 432 in 0.04..0.05 = 0.04 + 0.01 x 240 / 432; p99: rank 475.2 = 0.0735."""
    with Prometheus(prometheus.url) as prom:
        summary = baseline_before(prom, 'job="history"', float(APPLIED_AT), 3600)
        nothing = baseline_before(prom, 'job="nothing_here"', float(APPLIED_AT), 3600)
    assert nothing is None
    assert summary is not None
    assert (summary.probes, summary.success_ratio) == (480, 1.0)
    assert summary.duration_seconds == pytest.approx(
        {"0.5": 0.04 + 0.01 * 240 / 432, "0.95": P95, "0.99": 0.0735}
    )
    assert isinstance(summary, Summary)


def test_too_few_probes_is_inconclusive(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """--min-probes 500: the window's 480 probes and the baseline's 240 are not enough."""
    code, document = as_json(capsys, prometheus, "healthy", "--min-probes", "500")
    assert code == 3
    assert results(document) == {
        "migration_completed": "pass",
        "users_can_authenticate": "inconclusive",
        "new_fields_populated": "pass",
        "token_validity_tracking": "pass",
        "latency_within_10pct": "inconclusive",
        "error_rate_within_baseline": "inconclusive",
    }
    assert criterion(document, "users_can_authenticate")["reason"] == (
        "480 callback probes in the window, fewer than 500"
    )
    assert document["baseline"]["source"] == "prometheus_history"  # 480 beat the gauges' 240
    assert criterion(document, "latency_within_10pct")["reason"] == (
        "baseline unusable (too short: 480 probes before the migration, 500 needed)"
    )


def test_the_table_names_the_verdict_the_window_and_each_criterion(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = verdict(capsys, prometheus.url, "--window", "1h", "--at", AT, job="latency")
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "verdict: FAIL (exit 1)",
        "window 1h 2026-11-01T01:00:07Z .. 2026-11-01T02:00:07Z (complete); "
        "evaluated at 2026-11-01T02:30:00Z; baseline: monitor, 240 probes",
        "",
        "CRITERION                   RESULT  REASON",
        "migration_completed         pass    applied; every index valid; the trigger enabled",
        "users_can_authenticate      pass    callback success 100.00% of 480 probes",
        "new_fields_populated        pass    all 60 users who logged in have both fields",
        "token_validity_tracking     pass    the trigger is enabled; no token wrongly invalid",
        "latency_within_10pct        fail    p95 87.5 ms after the migration, 1.30x the baseline 67.5 ms, above 1.10x beyond chance",
        "error_rate_within_baseline  pass    errors 0.00% of 480 probes, limit 1.00%",
    ]


def test_at_takes_unix_seconds_or_any_utc_offset(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """02:30Z three ways: the same evaluation time, the same verdict."""
    for at in (str(APPLIED + 5400), "2026-11-01T02:30:00+00:00", "2026-11-01T04:30:00+02:00"):
        code, document = as_json(capsys, prometheus, "healthy", "--at", at)
        assert (code, document["evaluated_at"]) == (0, AT)


def test_the_url_comes_from_the_environment_and_the_flag_wins(
    prometheus: LoadedPrometheus,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROLLOUT_PROMETHEUS_URL", prometheus.url)
    args = ["verdict", "--selector", '{job="healthy"}', "--window", "1h", "--at", AT]
    assert main(args) == 0
    monkeypatch.setenv("ROLLOUT_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    assert main([*args, "--prometheus-url", prometheus.url]) == 0
    assert main(args) == 4
    assert capsys.readouterr().err.startswith("rollout-monitor verdict: could not evaluate: ")


def test_an_unreachable_prometheus_is_one_line_exit_4_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://watcher:s3cret-pw@127.0.0.1:{free_port()}"
    code, out, err = verdict(capsys, url, "--at", AT)
    assert (code, out) == (4, "")
    assert err.count("\n") == 1
    assert err.startswith(
        "rollout-monitor verdict: could not evaluate: Prometheus at http://watcher:***@127.0.0.1:"
    )
    assert "s3cret-pw" not in err


def test_a_query_prometheus_rejects_is_one_line_exit_4(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """A selector that is well formed but whose regex Prometheus cannot compile."""
    code, out, err = verdict(capsys, prometheus.url, "--selector", 'job=~"("', "--at", AT)
    assert (code, out) == (4, "")
    assert err.count("\n") == 1
    assert err.startswith(
        f"rollout-monitor verdict: could not evaluate: Prometheus at {prometheus.url}: "
    )
    assert "error parsing regexp" in err


# -- issue 22: a hostile or broken Prometheus is one line and exit 4, in bounded time and memory --

EMPTY_VECTOR = b'{"status": "success", "data": {"resultType": "vector", "result": []}}'
APPLIED_QUERY = "rollout_migration_applied_timestamp_seconds"
STARTED_QUERY = "rollout_migration_started_timestamp_seconds"
HOSTILE_TIMEOUT = 2.0  # --timeout
HOSTILE_SECONDS = 15.0  # the most a run may take: the timeout, Python's start, a busy machine
# The address space the command may use (prlimit --as): it peaks at about 65 MB resident; the
# endless body took 8 GB before.
HOSTILE_MEMORY = 768 * 1024 * 1024
HUGE_MESSAGE = b"bad_data: " + b"x" * 100_000


def at_value(value: str) -> bytes:
    """A one-series vector with this value, at a sane time."""
    return vector_body((1793494800.0, value))


HOSTILE = {
    # The value is left out as no data, but its time is no time (1e300 s: a year of 300 digits).
    "-Inf at a time of 1e300": (
        answer_with(200, vector_body((1e300, "-Inf"))),
        [],
        "with a sample time out of range (1e+300)",
    ),
    # The migration's applied time, rendered as a date: OverflowError.
    "applied at 1e300": (
        answer_by_query({APPLIED_QUERY: at_value("1e300")}, EMPTY_VECTOR),
        [],
        "with a value out of range (1e+300)",
    ),
    # A number the client takes, but no date the report can print (the year 160413).
    "applied in the year 160413": (
        answer_by_query({APPLIED_QUERY: at_value("5000000000000")}, EMPTY_VECTOR),
        [],
        "the migration's applied time is out of range (5e+12)",
    ),
    "started in the year 160413": (
        answer_by_query(
            {APPLIED_QUERY: at_value("1793494807"), STARTED_QUERY: at_value("5000000000000")},
            EMPTY_VECTOR,
        ),
        ["--format", "json"],
        "the migration's started time is out of range (5e+12)",
    ),
    "JSON 100,000 deep": (
        answer_with(200, b"[" * 100_000 + b"]" * 100_000),
        [],
        "HTTP 200, JSON nested over 32 deep",
    ),
    "an endless body": (endless_body, [], "HTTP 200, an answer over 2 MiB"),
    "a byte every 0.1 s": (trickled_body, [], "no whole answer within 2s"),
    "a 100 KB error message": (
        answer_with(400, b'{"status": "error", "error": "' + HUGE_MESSAGE + b'"}'),
        [],
        "bad_data: " + "x" * 190 + "…",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_prometheus_is_one_line_exit_4_in_bounded_time_and_memory(case: str) -> None:
    """The real command against a server on 127.0.0.1, its address space limited. Before issue
    22: a traceback (OverflowError, ValueError, RecursionError, MemoryError), exit 3 for the
    time of 1e300, 20 s for the trickle (httpx's timeout is per read) and 60 s for the message
    (the redactor was quadratic, and printed all 100 KB)."""
    answer, args, expected = HOSTILE[case]
    command = [sys.executable, "-m", "monitor", "verdict", "--at", AT]
    with hostile_prometheus(answer) as server:
        started = time.monotonic()
        done = subprocess.run(
            [
                *("prlimit", f"--as={HOSTILE_MEMORY}", "--"),
                *(*command, "--prometheus-url", server.url, "--timeout", f"{HOSTILE_TIMEOUT:g}s"),
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=HOSTILE_SECONDS * 2,
        )
        elapsed = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert (done.returncode, done.stdout) == (4, ""), done.stderr[-3000:]
    [line] = done.stderr.splitlines()
    assert line.startswith(
        f"rollout-monitor verdict: could not evaluate: Prometheus at {server.url}: "
    )
    assert line.endswith(expected)
    assert len(line) < 400
    assert elapsed < HOSTILE_SECONDS


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "--prometheus-url (or ROLLOUT_PROMETHEUS_URL) is required"),
        (
            ["--prometheus-url", "localhost:9090"],
            "--prometheus-url: not an http(s) URL with a host",
        ),
        (["--prometheus-url", "http://[::1"], "--prometheus-url: not a valid URL"),
        (["--prometheus-url", "http://h:abc"], "--prometheus-url: not a valid URL"),
        (["--prometheus-url", "http://h:99999"], "--prometheus-url: not a valid URL"),
        (
            ["--prometheus-url", "http://p", "--window", "1 day"],
            "argument --window: invalid duration '1 day': expected a number with a unit ms, s, m,"
            " h, d or w, e.g. 15s or 1h30m",
        ),
        (
            ["--prometheus-url", "http://p", "--window", "0h"],
            "argument --window: invalid duration '0h': must be longer than 0s",
        ),
        (
            ["--prometheus-url", "http://p", "--format", "yaml"],
            "argument --format: invalid choice: 'yaml' (choose from 'table', 'json')",
        ),
        (
            ["--prometheus-url", "http://p", "--selector", "job=monitor"],
            "argument --selector: 'job=monitor' is not a list of label matchers like "
            'job="rollout-monitor"',
        ),
        (
            ["--prometheus-url", "http://p", "--selector", 'job="a"} or vector(1'],
            "argument --selector: 'job=\"a\"} or vector(1' is not a list of label matchers like "
            'job="rollout-monitor"',
        ),
        (
            ["--prometheus-url", "http://p", "--objective", "99"],
            "argument --objective: '99' is not a ratio from 0 to 1",
        ),
        (
            ["--prometheus-url", "http://p", "--min-probes", "0"],
            "argument --min-probes: '0' is not a whole number from 1",
        ),
        (
            ["--prometheus-url", "http://p", "--latency-tolerance", "0.9"],
            "argument --latency-tolerance: '0.9' is not a factor from 1 (1.1)",
        ),
        (
            ["--prometheus-url", "http://p", "--at", "2026-11-01 02:30"],
            "argument --at: '2026-11-01 02:30' is not RFC3339 with an offset "
            "(2026-11-24T03:00:00Z) or Unix seconds",
        ),
        (
            ["--prometheus-url", "http://p", "--at", "9999-12-31T23:59:59-10:00"],
            "argument --at: '9999-12-31T23:59:59-10:00' is not RFC3339 with an offset "
            "(2026-11-24T03:00:00Z) or Unix seconds",
        ),
        (
            ["--prometheus-url", "http://p", "--timeout", "forever"],
            "argument --timeout: invalid duration 'forever': expected a number with a unit ms, s,"
            " m, h, d or w, e.g. 15s or 1h30m",
        ),
        (
            ["--prometheus-url", "http://p", "--timeout", "2h"],
            "argument --timeout: invalid duration '2h': must be at most 1h",
        ),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    args: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROLLOUT_PROMETHEUS_URL", raising=False)
    try:
        code: object = main(["verdict", *args])
    except SystemExit as exit_:
        code = exit_.code  # argparse's own errors exit
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.splitlines() == [f"rollout-monitor verdict: {expected} (see --help)"]


def test_the_installed_command_gates_a_pipeline(prometheus: LoadedPrometheus) -> None:
    """The real entry point as a pipeline runs it: exit status 0, then 1, JSON on stdout."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    command = [sys.executable, "-m", "monitor", "verdict", "--window", "1h", "--at", AT]
    env = {**base, "ROLLOUT_PROMETHEUS_URL": prometheus.url}
    for job, status in (("healthy", 0), ("errors", 1)):
        done = subprocess.run(
            [*command, "--selector", f'job="{job}"', "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == status, done.stderr
        assert json.loads(done.stdout)["exit_code"] == status


# -- one answer on every surface: the same rollout through the daemon and through the verdict --


def daemon_decisions(scenario: Scenario, instance: str, until: int) -> dict[str, tuple[str, str]]:
    """The daemon's decisions at `until` on one replica of the scenario replayed (what
    rollout_success_criterion and the page say)."""
    world = replayed(scenario, instance, until)
    return {d.criterion: (d.result, d.reason) for d in world.judgement.decisions()}


def replayed(scenario: Scenario, instance: str, until: int) -> Watching:
    """Replay one replica of the scenario through a real LiveView, scrape by scrape: the state and
    the checks' gauges as its schema, drift and activity checks would report them, and each probe,
    up to `until`."""
    clock = Clock()
    fixed = {"success_ratio": 1.0, "p95": f"{EXPORTED_BASELINE[instance]['0.95'] * 1000}ms"}
    world = Watching(
        thresholds=Thresholds(), clock=clock, probe_interval=15.0, min_probes=20, fixed=fixed
    )
    for t in (t for t in TIMES if t <= until):
        clock.now = float(t)
        world.tracker.publish(replica_view(scenario, instance, t))
        report_checks(world.readings, scenario, instance, t)
        probe = scenario.probe(instance, t)
        if probe is not None:
            status = (
                None if probe.duration is None else (500 if probe.outcome != "success" else 401)
            )
            world.log.record(ProbeResult(probe.outcome, probe.duration or 0.0, status))
    clock.now = float(until)
    return world


def utc_or_none(unix: float | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC)


def replica_view(scenario: Scenario, instance: str, t: int) -> MigrationView:
    """What the replica's schema check published at t."""
    state = scenario.state(instance, t)
    applied = utc_or_none(scenario.applied_at(instance, t))
    return MigrationView(
        state,
        state != "pending",
        applied,
        applied if state == "applied" else None,
        "prisma" if state == "applied" else None,
        running=scenario.running(instance, t),
        started_at=utc_or_none(scenario.started_at(instance, t)),
    )


def report_checks(readings: Readings, scenario: Scenario, instance: str, t: int) -> None:
    """The schema, drift and activity checks' readings at t, as prometheus_blocks writes them."""
    exists = scenario.state(instance, t) in ("applied", "partial")
    trigger = exists and scenario.trigger_present(instance, t)
    health = SchemaHealth(True if exists else None, True if trigger else None, not trigger)
    readings.publish("schema", health)
    if not exists:
        readings.withdraw("drift")
        readings.withdraw("activity")
        return
    readings.publish("drift", Drift(0.0, scenario.wrongly_invalid(instance, t)))
    missing = scenario.missing_field(instance, t)
    readings.publish("activity", Logins(scenario.logins(t) or 0.0, max(missing, 0.0)))


@pytest.mark.parametrize(
    "job",
    [
        "healthy",
        "latency",
        "errors",
        "trigger_bug",
        "backfill",
        "lock_queue",
        "rolled_back",
        "flapped",
        "trigger_dropped",
        "slow_migration",
        "false_run",
    ],
)
def test_the_daemon_and_the_verdict_decide_the_same_rollout_alike(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str], job: str
) -> None:
    """Replica a of each rollout, fed to the daemon probe by probe and read by the verdict from
    Prometheus at the end of the critical hour: the same result and reason for every criterion."""
    scenario = next(s for s in SCENARIOS if s.job == job)
    end = APPLIED_AT + HOUR
    code = main(
        [
            "verdict", "--prometheus-url", prometheus.url, "--format", "json", "--window", "1h",
            "--at", str(end), "--selector", f'job="{job}",instance="a"',
        ]
    )  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    verdict_says = {c["criterion"]: (c["result"], c["reason"]) for c in document["criteria"]}
    assert daemon_decisions(scenario, "a", end) == verdict_says


# -- the gate on the daemon: the command's decision, over HTTP ----------------------------------


@pytest.mark.parametrize("job", ["healthy", "errors", "lock_queue", "rolled_back", "pending"])
def test_the_gate_asked_of_prometheus_decides_as_the_command(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str], job: str
) -> None:
    """A daemon with baseline.prometheus_url answers /verdict with the command's document on the
    same data (plus its source), at the same evaluation time."""
    code, expected = as_json(capsys, prometheus, job)
    settings = BaselineSettings(prometheus_url=prometheus.url, prometheus_selector=f'job="{job}"')
    at = datetime.fromisoformat(AT).timestamp()
    gate = Gate(Watching(thresholds=Thresholds()).judgement, settings, Redactor(), lambda: at)
    status, document = respond(gate, "/verdict", b"window=1h")
    assert status == 200
    assert document == {**expected, "source": "prometheus"}
    promote, _ = respond(gate, "/gate/promote", b"window=1h")
    rollback, _ = respond(gate, "/gate/rollback", b"window=1h")
    assert (promote, rollback) == {0: (200, 409), 1: (409, 200), 3: (409, 409)}[code]


def test_the_daemons_own_gate_decides_a_replayed_rollout_as_the_command(
    prometheus: LoadedPrometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Prometheus, the daemon's gate on replica a of the failing rollout, replayed probe
    by probe, after its hour: the command's verdict and criteria for that replica."""
    end = APPLIED_AT + HOUR + 60
    code, expected = as_json(
        capsys, prometheus, "errors", "--at", str(end), "--selector", 'job="errors",instance="a"'
    )
    world = replayed(next(s for s in SCENARIOS if s.job == "errors"), "a", end)
    document = Gate(world.judgement, BaselineSettings(), Redactor()).answer("1h").document()
    assert (code, document["verdict"], document["source"]) == (1, "fail", "replica")
    assert document["criteria"] == expected["criteria"]
    assert document["window"] == expected["window"]
