"""What the gates read, from the real thing: the daemon's gate paths and the rollout_verdict gauge.

`gate_daemon` serves /verdict, /gate/promote and /gate/rollback with the daemon's own exporter
(uvicorn, on 127.0.0.1) and gate, behind basic auth, deciding from a real Prometheus loaded with
generated rollouts (tests/prometheus_blocks.py) over every replica, as `baseline.prometheus_url`
makes the daemon do. Its clock is settable, so that one daemon can be asked during the hour
(inconclusive) and after it (a final pass or fail) without waiting an hour; a Prometheus that is
not there gives the daemon's 503. `gauge_series` is the rollout_verdict gauge two replicas'
judgements export (the daemon's collector, over a world with a settable clock), in the cases a
gate must tell apart, as OpenMetrics for a real Prometheus.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from prometheus_blocks import (
    APPLIED,
    APPLIED_AT,
    Families,
    Probe,
    Scenario,
    gauge,
    healthy_probe,
)
from prometheus_client import CollectorRegistry
from worlds import Watching

from monitor.config.schema import BaselineSettings
from monitor.demo.postgres import free_port
from monitor.http.exporter import Exporter
from monitor.http.webconfig import load_web_config
from monitor.judge.gate import Gate
from monitor.judge.observation import Thresholds
from monitor.observe.readings import Drift, Logins, SchemaHealth
from monitor.output.redact import Redactor

HOST = "127.0.0.1"
AFTER = 1_793_499_000.0  # 2026-11-01T02:30:00Z: the 1h window (01:00:07..02:00:07) is over
DURING = 1_793_496_600.0  # 01:30:00: half the window gone, inconclusive
GAUGE_AT = 1_793_500_000  # 2026-11-01T03:06:40Z: when the gauge's cases are queried
USER, PASSWORD = "gate", "s3cret-Pa55"


def timing_out(instance: str, t: int) -> Probe | None:
    """After the migration every probe times out: users cannot authenticate."""
    return Probe("timeout", None) if t > APPLIED else healthy_probe(instance, t)


def applied(instance: str, t: int) -> str:
    """Applied all along: the monitor started after the migration, never saw it pending."""
    return "applied"


def applied_at(instance: str, t: int) -> float:
    """The applied time as configured (migration.applied_at): 01:00:07."""
    return float(APPLIED_AT)


SCENARIOS = [
    Scenario("healthy"),
    Scenario("broken", probe=timing_out),
    # No baseline exported and none in history: latency cannot be judged, the hour over or not.
    Scenario("no_baseline", state=applied, applied_at=applied_at, baseline_gauges=False),
]
# state -> (the scenario's job, when the daemon is asked)
STATES = {
    "pass": ("healthy", AFTER),
    "fail": ("broken", AFTER),
    "inconclusive": ("healthy", DURING),
    "undecidable": ("no_baseline", AFTER),  # inconclusive over a complete window: final
}


@dataclass
class GateDaemon:
    """A daemon's gate paths on 127.0.0.1, and the clock its gate decides at."""

    url: str
    now: float


def web_config(workdir: Path) -> Path:
    """A web config asking for basic auth: USER with PASSWORD."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = workdir / "web.yml"
    path.write_text(f"basic_auth_users:\n  {USER}: {hashed}\n")
    return path


@contextlib.contextmanager
def gate_daemon(
    prometheus_url: str | None, job: str, now: float, workdir: Path
) -> Iterator[GateDaemon]:
    """The exporter and gate deciding from Prometheus (None: one that is not there) for one job."""
    url = prometheus_url or f"http://{HOST}:{free_port()}"
    settings = BaselineSettings(prometheus_url=url, prometheus_selector=f'job="{job}"')
    daemon = GateDaemon("", now)
    gate = Gate(
        Watching(thresholds=Thresholds()).judgement, settings, Redactor(), lambda: daemon.now
    )
    web = load_web_config(web_config(workdir))
    exporter = Exporter(HOST, 0, CollectorRegistry(), lambda: True, web, gate=gate)
    exporter.start()
    daemon.url = f"http://{HOST}:{exporter.port}"
    try:
        yield daemon
    finally:
        exporter.stop()


def replica_view(result: str) -> dict[tuple[str, str], float]:
    """rollout_verdict as a replica's own judgement exports it, (window, result) -> value, after
    an hour that passes (every probe answered), fails (every fifth a 500) or is unknown (nothing
    seen yet: inconclusive)."""
    world = Watching(
        thresholds=Thresholds(min_probes=20), fixed={"success_ratio": 1.0, "p95": "20ms"}
    )
    if result != "inconclusive":
        world.readings.publish("schema", SchemaHealth(True, True, trigger_missing=False))
        world.readings.publish("drift", Drift(0.0, 0.0))
        world.readings.publish("activity", Logins(5.0, 0.0))
        world.publish("applied", world.clock.now)
        for minute in range(61):
            failing = result == "fail" and minute % 5 == 0
            world.probe(0.012, "server_error" if failing else "success", after=60)
    registry = CollectorRegistry()
    registry.register(world.judgement)
    view = {
        (sample.labels["window"], sample.labels["result"]): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "rollout_verdict"
    }
    assert view[("1h", result)] == 1.0, view
    return view


# job -> each replica's own verdict on the 1h window; "absent": no series at all.
GAUGE_CASES: dict[str, dict[str, str]] = {
    "all_pass": {"a": "pass", "b": "pass"},
    "one_fails": {"a": "fail", "b": "inconclusive"},
    "both_fail": {"a": "fail", "b": "fail"},
    "split": {"a": "pass", "b": "inconclusive"},
    "undecided": {"a": "inconclusive", "b": "inconclusive"},
}


def gauge_series() -> str:
    """Every case's rollout_verdict, as the replicas' judgements export it, scraped every 15 s
    for the 10 minutes up to GAUGE_AT with the labels prometheus-operator's PodMonitor adds."""
    views = {result: replica_view(result) for result in ("pass", "fail", "inconclusive")}
    out = Families()
    for job, replicas in GAUGE_CASES.items():
        for instance, result in replicas.items():
            for (window, label), value in views[result].items():
                labels = (
                    ("job", job),
                    ("namespace", job),
                    ("container", "rollout-monitor"),
                    ("instance", instance),
                    ("window", window),
                    ("result", label),
                )
                for t in range(GAUGE_AT - 600, GAUGE_AT + 1, 15):
                    gauge(out, "rollout_verdict", labels, t, value)
    return out.text()
