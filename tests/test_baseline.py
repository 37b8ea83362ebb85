"""The callback baseline: learned while the migration is pending, frozen after, kept on disk."""

from __future__ import annotations

import itertools
import json
import math
import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fixtures
import pytest
import yaml
from callback_servers import (
    delayed_server,
)
from clocks import Clock
from databases import FreshDatabase, frozen_baseline_state
from monitoring import make_config, value
from prometheus_client import CollectorRegistry
from rollouts import closing, learn, monitor_for, run, scripted_server
from structlog.testing import capture_logs
from worlds import learning, run_now

from monitor.config.loading import ConfigError, load_config
from monitor.daemon.service import Monitor
from monitor.judge.baseline import Baseline, Plan, Summary, bucket_quantile
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.migration import MigrationTracker, MigrationView
from monitor.observe.probe import ProbeResult
from monitor.observe.probelog import ProbeLog
from monitor.observe.readings import Connections, Lookup, Readings
from monitor.output.redact import Redactor

DELAY = 0.031  # answers land in the (0.03, 0.04] bucket
QUANTILES = ("0.5", "0.95", "0.99")


def baseline_values(monitor: Monitor) -> dict[str, float | None]:
    """Every baseline sample, absent ones as None."""
    samples: dict[str, float | None] = {
        name: value(monitor, f"rollout_baseline_{name}")
        for name in ("frozen", "auth_callback_probes", "auth_callback_success_ratio")
    }
    for q in QUANTILES:
        samples[q] = value(monitor, "rollout_baseline_auth_callback_duration_seconds", quantile=q)
    return samples


def exported(monitor: Monitor) -> bool:
    """Whether any of the baseline's values (beyond frozen and probes) is exported."""
    values = baseline_values(monitor)
    return any(values[k] is not None for k in ("auth_callback_success_ratio", *QUANTILES))


# --- the quantile estimate -------------------------------------------------------------------

BOUNDS = (0.01, 0.02, 0.05)


@pytest.mark.parametrize(
    ("q", "values", "expected"),
    [
        (0.5, [0.005], 0.005),  # first bucket: lower bound 0, rank 0.5 of 1
        (0.5, [0.01] * 4, 0.005),  # on the bound counts as inside (le is <=)
        (0.5, [0.001, 0.015, 0.015, 0.015], 0.01 + 0.01 * (1 / 3)),  # rank 2: 1 below, 3 in
        (0.95, [0.001] * 18 + [0.03] * 2, 0.02 + 0.03 * (1 / 2)),  # rank 19: 18 below, 2 in
        (0.99, [0.001] * 99 + [0.045], 0.01),  # rank 99: reached at the first bucket's top
        (0.995, [0.001] * 99 + [0.045], 0.02 + 0.03 * (0.5 / 1)),  # rank 99.5: 99 below, 1 in
        (0.99, [1.0] * 10, 0.05),  # +Inf bucket: the highest finite bound, as Prometheus says
        (0.5, [0.001, 7.0], 0.01),  # rank 1 reached by the first bucket's count
    ],
)
def test_bucket_quantile_interpolates_like_histogram_quantile(
    q: float, values: list[float], expected: float
) -> None:
    assert bucket_quantile(q, BOUNDS, values) == pytest.approx(expected, rel=1e-12)


def test_bucket_quantile_of_nothing_is_none() -> None:
    assert bucket_quantile(0.5, BOUNDS, []) is None


def promtool_agrees(cumulative: list[float], quantiles: dict[float, float], tmp_path: Path) -> bool:
    """Whether Prometheus's histogram_quantile over these bucket counts gives these quantiles."""
    bounds = [repr(b) for b in PROBE_BUCKETS] + ["+Inf"]
    test = {
        "rule_files": [],
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'h_bucket{{le="{le}"}}', "values": repr(count)}
                    for le, count in zip(bounds, cumulative, strict=True)
                ],
                "promql_expr_test": [
                    {
                        "expr": f"histogram_quantile({q}, h_bucket)",
                        "eval_time": "0m",
                        "exp_samples": [{"labels": "{}", "value": expected}],
                    }
                    for q, expected in quantiles.items()
                ],
            }
        ],
    }
    path = tmp_path / "quantiles.test.yml"
    path.write_text(yaml.safe_dump(test))
    done = subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, check=False
    )
    return done.returncode == 0


def test_bucket_quantile_agrees_with_prometheus(tmp_path: Path) -> None:
    """promtool evaluates histogram_quantile over the same buckets and expects our numbers."""
    draw = random.Random(3)  # noqa: S311  # reproducible latencies, not secrets
    values = [draw.lognormvariate(-3.2, 0.9) for _ in range(500)] + [12.0, 0.005, 0.0075]
    qs = (0.1, 0.5, 0.9, 0.95, 0.99, 0.999)
    ours = {q: bucket_quantile(q, PROBE_BUCKETS, values) or 0.0 for q in qs}
    cumulative = [float(sum(1 for v in values if v <= b)) for b in PROBE_BUCKETS] + [len(values)]
    assert promtool_agrees(cumulative, ours, tmp_path)
    assert not promtool_agrees(cumulative, {0.95: ours[0.95] * 1.001}, tmp_path)


def test_probe_buckets_are_fine_from_5ms_to_10s() -> None:
    assert (PROBE_BUCKETS[0], PROBE_BUCKETS[-1], len(PROBE_BUCKETS)) == (0.005, 10.0, 25)
    below_a_second = [b for b in PROBE_BUCKETS if b <= 1]
    assert max(hi / lo for lo, hi in itertools.pairwise(below_a_second)) <= 1.5


# --- learning, freezing, persisting, against the suite's PostgreSQL and callback servers -----


def test_learns_while_pending_and_exports_bucket_interpolated_quantiles(
    fresh_db: FreshDatabase,
) -> None:
    with (
        delayed_server(401, 0.151) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=10)) as monitor,
    ):
        learn(monitor, 10)
        histogram = "rollout_auth_callback_duration_seconds_bucket"
        assert (value(monitor, histogram, le="0.15"), value(monitor, histogram, le="0.2")) == (
            0.0,
            10.0,
        ), "a probe answered outside (0.15, 0.2]: the machine is too slow for this test"
        # All 10 in (0.15, 0.2]: 0.15 + 0.05 * (q * 10) / 10.
        assert baseline_values(monitor) == {
            "frozen": 0.0,
            "auth_callback_probes": 10.0,
            "auth_callback_success_ratio": 1.0,
            "0.5": pytest.approx(0.175),
            "0.95": pytest.approx(0.1975),
            "0.99": pytest.approx(0.1995),
        }


def test_baseline_quantiles_are_what_prometheus_makes_of_the_histogram(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """The exported histogram's buckets, fed to promtool, give the baseline's quantiles."""
    with delayed_server(401, DELAY) as app, closing(monitor_for(fresh_db, app.url)) as monitor:
        learn(monitor, 20)
        bounds = [*(f"{b}" for b in PROBE_BUCKETS), "+Inf"]
        buckets = [
            value(monitor, "rollout_auth_callback_duration_seconds_bucket", le=le) for le in bounds
        ]
        cumulative = [count for count in buckets if count is not None]
        ours = {float(q): baseline_values(monitor)[q] or 0.0 for q in QUANTILES}
    assert len(cumulative) == len(bounds)
    assert cumulative[-1] == 20
    assert promtool_agrees(cumulative, ours, tmp_path)


def test_success_ratio_counts_every_outcome(fresh_db: FreshDatabase) -> None:
    answers = [(401, 0.0)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=4)) as m,
    ):
        learn(m, 3)
        answers.append((503, 0.0))
        learn(m, 1)
        assert value(m, "rollout_auth_callback_requests_total", outcome="server_error") == 1
        assert value(m, "rollout_baseline_auth_callback_success_ratio") == 0.75


def test_nothing_exported_below_min_probes(fresh_db: FreshDatabase) -> None:
    with (
        delayed_server(401, 0.0) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=3)) as m,
    ):
        learn(m, 2)
        assert value(m, "rollout_baseline_auth_callback_probes") == 2
        assert value(m, "rollout_baseline_frozen") == 0
        assert not exported(m)
        learn(m, 1)
        assert exported(m)


def test_freezes_when_migration_applied_and_stops_changing(fresh_db: FreshDatabase) -> None:
    answers = [(401, DELAY)]
    with (
        scripted_server(answers) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=5)) as m,
    ):
        learn(m, 5)
        learned = baseline_values(m)
        fixtures.apply(fresh_db.conn(), "migration_001")
        run(m, "schema")
        assert value(m, "rollout_baseline_frozen") == 1
        answers.append((401, 0.2))
        learn(m, 3)
        assert value(m, "rollout_auth_callback_duration_seconds_bucket", le="0.2") == 5
        assert baseline_values(m) == {**learned, "frozen": 1.0}


def test_frozen_baseline_survives_a_restart(fresh_db: FreshDatabase, tmp_path: Path) -> None:
    state = tmp_path / "baseline.json"
    with delayed_server(401, DELAY) as app:
        with closing(monitor_for(fresh_db, app.url, min_probes=3, state_file=str(state))) as m:
            learn(m, 3)
            fixtures.apply(fresh_db.conn(), "migration_001")
            run(m, "schema")
            frozen = baseline_values(m)
        restarted = monitor_for(fresh_db, app.url, min_probes=3, state_file=str(state))
        with closing(restarted):
            assert baseline_values(restarted) == frozen
            assert frozen["frozen"] == 1
            assert frozen["auth_callback_probes"] == 3
    saved = json.loads(state.read_text())
    assert (saved["version"], saved["frozen"], saved["probes"]) == (3, True, [])
    assert saved["baseline"]["probes"] == 3
    assert saved["migration"] == fixtures.MIGRATION_001_NAME


def test_learning_window_on_disk_is_frozen_when_restarted_after_the_migration(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """A monitor down while the migration ran freezes the probes its predecessor took before."""
    state = tmp_path / "baseline.json"
    with delayed_server(401, DELAY) as app:
        with closing(monitor_for(fresh_db, app.url, min_probes=3, state_file=str(state))) as m:
            learn(m, 3)
            learned = baseline_values(m)
        assert json.loads(state.read_text())["frozen"] is False
        assert len(json.loads(state.read_text())["probes"]) == 3
        fixtures.apply(fresh_db.conn(), "migration_001")
        restarted = monitor_for(fresh_db, app.url, min_probes=3, state_file=str(state))
        with closing(restarted):
            learn(restarted, 2)
            assert baseline_values(restarted) == {**learned, "frozen": 1.0}


def test_started_after_the_migration_without_a_state_file_has_no_baseline(
    fresh_db: FreshDatabase,
) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001")
    with (
        delayed_server(401, 0.0) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=1)) as m,
    ):
        learn(m, 3)
        assert value(m, "rollout_baseline_frozen") == 1
        assert value(m, "rollout_baseline_auth_callback_probes") == 0
        assert not exported(m)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "Invalid JSON: key must be a string at line 1 column 2"),
        (
            '{"version": 4, "migration": "001_threads_oauth_enhancements", "frozen": false,'
            ' "confirmed_until": null}',
            "version: Input should be 1, 2 or 3",
        ),
        (
            '{"version": 1, "migration": "001_threads_oauth_enhancements", "frozen": true,'
            ' "confirmed_until": null}',
            "Value error, a frozen state holds a baseline, a learning one does not",
        ),
        (
            '{"version": 1, "migration": "002_other", "frozen": false, "confirmed_until": null}',
            "recorded for migration '002_other'",
        ),
    ],
)
def test_unusable_state_file_logs_a_warning_and_learning_starts_afresh(
    fresh_db: FreshDatabase, tmp_path: Path, content: str, reason: str
) -> None:
    state = tmp_path / "baseline.json"
    state.write_text(content)
    with (
        delayed_server(401, 0.0) as app,
        capture_logs() as logs,
        closing(monitor_for(fresh_db, app.url, state_file=str(state))) as monitor,
    ):
        learn(monitor, 1)
        assert value(monitor, "rollout_baseline_frozen") == 0
        assert value(monitor, "rollout_baseline_auth_callback_probes") == 1
    warnings = [e for e in logs if e["event"] == "baseline_state_unreadable"]
    assert warnings == [
        {
            "event": "baseline_state_unreadable",
            "log_level": "warning",
            "file": str(state),
            "reason": reason,
            "action": "relearn",
        }
    ]
    assert json.loads(state.read_text())["version"] == 3  # replaced by a good one on close


# --- the window, with an injected clock ------------------------------------------------------


def answered(duration: float) -> ProbeResult:
    return ProbeResult("success", duration, 401)


def window_baseline(clock: Clock, **settings: Any) -> tuple[Baseline, MigrationTracker, ProbeLog]:
    """A baseline over a minute of probes at most, wired to its tracker and log."""
    world = learning(clock, **{"window": "1m", "min_probes": 1, **settings})
    return world.baseline, world.tracker, world.log


def gauges(baseline: Baseline) -> dict[str, float]:
    """The baseline's samples by name (labelled ones as name{values}), but its source."""
    registry = CollectorRegistry()
    registry.register(baseline)
    return {
        s.name + (f"{{{','.join(s.labels.values())}}}" if s.labels else ""): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name != "rollout_baseline_source"
    }


def answered_gauges(*durations: float) -> dict[str, float]:
    """rollout_baseline_auth_callback_answered_probes{le} for these answered probes."""
    bounds = [*(repr(float(b)) for b in PROBE_BUCKETS), "+Inf"]
    limits = [*PROBE_BUCKETS, math.inf]
    return {
        f"rollout_baseline_auth_callback_answered_probes{{{le}}}": float(
            sum(1 for d in durations if d <= limit)
        )
        for le, limit in zip(bounds, limits, strict=True)
    }


def test_window_drops_probes_older_than_the_window() -> None:
    clock = Clock()
    baseline, tracker, log = window_baseline(clock)
    start = clock.now
    for offset, duration in ((0, 0.2), (20, 0.012), (40, 0.012), (70, 0.012)):
        clock.now = start + offset
        tracker.publish(MigrationView("pending"))
        log.record(answered(duration))
    tracker.publish(MigrationView("pending"))
    # The 0.2 s probe at 0 s is older than a minute at 70 s; the three left are in (0.01, 0.015].
    assert gauges(baseline) == {
        "rollout_baseline_frozen": 0.0,
        "rollout_baseline_auth_callback_probes": 3.0,
        "rollout_baseline_auth_callback_success_ratio": 1.0,
        "rollout_baseline_auth_callback_duration_seconds{0.5}": pytest.approx(0.0125),
        "rollout_baseline_auth_callback_duration_seconds{0.95}": pytest.approx(0.01475),
        "rollout_baseline_auth_callback_duration_seconds{0.99}": pytest.approx(0.01495),
        **answered_gauges(0.012, 0.012, 0.012),
    }


def test_window_holds_at_most_window_over_interval_probes() -> None:
    clock = Clock()
    baseline, tracker, log = window_baseline(clock)
    tracker.publish(MigrationView("pending"))
    for _ in range(20):
        log.record(answered(0.01))
    tracker.publish(MigrationView("pending"))
    assert gauges(baseline)["rollout_baseline_auth_callback_probes"] == 7  # 60 s / 10 s + 1


def test_probes_after_the_last_pending_schema_check_are_left_out() -> None:
    """A probe may already see the migrated app before the schema check notices: it is not kept."""
    clock = Clock()
    baseline, tracker, log = window_baseline(clock)
    tracker.publish(MigrationView("pending"))
    clock.now += 5
    log.record(answered(0.004))  # not confirmed pending yet
    assert gauges(baseline)["rollout_baseline_auth_callback_probes"] == 0
    clock.now += 5
    tracker.publish(MigrationView("pending"))
    clock.now += 10
    log.record(answered(3.0))  # taken after the migration finished
    clock.now += 10
    tracker.publish(MigrationView("applied", True))
    assert gauges(baseline) == {
        "rollout_baseline_frozen": 1.0,
        "rollout_baseline_auth_callback_probes": 1.0,
        "rollout_baseline_auth_callback_success_ratio": 1.0,
        "rollout_baseline_auth_callback_duration_seconds{0.5}": pytest.approx(0.0025),
        "rollout_baseline_auth_callback_duration_seconds{0.95}": pytest.approx(0.00475),
        "rollout_baseline_auth_callback_duration_seconds{0.99}": pytest.approx(0.00495),
        **answered_gauges(0.004),
    }


def test_nothing_learned_before_the_schema_check_ran() -> None:
    clock = Clock()
    baseline, tracker, log = window_baseline(clock)
    log.record(answered(0.01))
    tracker.publish(MigrationView("pending"))
    assert gauges(baseline)["rollout_baseline_auth_callback_probes"] == 0


# --- per-check interval, and the configuration ------------------------------------------------


def test_check_interval_is_exported_for_every_check_from_the_start(
    fresh_db: FreshDatabase,
) -> None:
    config = make_config(
        fresh_db.url,
        checks={"drift": {"interval": "2m"}, "callback": {"enabled": True, "interval": "20s"}},
    )
    monitor = Monitor(config, Redactor())
    expected = {
        "schema": 30.0,
        "drift": 120.0,
        "backfill": 60.0,
        "connections": 15.0,
        "activity": 30.0,
        "query_performance": 300.0,
        "pool": 15.0,
        "callback": 20.0,
    }
    assert {
        check: value(monitor, "rollout_check_interval_seconds", check=check) for check in expected
    } == expected


def test_baseline_defaults() -> None:
    config = load_config({"--database-url": "postgresql://h/db"}, {})
    assert (config.baseline.window, config.baseline.min_probes) == (3600.0, 20)
    assert config.baseline.state_file is None
    assert (config.baseline.fixed, config.baseline.prometheus_url) == (None, None)
    criteria = config.criteria
    assert (criteria.objective, criteria.min_probes, criteria.latency_tolerance) == (
        0.99,
        None,
        1.1,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("baseline:\n  window: 0s\n", "F: baseline.window: must be longer than 0s"),
        ("baseline:\n  min_probes: 0\n", "F: baseline.min_probes: must be at least 1"),
        ("baseline:\n  statefile: x\n", "F: baseline.statefile: unknown key"),
        (
            "baseline:\n  fixed: {}\n",
            "F: baseline.fixed: set at least one value, e.g. success_ratio or p95",
        ),
        (
            "baseline:\n  fixed:\n    success_ratio: 1.5\n",
            "F: baseline.fixed.success_ratio: must be at most 1.0",
        ),
        (
            "baseline:\n  fixed:\n    p95: 120\n",
            "F: baseline.fixed.p95: invalid duration 120: expected a number with a unit ms, s,"
            " m, h, d or w, e.g. 15s or 1h30m",
        ),
        ("baseline:\n  fixed:\n    p90: 1s\n", "F: baseline.fixed.p90: unknown key"),
        (
            "baseline:\n  prometheus_url: prom:9090\n",
            "F: baseline.prometheus_url: expected an http:// or https:// URL",
        ),
        (
            "baseline:\n  prometheus_selector: job=x\n",
            "F: baseline.prometheus_selector: 'job=x' is not a list of label matchers like"
            ' job="rollout-monitor"',
        ),
        ("criteria:\n  objective: 0\n", "F: criteria.objective: input should be greater than 0"),
        (
            "criteria:\n  latency_tolerance: 0.9\n",
            "F: criteria.latency_tolerance: must be at least 1.0",
        ),
        ("criteria:\n  min_probes: 0\n", "F: criteria.min_probes: must be at least 1"),
    ],
)
def test_bad_baseline_settings_are_reported_with_their_location(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config({"--config": str(path), "--database-url": "postgresql://h/db"}, {})
    assert [p.replace(str(path), "F") for p in caught.value.problems] == [expected]


def test_daemon_run_after_a_watched_rollout_exports_every_new_gauge(
    exported_names: set[str],
) -> None:
    """The names alerts and dashboards may rely on (exported_names feeds their tests)."""
    assert {
        "rollout_check_interval_seconds",
        "rollout_baseline_frozen",
        "rollout_baseline_auth_callback_probes",
        "rollout_baseline_auth_callback_success_ratio",
        "rollout_baseline_auth_callback_duration_seconds",
        "rollout_baseline_auth_callback_answered_probes",
        "rollout_baseline_source",
        "rollout_success_criterion",
        "rollout_success_criterion_inconclusive",
    } <= exported_names


def test_state_file_that_cannot_be_written_is_logged_and_learning_goes_on(tmp_path: Path) -> None:
    clock = Clock()
    state = tmp_path / "missing-dir" / "baseline.json"
    baseline, tracker, log = window_baseline(clock, state_file=str(state))
    tracker.publish(MigrationView("pending"))
    with capture_logs() as logs:
        log.record(answered(0.01))
    clock.now += 1
    tracker.publish(MigrationView("pending"))
    assert gauges(baseline)["rollout_baseline_auth_callback_probes"] == 1
    assert [(e["event"], e["file"]) for e in logs] == [("baseline_state_not_saved", str(state))]
    assert not state.parent.exists()


# --- the database around the callback: user-lookup time and plan, connection usage ---------


def test_learns_the_user_lookup_and_connections_while_pending(fresh_db: FreshDatabase) -> None:
    """The values the checks exported while pending (one run each: the median is it); the
    lookup by threadsUserId goes through Prisma's unique key (seed schema, before migration)."""
    with (
        delayed_server(401, 0.0) as app,
        closing(monitor_for(fresh_db, app.url, min_probes=2)) as m,
    ):
        for check in ("query_performance", "connections"):
            assert run(m, check) == "success"
        lookup = value(m, "rollout_user_lookup_execution_seconds")
        reading = m.memory.readings.get(Connections)
        assert reading is not None
        connections = reading.clients
        limit = value(m, "rollout_db_max_connections")
        assert lookup is not None
        assert limit is not None
        assert connections >= 1  # the monitor's own session at least
        learn(m, 2)
        fixtures.apply(fresh_db.conn(), "migration_001")
        assert run(m, "schema") == "success"
        assert run(m, "query_performance") == "success"  # after: not part of the baseline
        assert value(m, "rollout_baseline_user_lookup_execution_seconds") == lookup
        plan = {"node": "Index Scan", "index": "users_threadsUserId_key"}
        assert value(m, "rollout_baseline_user_lookup_plan_info", **plan) == 1
        assert value(m, "rollout_baseline_db_connections_ratio") == connections / limit
        summary = m.memory.baseline.summary()
        assert summary is not None
        assert summary.user_lookup_plan == Plan(**plan)


def report(readings: Readings, lookup: float, plan: tuple[str, str], active: float) -> None:
    """What query_performance and connections would have reported: `active` connections
    active, 2 idle, of 100."""
    readings.publish("query_performance", Lookup(lookup, *plan))
    readings.publish("connections", Connections(active + 2.0, 100.0, 0.0, 0.0))


def test_user_lookup_median_last_plan_and_most_connections() -> None:
    clock = Clock()
    readings = Readings()
    world = learning(clock, readings=readings, window="1h", min_probes=3)
    tracker, log, baseline = world.tracker, world.log, world.baseline
    tracker.publish(MigrationView("pending"))
    for lookup, plan, active in (
        (0.002, ("Seq Scan", ""), 8.0),
        (0.006, ("Seq Scan", ""), 18.0),
        (0.003, ("Index Scan", "idx_users_threads_user_id"), 3.0),
    ):
        report(readings, lookup, plan, active)
        clock.now += 10
        log.record(answered(0.012))
    clock.now += 10
    tracker.publish(MigrationView("pending"))
    values = gauges(baseline)
    assert {k: v for k, v in values.items() if "user_lookup" in k or "connections" in k} == {
        "rollout_baseline_user_lookup_execution_seconds": 0.003,
        "rollout_baseline_user_lookup_plan_info{Index Scan,idx_users_threads_user_id}": 1.0,
        "rollout_baseline_db_connections_ratio": 0.2,  # (18 + 2) / 100
    }


# --- where the baseline comes from -------------------------------------------------------------


def sources(baseline: Baseline) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(baseline)
    return {
        s.labels["source"]: s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == "rollout_baseline_source"
    }


def test_a_configured_baseline_is_used_as_given_and_never_learned(tmp_path: Path) -> None:
    clock = Clock()
    state = tmp_path / "baseline.json"
    fixed = {"success_ratio": 0.995, "p50": "40ms", "p95": "120ms", "db_connections_ratio": 0.4}
    baseline, tracker, log = window_baseline(
        clock, min_probes=20, fixed=fixed, state_file=str(state)
    )
    tracker.publish(MigrationView("pending"))
    log.record(answered(3.0))
    baseline.close()
    assert gauges(baseline) == {
        "rollout_baseline_frozen": 1.0,
        "rollout_baseline_auth_callback_probes": 20.0,
        "rollout_baseline_auth_callback_success_ratio": 0.995,
        "rollout_baseline_auth_callback_duration_seconds{0.5}": 0.04,
        "rollout_baseline_auth_callback_duration_seconds{0.95}": 0.12,
        "rollout_baseline_db_connections_ratio": 0.4,
    }
    assert baseline.source == "configuration"
    assert sources(baseline) == {
        "monitor": 0.0,
        "configuration": 1.0,
        "prometheus_history": 0.0,
        "none": 0.0,
    }
    assert not state.exists()  # nothing learned, nothing to keep


def test_learning_then_frozen_sources() -> None:
    clock = Clock()
    baseline, tracker, log = window_baseline(clock)
    assert (baseline.summary(), baseline.source) == (None, "none")
    assert sources(baseline)["none"] == 1
    tracker.publish(MigrationView("pending"))
    log.record(answered(0.012))
    clock.now += 1
    tracker.publish(MigrationView("applied", True))
    assert baseline.source == "monitor"
    summary = baseline.summary()
    assert summary is not None
    assert (summary.probes, summary.success_ratio) == (1, 1.0)
    assert summary.p95_seconds == pytest.approx(0.01475)  # 0.01 + 0.005 * 0.95


HISTORY = Summary(
    probes=240, success_ratio=0.99, duration_seconds={"0.5": 0.03, "0.95": 0.06, "0.99": 0.09}
)


class History:
    """A fetch hook answering from a script: a summary, None, or an error to raise."""

    def __init__(self, answers: list[Summary | Exception | None]) -> None:
        self.answers = answers
        self.asked: list[float] = []

    def __call__(self, applied_at: float) -> Summary | None:
        self.asked.append(applied_at)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_thin_baseline_is_taken_from_prometheus_history(tmp_path: Path) -> None:
    """Asked with the applied time, on a probe (never in a scrape), again a minute after a miss;
    what it gives is kept across a restart."""
    clock = Clock()
    state = tmp_path / "baseline.json"
    history = History([None, RuntimeError("connection refused"), HISTORY])
    world = learning(clock, fetch=history, spawn=run_now, min_probes=20, state_file=str(state))
    tracker, log, baseline = world.tracker, world.log, world.baseline
    applied = datetime.fromtimestamp(clock.now - 30, UTC)
    tracker.publish(MigrationView("applied", True, applied, applied, "prisma"))
    assert gauges(baseline)["rollout_baseline_frozen"] == 1
    assert history.asked == []  # not in a scrape
    log.record(answered(0.01))
    assert (history.asked, baseline.source) == ([applied.timestamp()], "monitor")
    clock.now += 59
    log.record(answered(0.01))
    assert len(history.asked) == 1  # a minute between attempts
    clock.now += 1
    with capture_logs() as logs:
        log.record(answered(0.01))
    assert [(e["event"], e["reason"]) for e in logs] == [
        ("baseline_fetch_failed", "connection refused")
    ]
    clock.now += 60
    log.record(answered(0.01))
    assert (baseline.summary(), baseline.source) == (HISTORY, "prometheus_history")
    assert sources(baseline)["prometheus_history"] == 1
    assert gauges(baseline)["rollout_baseline_auth_callback_probes"] == 240
    clock.now += 600
    log.record(answered(0.01))
    assert len(history.asked) == 3  # enough probes now: not asked again
    restarted = learning(
        clock, fetch=History([]), spawn=run_now, min_probes=20, state_file=str(state)
    ).baseline
    assert (restarted.summary(), restarted.source) == (HISTORY, "prometheus_history")


def test_a_baseline_with_enough_probes_is_not_replaced_from_history() -> None:
    clock = Clock()
    history = History([HISTORY])
    world = learning(clock, fetch=history, spawn=run_now, min_probes=1)
    tracker, log, baseline = world.tracker, world.log, world.baseline
    tracker.publish(MigrationView("pending"))
    log.record(answered(0.01))
    clock.now += 1
    applied = datetime.fromtimestamp(clock.now, UTC)
    tracker.publish(MigrationView("applied", True, applied, applied, "observed"))
    log.record(answered(0.01))
    assert (history.asked, baseline.source) == ([], "monitor")


def test_a_version_1_state_file_is_still_read(fresh_db: FreshDatabase, tmp_path: Path) -> None:
    state = tmp_path / "baseline.json"
    state.write_text(frozen_baseline_state(version=1))
    assert json.loads(state.read_text())["version"] == 1
    with (
        delayed_server(401, 0.0) as app,
        closing(monitor_for(fresh_db, app.url, state_file=str(state))) as m,
    ):
        assert (m.memory.baseline.source, value(m, "rollout_baseline_auth_callback_probes")) == (
            "monitor",
            240,
        )
        assert value(m, "rollout_baseline_auth_callback_duration_seconds", quantile="0.95") == 0.06
        assert value(m, "rollout_baseline_user_lookup_execution_seconds") is None
    assert json.loads(state.read_text())["version"] == 3


def test_a_scrape_never_writes_the_state_file(tmp_path: Path) -> None:
    """Issue 13: the baseline froze, and wrote its state file, inside collect() (on the scrape
    path) when a scrape was the first to see the migration applied. Now it freezes when the
    schema check publishes the migration's view, and writes its file then; a scrape writes
    nothing."""
    clock = Clock()
    state = tmp_path / "baseline.json"
    baseline, tracker, log = window_baseline(clock, state_file=str(state))
    tracker.publish(MigrationView("pending"))
    log.record(answered(0.01))  # saved: the first probe learned
    clock.now += 1
    tracker.publish(MigrationView("pending"))
    tracker.publish(MigrationView("applied", True))  # the schema check's thread writes it
    assert json.loads(state.read_text())["frozen"] is True
    state.write_text("left by the test")
    gauges(baseline)  # a scrape
    assert baseline.summary() is not None
    assert state.read_text() == "left by the test"
