"""The daemon's own view of the success criteria: rollout_success_criterion and its window."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fixtures
import pytest
import structlog.testing
from databases import FreshDatabase
from locks import wait_for_lock_waiters
from monitoring import make_config, value
from prometheus_blocks import APPLIED_AT, LoadedPrometheus, Scenario, loaded_prometheus
from prometheus_client import CollectorRegistry
from rollouts import (
    PRISMA_FINISH,
    PRISMA_START,
    apply_in_one_transaction,
    closing,
    learn,
    look,
    migrate,
    monitor_for,
    probe,
    run,
    scripted_server,
)
from worlds import Watching

from monitor.config.loading import load_config
from monitor.config.schema import Config
from monitor.daemon.service import Monitor
from monitor.judge.baseline import bucket_quantile
from monitor.judge.live import restored
from monitor.judge.observation import CRITERIA, Result, Thresholds
from monitor.judge.probewindow import ProbeWindow
from monitor.judge.rollout import WINDOW_SECONDS, thresholds
from monitor.judge.stats import Latencies, counts_quantile
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.probelog import MAX_PROBES
from monitor.output.redact import Redactor

NAMES = [name for name, _ in CRITERIA]
ALL_PASS = dict.fromkeys(NAMES, 1.0)


def verdicts(monitor: Monitor) -> dict[str, float | None]:
    """rollout_success_criterion of every criterion, absent ones as None."""
    return {n: value(monitor, "rollout_success_criterion", criterion=n) for n in NAMES}


def inconclusive(monitor: Monitor) -> dict[str, float | None]:
    """rollout_success_criterion_inconclusive of every criterion."""
    return {n: value(monitor, "rollout_success_criterion_inconclusive", criterion=n) for n in NAMES}


def reasons(monitor: Monitor) -> dict[str, tuple[Result, str]]:
    """Every criterion's result and reason, as the status page shows them."""
    return {d.criterion: (d.result, d.reason) for d in monitor.judgement.decisions()}


# --- through a real monitor, PostgreSQL and callback server ----------------------------------

# The callback answers in (0.3, 0.4] before the migration and in (0.15, 0.2] after: a slow
# answer on a loaded machine needs to be ~0.2 s late to turn a pass into a fail, and a late
# answer before the migration only raises the baseline.
BEFORE, AFTER = 0.301, 0.151


def buckets(monitor: Monitor) -> list[float]:
    """The exported histogram's cumulative bucket counts, +Inf last."""
    bounds = [*(f"{b}" for b in PROBE_BUCKETS), "+Inf"]
    found = [
        value(monitor, "rollout_auth_callback_duration_seconds_bucket", le=le) for le in bounds
    ]
    return [count or 0.0 for count in found]


def latency(monitor: Monitor, since: list[float]) -> str:
    """The latency reason from prometheus_client's histogram (probes since `since`) and the
    exported baseline: what Prometheus would compute, whatever a loaded machine did to timing."""
    grown = [int(now - then) for now, then in zip(buckets(monitor), since, strict=True)]
    assert len(grown) == len(PROBE_BUCKETS) + 1
    p95 = counts_quantile(0.95, PROBE_BUCKETS, grown[:-1], grown[-1])
    base = value(monitor, "rollout_baseline_auth_callback_duration_seconds", quantile="0.95")
    assert p95 is not None
    assert base is not None
    return (
        f"p95 {p95 * 1000:.1f} ms after the migration, {p95 / base:.2f}x the baseline"
        f" {base * 1000:.1f} ms"
    )


def rollout(fresh_db: FreshDatabase, m: Monitor, answers: list[tuple[int, float]]) -> None:
    """A baseline of 10 probes, the migration, the app answering faster, the checks run."""
    learn(m, 10)
    migrate(fresh_db)
    answers.append((401, AFTER))
    look(m)


def test_healthy_rollout_passes_every_criterion(fresh_db: FreshDatabase) -> None:
    answers = [(401, BEFORE)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        learn(m, 1)
        look(m)
        assert health(m) == "learning"
        assert verdicts(m) == dict.fromkeys(NAMES)  # all inconclusive: absent
        assert inconclusive(m) == dict.fromkeys(NAMES, 1.0)
        assert reasons(m)["migration_completed"] == (
            "inconclusive",
            "the migration is not applied yet",
        )
        rollout(fresh_db, m, answers)
        since = buckets(m)
        probe(m, 10)
        assert verdicts(m) == ALL_PASS, reasons(m)
        assert inconclusive(m) == dict.fromkeys(NAMES, 0.0)
        # Unhurried: "p95 197.5 ms, 0.50x the baseline 395.0 ms" (0.15 + 0.05 * 0.95 after,
        # 0.3 + 0.1 * 0.95 before).
        assert reasons(m) == {
            "migration_completed": ("pass", "applied; every index valid; the trigger enabled"),
            "users_can_authenticate": ("pass", "callback success 100.00% of 10 probes"),
            "new_fields_populated": ("pass", "all 2 users who logged in have both fields"),
            "token_validity_tracking": ("pass", "the trigger is enabled; no token wrongly invalid"),
            "latency_within_10pct": ("pass", latency(m, since)),
            "error_rate_within_baseline": ("pass", "errors 0.00% of 10 probes, limit 1.00%"),
        }
        baseline = m.judgement.observation().baseline
        assert baseline is not None
        assert (baseline.source, baseline.probes) == ("monitor", 11)
        assert health(m) == "usable"


def test_slower_callback_after_the_migration_fails_latency_only(fresh_db: FreshDatabase) -> None:
    answers = [(401, AFTER)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        learn(m, 10)
        migrate(fresh_db)
        look(m)
        answers.append((401, 0.501))
        since = buckets(m)
        probe(m, 10)
        assert verdicts(m) == {**ALL_PASS, "latency_within_10pct": 0.0}, reasons(m)
        # Unhurried: "p95 737.5 ms, 3.73x the baseline 197.5 ms" (0.5 + 0.25 * 0.95 after,
        # 0.15 + 0.05 * 0.95 before).
        assert reasons(m)["latency_within_10pct"] == (
            "fail",
            f"{latency(m, since)}, above 1.10x beyond chance",
        )


def test_errors_after_the_migration_fail_authentication_and_error_rate(
    fresh_db: FreshDatabase,
) -> None:
    answers = [(401, BEFORE)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        rollout(fresh_db, m, answers)
        answers.append((503, AFTER))
        probe(m, 2)  # P(2 or more errors of 10 | 1%) = 0.004: beyond chance
        answers.append((401, AFTER))
        probe(m, 8)
        assert verdicts(m) == {
            **ALL_PASS,
            "users_can_authenticate": 0.0,
            "error_rate_within_baseline": 0.0,
        }, reasons(m)
        assert reasons(m)["users_can_authenticate"] == (
            "fail",
            "callback success 80.00% of 10 probes, below the 99.00% objective",
        )
        assert reasons(m)["error_rate_within_baseline"] == (
            "fail",
            "errors 20.00% of 10 probes, limit 1.00%",
        )
        assert inconclusive(m) == dict.fromkeys(NAMES, 0.0)


def test_a_callback_dead_before_the_migration_is_no_baseline_and_still_fails(
    fresh_db: FreshDatabase,
) -> None:
    """A baseline learned from a dead callback (success 0.0) once let a dead callback pass the
    error rate (limit 100%): it is unhealthy, so the error budget alone decides."""
    answers = [(503, BEFORE)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        rollout(fresh_db, m, [])
        probe(m, 10)
        unhealthy = (
            "unhealthy: callback success 0.00% before the migration, below the 99.00% objective"
        )
        assert reasons(m)["error_rate_within_baseline"] == (
            "fail",
            f"errors 100.00% of 10 probes, limit 1.00% (the error budget alone: baseline"
            f" unusable, {unhealthy})",
        )
        assert reasons(m)["latency_within_10pct"] == (
            "inconclusive",
            f"baseline unusable ({unhealthy})",
        )
        assert verdicts(m)["users_can_authenticate"] == 0.0
        assert health(m) == "unhealthy"


def health(monitor: Monitor) -> str:
    """The one rollout_baseline_health{health} at 1 (all five are always exported)."""
    states = ("learning", "usable", "missing", "too_short", "unhealthy")
    values = {h: value(monitor, "rollout_baseline_health", health=h) for h in states}
    assert sorted(v if v is not None else -1.0 for v in values.values()) == [0, 0, 0, 0, 1], values
    return next(h for h, v in values.items() if v == 1)


def test_logins_failing_while_the_migration_waits_in_a_lock_queue_fail_authentication(
    fresh_db: FreshDatabase,
) -> None:
    """The plan's Risk 1: the migration's ALTER TABLE queues behind an open transaction and
    logins fail until it commits. That run is no baseline (it once learned its timeouts as
    "before the migration") and is judged: its failures fail users_can_authenticate."""
    answers = [(401, AFTER)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        learn(m, 10)
        blocker, migrator = fresh_db.conn(), fresh_db.conn()
        blocker.execute("BEGIN")
        blocker.execute('SELECT count(*) FROM "users"')  # idle in transaction: holds its lock
        migrator.execute(PRISMA_START, (fixtures.MIGRATION_001_NAME,))
        queued = threading.Thread(target=lambda: apply_in_one_transaction(migrator))
        queued.start()
        wait_for_lock_waiters(fresh_db.conn(), 1)
        run(m, "schema")
        assert m.memory.tracker.current().running
        assert value(m, "rollout_migration_running") == 1
        answers.append((503, AFTER))  # logins hang behind the queue, then fail
        probe(m, 5)
        run(m, "schema")
        baseline = m.judgement.observation().baseline
        assert baseline is not None
        assert (baseline.probes, baseline.success_ratio) == (10, 1.0)  # nothing of the run
        blocker.execute("ROLLBACK")
        queued.join(timeout=30)
        migrator.execute(PRISMA_FINISH)
        fixtures.apply(fresh_db.conn(), "seed_after")
        answers.append((401, AFTER))
        look(m)
        assert value(m, "rollout_migration_running") == 0
        probe(m, 10)
        assert reasons(m)["users_can_authenticate"] == (
            "fail",
            "callback success 66.67% of 15 probes, below the 99.00% objective"
            " (5 of 5 failed during the migration)",
        )
        started = value(m, "rollout_migration_started_timestamp_seconds")
        applied = value(m, "rollout_migration_applied_timestamp_seconds")
        assert started is not None
        assert applied is not None
        assert started < applied


def test_rollback_fails_and_reapplying_does_not_undo_it_within_the_window(
    fresh_db: FreshDatabase,
) -> None:
    answers = [(401, BEFORE)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        rollout(fresh_db, m, answers)
        probe(m, 10)
        assert verdicts(m)["migration_completed"] == 1
        fixtures.apply(fresh_db.conn(), "rollback_001")
        run(m, "schema")
        probe(m, 1)
        assert reasons(m)["migration_completed"] == ("fail", "the migration is rolled_back")
        assert m.judgement.observation().stayed_applied is False
        # Prisma's record keeps the first applied time: the window still holds the rollback.
        fixtures.apply(fresh_db.conn(), "migration_001")
        run(m, "schema")
        assert m.judgement.observation().state == "applied"
        assert reasons(m)["migration_completed"] == (
            "fail",
            "the migration left the applied state in the window",
        )
        assert verdicts(m)["migration_completed"] == 0


def test_tokens_wrongly_invalid_fail_until_the_window_has_passed(fresh_db: FreshDatabase) -> None:
    """A trigger bug: the trigger off and unexpired tokens flagged invalid; fixing it later does
    not erase it from the window (as max_over_time would not)."""
    answers = [(401, BEFORE)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        rollout(fresh_db, m, answers)
        conn = fresh_db.conn()
        conn.execute('ALTER TABLE "threads_tokens" DISABLE TRIGGER trigger_update_token_validity')
        conn.execute(
            'UPDATE "threads_tokens" SET "isValid" = false'
            " WHERE \"expiresAt\" > now() AT TIME ZONE 'UTC'"
        )
        look(m)
        probe(m, 10)
        flagged = fixtures.AFTER_TOKENS_UNEXPIRED
        assert value(m, "rollout_token_validity_drift", kind="wrongly_invalid") == flagged
        assert verdicts(m) == {
            **ALL_PASS,
            "migration_completed": 0.0,
            "users_can_authenticate": 0.0,
            "token_validity_tracking": 0.0,
        }, reasons(m)
        assert reasons(m)["token_validity_tracking"] == TRIGGER_OFF
        assert reasons(m)["migration_completed"] == TRIGGER_OFF
        conn.execute('ALTER TABLE "threads_tokens" ENABLE TRIGGER trigger_update_token_validity')
        conn.execute('UPDATE "threads_tokens" SET "updatedAt" = "updatedAt"')  # trigger recomputes
        look(m)
        assert value(m, "rollout_token_validity_drift", kind="wrongly_invalid") == 0
        assert verdicts(m) == {
            **ALL_PASS,
            "users_can_authenticate": 0.0,
            "token_validity_tracking": 0.0,
        }, reasons(m)
        assert reasons(m)["token_validity_tracking"] == (
            "fail",
            f"{flagged} unexpired tokens flagged invalid",
        )


TRIGGER_OFF = ("fail", "the trigger is missing or disabled")


def test_started_after_the_migration_latency_is_inconclusive_and_the_budget_decides_errors(
    fresh_db: FreshDatabase,
) -> None:
    migrate(fresh_db)
    with (
        scripted_server([(401, AFTER)]) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        look(m)
        probe(m, 10)
        assert verdicts(m) == {**ALL_PASS, "latency_within_10pct": None}, reasons(m)
        assert health(m) == "too_short"
        assert inconclusive(m) == {**dict.fromkeys(NAMES, 0.0), "latency_within_10pct": 1.0}
        assert reasons(m)["latency_within_10pct"] == (
            "inconclusive",
            "baseline unusable (too short: 0 probes before the migration, 10 needed)",
        )
        # An unusable baseline is no excuse: the error budget decides the error rate alone.
        assert reasons(m)["error_rate_within_baseline"] == (
            "pass",
            "errors 0.00% of 10 probes, limit 1.00% (the error budget alone: baseline unusable,"
            " too short: 0 probes before the migration, 10 needed)",
        )


def test_a_configured_baseline_decides_when_none_was_learned(fresh_db: FreshDatabase) -> None:
    migrate(fresh_db)
    fixed = {"success_ratio": 0.95, "p95": "400ms"}
    with (
        scripted_server([(401, AFTER)]) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10, fixed=fixed)) as m,
    ):
        look(m)
        probe(m, 10)
        assert verdicts(m) == ALL_PASS, reasons(m)
        # Unhurried: "p95 197.5 ms, 0.49x the baseline 400.0 ms".
        assert reasons(m)["latency_within_10pct"] == ("pass", latency(m, [0.0] * 26))
        assert reasons(m)["error_rate_within_baseline"] == (
            "pass",
            "errors 0.00% of 10 probes, limit 5.00%",
        )
        assert m.judgement.observation().baseline.source == "configuration"  # type: ignore[union-attr]


def test_criteria_settings_set_the_thresholds() -> None:
    default = load_config({"--database-url": "postgresql://h/db"}, {})
    assert thresholds(default) == Thresholds(objective=0.99, min_probes=20, latency_tolerance=1.1)
    data = {
        "database": {"url": "postgresql://h/db"},
        "baseline": {"min_probes": 30},
        "criteria": {"objective": 0.95, "latency_tolerance": 1.2},
    }
    assert thresholds(Config.model_validate(data)) == Thresholds(0.95, 30, 1.2)
    data["criteria"] = {"min_probes": 5}
    assert thresholds(Config.model_validate(data)) == Thresholds(0.99, 5, 1.1)


def test_a_reload_keeps_the_window(fresh_db: FreshDatabase) -> None:
    answers = [(401, BEFORE)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as m,
    ):
        rollout(fresh_db, m, answers)
        since = buckets(m)
        probe(m, 10)
        expected = ("pass", latency(m, since))
        reloaded = Monitor(m.config, Redactor(), previous=m)
        reloaded.db.open()
        with closing(reloaded):
            assert reloaded.judgement.observation().probes == 10
            look(reloaded)
            assert verdicts(reloaded) == ALL_PASS, reasons(reloaded)
            assert reasons(reloaded)["latency_within_10pct"] == expected
            probe(reloaded, 1)
            assert reloaded.judgement.observation().probes == 11


# --- a baseline from Prometheus, for a daemon started after the migration --------------------

HISTORY = Scenario("history", baseline_gauges=False)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    """A real Prometheus holding a generated rollout whose monitor exported no baseline."""
    yield from loaded_prometheus([HISTORY], tmp_path_factory.mktemp("live"))


def test_started_after_the_migration_the_baseline_comes_from_prometheus(
    fresh_db: FreshDatabase, prometheus: LoadedPrometheus
) -> None:
    """The hour before the applied time in Prometheus: 480 probes of two replicas."""
    migrate(fresh_db)
    applied = datetime.fromtimestamp(APPLIED_AT, UTC).isoformat()
    before = [p.duration for p in HISTORY.all_probes(APPLIED_AT - 3600, APPLIED_AT)]
    p95 = bucket_quantile(0.95, PROBE_BUCKETS, [d for d in before if d is not None])
    baseline = {
        "min_probes": 10,
        "prometheus_url": prometheus.url,
        "prometheus_selector": 'job="history"',
    }
    with scripted_server([(401, AFTER)]) as app:
        config = make_config(
            fresh_db.url,
            checks={"callback": {"url": app.url, "timeout": "2s"}},
            baseline=baseline,
            migration={"applied_at": applied},
        )
        m = Monitor(config, Redactor())
        m.db.open()
        with closing(m):
            look(m)
            probe(m, 1)  # the first probe after the migration asks Prometheus, in the background
            deadline = time.monotonic() + 30
            while m.memory.baseline.source != "prometheus_history" and time.monotonic() < deadline:
                time.sleep(0.05)
            probe(m, 9)
            assert m.memory.baseline.source == "prometheus_history"
            assert value(m, "rollout_baseline_source", source="prometheus_history") == 1
            assert value(m, "rollout_baseline_auth_callback_probes") == len(before) == 480
            observed = m.judgement.observation().baseline
            assert observed is not None
            assert (observed.probes, observed.success_ratio, observed.source) == (
                480,
                1.0,
                "prometheus_history",
            )
            assert observed.p95_seconds == pytest.approx(p95)
            assert p95 == pytest.approx(0.06 + 0.015 * (0.95 * 480 - 432) / 48)
            # Unhurried: "p95 197.5 ms, 2.93x the baseline 67.5 ms, above 1.10x beyond chance".
            assert reasons(m)["latency_within_10pct"] == (
                "fail",
                f"{latency(m, [0.0] * 26)}, above 1.10x beyond chance",
            )


# --- the window, with an injected clock ------------------------------------------------------


def test_probes_count_from_the_window_start_whatever_the_state_then() -> None:
    """Nothing before the migration; after, a probe during a rollback counts too (as in the
    verdict: logins that failed while it was rolled back are the rollout's)."""
    parts = Watching()
    parts.probe(0.01)  # before the schema check ran
    parts.publish("pending")
    parts.probe(0.01)
    parts.publish("applied", parts.clock.now)
    parts.probe(0.01)
    parts.publish("rolled_back")
    parts.probe(0.01, "timeout")
    assert (parts.judgement.observation().probes, parts.judgement.observation().successes) == (2, 1)


def test_the_window_is_the_last_24_hours_since_applied() -> None:
    parts = Watching()
    applied = parts.clock.now
    parts.publish("applied", applied)
    parts.probe(0.2, after=1)  # at +1 s
    parts.probe(5.0, "timeout", after=3600)  # at +1 h 1 s, no answer
    parts.probe(0.012, after=WINDOW_SECONDS - 3599)  # at +24 h 2 s: the first has left
    observed = parts.judgement.observation()
    assert (observed.probes, observed.successes) == (2, 1)
    # The one answer left is in (0.01, 0.015]: 0.01 + 0.005 * 0.95.
    assert observed.p95_seconds == pytest.approx(0.01475)
    assert observed.p95_seconds == bucket_quantile(0.95, PROBE_BUCKETS, [0.012])


def test_applied_again_later_starts_a_new_window() -> None:
    parts = Watching()
    parts.publish("applied", parts.clock.now)
    parts.probe(0.01)
    parts.publish("rolled_back")
    parts.probe(0.01)
    assert parts.judgement.observation().stayed_applied is False
    parts.clock.now += 60
    parts.publish("applied", parts.clock.now)
    parts.probe(0.01)
    observed = parts.judgement.observation()
    assert (observed.state, observed.stayed_applied, observed.probes) == ("applied", True, 1)


def test_wrongly_invalid_is_the_most_seen_in_the_window() -> None:
    parts = Watching()
    parts.publish("applied", parts.clock.now)
    assert parts.judgement.observation().wrongly_invalid is None
    parts.report_drift(3)
    parts.probe(0.01)
    parts.report_drift(0)
    parts.probe(0.01)
    assert parts.judgement.observation().wrongly_invalid == 3
    parts.probe(0.01, after=WINDOW_SECONDS)
    assert parts.judgement.observation().wrongly_invalid == 0


def test_absent_while_inconclusive_in_the_exposition() -> None:
    parts = Watching(fixed={"success_ratio": 1.0, "p95": "15ms"})
    parts.publish("applied", parts.clock.now)
    parts.report_drift(0)
    for _ in range(2):
        parts.probe(0.012)
    registry = CollectorRegistry()
    registry.register(parts.judgement)
    samples = {
        (s.name, s.labels["criterion"]): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name.startswith("rollout_success_criterion")
    }
    # No schema snapshot (indexes, trigger) and no logins: those two are inconclusive.
    assert samples == {
        ("rollout_success_criterion", "users_can_authenticate"): 1.0,
        ("rollout_success_criterion", "latency_within_10pct"): 1.0,
        ("rollout_success_criterion", "error_rate_within_baseline"): 1.0,
        **{
            ("rollout_success_criterion_inconclusive", n): float(
                n in ("migration_completed", "new_fields_populated", "token_validity_tracking")
            )
            for n in NAMES
        },
    }


def test_window_memory_is_bounded() -> None:
    window = ProbeWindow()
    for i in range(MAX_PROBES + 5):
        window.add(restored(float(i), i % 2 == 0, 0 if i < 5 else None, None))
    assert len(window.probes) == MAX_PROBES
    assert window.probes[0].at == 5
    assert window.successes == sum(1 for i in range(5, MAX_PROBES + 5) if i % 2 == 0)
    assert window.counted(-math.inf).latencies == Latencies(
        PROBE_BUCKETS, (0,) * len(PROBE_BUCKETS), 0
    )


def test_the_windows_highest_wrongly_invalid_is_the_max_of_the_probes_in_it() -> None:
    """Checked against the plain max after every add and trim, over random values."""
    rng = random.Random(5)  # noqa: S311  # test data, not secrets
    window = ProbeWindow()
    for i in range(2000):
        value = None if rng.random() < 0.2 else float(rng.randrange(6))
        window.add(restored(float(i), True, None, value))
        if i % 7 == 0:
            window.trim(float(i - rng.randrange(50)))
        known = [
            s.around.wrongly_invalid for s in window.probes if s.around.wrongly_invalid is not None
        ]
        assert window.counted(-math.inf).highest_wrongly_invalid == (max(known) if known else None)


def test_counting_from_a_later_start_drops_nothing() -> None:
    """A read counts the probes from the window's start now without dropping the older ones:
    reading twice, or at another start, gives the same counts as a trimmed copy."""
    rng = random.Random(7)  # noqa: S311  # test data, not secrets
    window = ProbeWindow()
    for i in range(500):
        value = None if rng.random() < 0.3 else float(rng.randrange(6))
        bucket = None if rng.random() < 0.1 else rng.randrange(len(PROBE_BUCKETS) + 1)
        window.add(restored(float(i), rng.random() < 0.9, bucket, value))
    for start in (-1.0, 0.0, 137.5, 250.0, 499.0, 600.0):
        trimmed = ProbeWindow()
        for seen in window.probes:
            trimmed.add(seen)
        trimmed.trim(start)
        expected = trimmed.counted(-math.inf)
        assert window.counted(start) == expected
        assert window.counted(start) == expected
        assert len(window.probes) == 500


def test_a_rollback_then_a_reapply_starts_a_new_window_as_the_verdict_does() -> None:
    """Rolled back, then applied again by a new `prisma migrate deploy` (a new applied time): the
    window is the re-apply's. Looks at the migration during the re-apply's own run (still rolled
    back) are not a departure from it; only a transition from applied is (the verdict counts
    changes of the applied state in its window the same way)."""
    parts = Watching(fixed={"success_ratio": 1.0, "p95": "15ms"})
    parts.publish("pending")
    parts.publish("applied", parts.clock.now)
    parts.probe(0.012)
    parts.publish("rolled_back")  # the plan's rollback
    parts.probe(0.012)
    assert parts.judgement.observation().stayed_applied is False
    parts.clock.now += 60
    started = parts.clock.now  # the re-apply's run starts (Prisma's new started_at)
    parts.clock.now += 5
    parts.publish("rolled_back")  # a look during the re-apply's run
    parts.probe(0.012, "server_error", after=1)  # the daemon probes on meanwhile
    parts.clock.now += 5
    parts.publish("applied", parts.clock.now - 2, started)  # Prisma's new finished_at
    parts.probe(0.012)
    observed = parts.judgement.observation()
    # The window is the re-apply's run and after: the probe that failed during the run counts.
    assert (observed.state, observed.stayed_applied) == ("applied", True)
    assert (observed.probes, observed.successes) == (2, 1)


def test_leaving_the_applied_state_inside_the_window_fails_it() -> None:
    """Applied, rolled back, applied again with the same applied time (psql -f, or Prisma's record
    untouched): the window still holds the rollback."""
    parts = Watching(fixed={"success_ratio": 1.0, "p95": "15ms"})
    applied_at = parts.clock.now
    parts.publish("applied", applied_at)
    parts.probe(0.012)
    parts.publish("rolled_back")
    parts.probe(0.012)
    parts.publish("applied", applied_at)
    parts.probe(0.012)
    assert parts.judgement.observation().stayed_applied is False


def test_the_run_stays_in_the_window_as_long_as_the_verdicts_24_hours_after_applied() -> None:
    """A 20-minute lock queue, then applied: 10 minutes before the end of the day after the
    applied time, the run's failures still count, as in the verdict's window (start of the run
    to 24 h after the applied time); they used to fall out 20 minutes early."""
    parts = Watching(fixed={"success_ratio": 1.0, "p95": "15ms"})
    parts.publish("pending")
    started = parts.clock.now
    parts.publish("pending", None, started, running=True)
    for _ in range(3):
        parts.probe(0.012, "timeout", after=300)
    applied = started + 1200
    parts.clock.now = applied
    parts.publish("applied", applied, started)
    parts.probe(0.012)
    parts.clock.now = applied + WINDOW_SECONDS - 600
    observed = parts.judgement.observation()
    assert (observed.run_probes, observed.run_failures) == (3, 3)
    # A day and the run's length on, the window (as long as the verdict's) has left the run.
    parts.clock.now = applied + WINDOW_SECONDS + 1200 + 1
    assert parts.judgement.observation().run_probes == 0


def test_probes_between_the_runs_start_and_the_look_that_saw_it_count() -> None:
    """A 25-second lock queue between two schema looks: the look after it already finds the
    migration applied, with Prisma's started_at. The failed logins of those 25 seconds were held
    and count, as the verdict counts them from started_at; the probe before the start does not."""
    parts = Watching(fixed={"success_ratio": 1.0, "p95": "15ms"})
    parts.publish("pending")
    parts.probe(0.012, after=5)  # before the run
    started = parts.clock.now + 1
    for _ in range(5):
        parts.probe(0.012, "timeout", after=5)  # the run: logins time out
    parts.clock.now += 2
    parts.publish("applied", parts.clock.now - 1, started)
    parts.probe(0.012)
    observed = parts.judgement.observation()
    assert (observed.probes, observed.successes) == (6, 1)
    assert (observed.run_probes, observed.run_failures) == (5, 5)


FIXED = {"success_ratio": 1.0, "p95": "15ms"}


def a_window_with_a_failed_run(parts: Watching) -> None:
    """A run with two failed logins, then applied, then probes, some slow."""
    parts.publish("pending")
    started = parts.clock.now
    parts.publish("pending", None, started, running=True)
    parts.probe(0.012, "timeout", after=5)
    parts.probe(0.012, "timeout", after=5)
    parts.clock.now += 5
    parts.publish("applied", parts.clock.now, started)
    for duration in (0.012, 0.03, 0.2):
        parts.probe(duration)
    parts.report_drift(2)
    parts.probe(0.012)


def test_a_restarted_daemon_carries_on_its_window_from_the_state_file(tmp_path: Path) -> None:
    """The page and rollout_success_criterion after a restart say what they said before it
    (they used to forget the failures the verdict still counted)."""
    path = tmp_path / "baseline-window.json"
    before = Watching(path, fixed=FIXED)
    a_window_with_a_failed_run(before)
    expected = before.live.observation()
    before.live.close()
    after = Watching(path, fixed=FIXED)
    after.clock.now = before.clock.now
    after.tracker.publish(before.tracker.current())
    observed = after.live.observation()
    assert observed == expected
    assert (observed.probes, observed.run_failures, observed.wrongly_invalid) == (6, 2, 2.0)


def test_a_window_kept_for_another_migration_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "baseline-window.json"
    before = Watching(path, fixed=FIXED)
    a_window_with_a_failed_run(before)
    before.live.close()
    with structlog.testing.capture_logs() as logs:
        after = Watching(path, migration="002_other", fixed=FIXED)
    assert after.live.observation().probes == 0
    assert [entry["reason"] for entry in logs] == ["recorded for migration 'm'"]


def test_an_unreadable_window_file_is_logged_and_the_window_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "baseline-window.json"
    path.write_text('{"version": 1, "migration": "m"}')
    with structlog.testing.capture_logs() as logs:
        parts = Watching(path, fixed=FIXED)
    assert parts.judgement.observation().probes == 0
    assert [entry["event"] for entry in logs] == ["window_state_unreadable"]


def test_the_window_is_written_at_most_once_a_minute_while_probes_come_in(tmp_path: Path) -> None:
    path = tmp_path / "baseline-window.json"
    parts = Watching(path, fixed=FIXED)
    parts.publish("applied", parts.clock.now)
    parts.probe(0.012, after=10)
    assert not path.exists()  # 10 s after start
    parts.probe(0.012, after=60)
    kept = json.loads(path.read_text())
    assert (kept["version"], kept["migration"], len(kept["probes"])) == (1, "m", 2)


def test_a_restarted_monitor_reads_its_window_back(fresh_db: FreshDatabase, tmp_path: Path) -> None:
    """Through the real Monitor: stopped (close) and started again with the same state file."""
    state = str(tmp_path / "baseline.json")
    answers = [(401, BEFORE)]
    with scripted_server(answers) as app:
        with closing(monitor_for(fresh_db, app.url, min_probes=10, state_file=state)) as m:
            rollout(fresh_db, m, answers)
            answers.append((503, AFTER))
            probe(m, 10)
            before = m.judgement.observation()
        assert (tmp_path / "baseline-window.json").exists()
        with closing(monitor_for(fresh_db, app.url, min_probes=10, state_file=state)) as again:
            look(again)
            after = again.judgement.observation()
    assert (after.probes, after.successes) == (before.probes, before.successes) == (10, 0)
    assert reasons(again)["users_can_authenticate"][0] == "fail"
