"""Generated monitor series in a real Prometheus: rollouts written as OpenMetrics, loaded as blocks.

Each scenario is one `job` with two monitor replicas (`instance` a and b) scraped every 15 s for
four hours: the migration is applied at 01:00:07 (Prisma's finished_at; off the scrape grid, as
in life), two hours after the series start (23:00 the day before), so a baseline hour that ends
before the applied time still has data at its start. Each replica probes the callback once per
scrape. `promtool tsdb create-blocks-from openmetrics` turns the file into TSDB blocks, and
`prometheus` serves them on 127.0.0.1 (no scrape targets: nothing changes).

The tests know the truth from the same Scenario objects (how many probes in a window, which
outcome), never from Prometheus's answers.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from monitor.demo.postgres import free_port
from monitor.demo.processes import Process
from monitor.observe.metrics import PROBE_BUCKETS, PROBE_OUTCOMES

BASE = 1_793_491_200  # 2026-11-01T00:00:00Z: fixed, so every run sees the same data
STEP = 15
APPLIED = BASE + 3600  # 01:00, the last scrape before the migration
APPLIED_AT = APPLIED + 7  # 01:00:07, when Prisma says the migration finished
START = BASE - 3600  # 2026-10-31T23:00:00Z: the series start
END = BASE + 3 * 3600
TIMES = range(START, END + 1, STEP)
INSTANCES = ("a", "b")
INDEXES = ("users_threadsUserId_key", "threads_tokens_isValid_idx")
TRIGGER = "update_token_validity"

Labels = tuple[tuple[str, str], ...]
Point = tuple[int, float]  # (Unix time, value)


@dataclass(frozen=True)
class Probe:
    """One callback probe: its outcome and, when it got an answer, its duration."""

    outcome: str
    duration: float | None


def healthy_probe(instance: str, t: int) -> Probe | None:
    """One probe per scrape: success; 9 in 10 take 45 ms, every tenth 70 ms."""
    return Probe("success", 0.07 if step(t) % 10 == 0 else 0.045)


def seen_applied_from(instance: str) -> int:
    """The first scrape after the replica's schema check saw the migration: 01:00:15, b 01:00:30."""
    return APPLIED + (30 if instance == "b" else 15)


def healthy_state(instance: str, t: int) -> str:
    """Pending, then applied from the replica's first look after 01:00."""
    return "applied" if t >= seen_applied_from(instance) else "pending"


def healthy_applied_at(instance: str, t: int) -> float | None:
    """Exported once applied: a reads 01:00:07 from Prisma, b its own first look (observed)."""
    if t < seen_applied_from(instance):
        return None
    return float(APPLIED_AT if instance == "a" else seen_applied_from(instance))


def not_running(instance: str, t: int) -> bool:
    """No run of the migration seen (it ran between two looks)."""
    return False


def no_start(instance: str, t: int) -> float | None:
    """No start time of the migration's run exported."""
    return None


def nothing(instance: str, t: int) -> float:
    """Zero all along."""
    return 0.0


def always(instance: str, t: int) -> bool:
    """True all along."""
    return True


def step(t: int) -> int:
    """The scrape's number since BASE (negative before it)."""
    return (t - BASE) // STEP


# What each replica's daemon learned before the migration and exports: a learned from 240
# probes, b (started later) from 200 with a different p95; the verdict must take a's.
EXPORTED_BASELINE = {
    "a": {"probes": 240.0, "ratio": 1.0, "0.5": 0.0425, "0.95": 0.0675, "0.99": 0.0735},
    "b": {"probes": 200.0, "ratio": 0.995, "0.5": 0.041, "0.95": 0.05, "0.99": 0.07},
}


@dataclass(frozen=True)
class Scenario:
    """One rollout, as two replicas of the monitor saw it; each callable takes (instance, t)."""

    job: str
    probe: Callable[[str, int], Probe | None] = healthy_probe
    state: Callable[[str, int], str] = healthy_state
    applied_at: Callable[[str, int], float | None] = healthy_applied_at
    running: Callable[[str, int], bool] = not_running  # rollout_migration_running
    started_at: Callable[[str, int], float | None] = no_start
    wrongly_invalid: Callable[[str, int], float] = nothing
    missing_field: Callable[[str, int], float] = nothing
    trigger_present: Callable[[str, int], bool] = always  # once the migration's objects exist
    baseline_gauges: bool = True
    # instance -> the rollout_baseline_* values it exports (a value left out: no gauge)
    exported: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: EXPORTED_BASELINE)
    exported_source: str = "monitor"  # rollout_baseline_source
    restarts: frozenset[tuple[str, int]] = frozenset()  # (instance, t): counters start again

    def logins(self, t: int) -> float | None:
        """Users who logged in since the migration: one more a minute."""
        return None if t < APPLIED else float((t - APPLIED) // 60)

    def probes(self, instance: str, after: float, until: float) -> list[Probe]:
        """The probes this replica made at scrapes in (after, until]."""
        found = [self.probe(instance, t) for t in TIMES if after < t <= until]
        return [p for p in found if p is not None]

    def all_probes(self, after: float, until: float) -> list[Probe]:
        """Both replicas' probes at scrapes in (after, until]."""
        return [p for i in INSTANCES for p in self.probes(i, after, until)]


@dataclass
class Families:
    """OpenMetrics families: name -> type, and series -> [(t, value)] in time order."""

    types: dict[str, str] = field(default_factory=dict)
    series: dict[str, dict[tuple[str, Labels], list[tuple[int, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def add(self, family: str, kind: str, name: str, labels: Labels, point: Point) -> None:
        self.types[family] = kind
        self.series[family][(name, labels)].append(point)

    def text(self) -> str:
        lines = []
        for family, kind in self.types.items():
            lines.append(f"# TYPE {family} {kind}")
            for (name, labels), points in self.series[family].items():
                matchers = ",".join(f'{k}="{v}"' for k, v in labels)
                lines += [f"{name}{{{matchers}}} {_number(value)} {t}" for t, value in points]
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """OpenMetrics's spelling of a value (+Inf, -Inf and NaN included)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class Replica:
    """One replica's counters, which a restart sets back to zero."""

    def __init__(self) -> None:
        self.requests = dict.fromkeys(PROBE_OUTCOMES, 0)
        self.buckets = [0] * len(PROBE_BUCKETS)
        self.count = 0
        self.sum = 0.0

    def observe(self, probe: Probe) -> None:
        self.requests[probe.outcome] += 1
        if probe.duration is not None:
            self.count += 1
            self.sum += probe.duration
            for i, bound in enumerate(PROBE_BUCKETS):
                self.buckets[i] += probe.duration <= bound


def gauge(out: Families, name: str, labels: Labels, t: int, value: float | None) -> None:
    if value is not None:
        out.add(name, "gauge", name, labels, (t, value))


def _write_replica(out: Families, scenario: Scenario, instance: str) -> None:
    target: Labels = (("job", scenario.job), ("instance", instance))
    counters = Replica()
    for t in TIMES:
        if (instance, t) in scenario.restarts:
            counters = Replica()
        probe = scenario.probe(instance, t)
        if probe is not None:
            counters.observe(probe)
        write_counters(out, target, t, counters)
        _write_gauges(out, scenario, instance, target, t)


def write_counters(out: Families, target: Labels, t: int, c: Replica) -> None:
    requests = "rollout_auth_callback_requests"
    for outcome, total in c.requests.items():
        out.add(
            requests, "counter", f"{requests}_total", (*target, ("outcome", outcome)), (t, total)
        )
    histogram = "rollout_auth_callback_duration_seconds"
    for bound, total in zip(PROBE_BUCKETS, c.buckets, strict=True):
        le = (("le", repr(bound)),)
        out.add(histogram, "histogram", f"{histogram}_bucket", (*target, *le), (t, total))
    out.add(histogram, "histogram", f"{histogram}_bucket", (*target, ("le", "+Inf")), (t, c.count))
    out.add(histogram, "histogram", f"{histogram}_count", target, (t, c.count))
    out.add(histogram, "histogram", f"{histogram}_sum", target, (t, c.sum))


def _write_gauges(out: Families, s: Scenario, instance: str, target: Labels, t: int) -> None:
    state = s.state(instance, t)
    for name in ("pending", "partial", "applied", "rolled_back"):
        gauge(out, "rollout_migration_state", (*target, ("state", name)), t, float(name == state))
    gauge(out, "rollout_migration_applied_timestamp_seconds", target, t, s.applied_at(instance, t))
    gauge(out, "rollout_migration_running", target, t, float(s.running(instance, t)))
    gauge(out, "rollout_migration_started_timestamp_seconds", target, t, s.started_at(instance, t))
    exists = state in ("applied", "partial")
    trigger_present = exists and s.trigger_present(instance, t)
    for index in INDEXES:
        gauge(
            out,
            "rollout_schema_object_present",
            (*target, ("kind", "index"), ("name", index)),
            t,
            float(exists),
        )
    trigger = (*target, ("name", TRIGGER))
    gauge(
        out,
        "rollout_schema_object_present",
        (*target, ("kind", "trigger"), ("name", TRIGGER)),
        t,
        float(trigger_present),
    )
    if exists:
        for index in INDEXES:
            gauge(out, "rollout_schema_index_valid", (*target, ("name", index)), t, 1.0)
        if trigger_present:  # the schema check exports it for present triggers only
            gauge(out, "rollout_schema_trigger_enabled", trigger, t, 1.0)
        drift = "rollout_token_validity_drift"
        gauge(out, drift, (*target, ("kind", "stale_valid")), t, 0.0)
        gauge(out, drift, (*target, ("kind", "wrongly_invalid")), t, s.wrongly_invalid(instance, t))
        gauge(out, "rollout_users_logged_in_since_migration", target, t, s.logins(t))
        for column in ("threadsFullName", "threadsProfilePic"):
            missing = "rollout_users_logged_in_since_migration_missing_field"
            value = s.missing_field(instance, t) if column == "threadsFullName" else 0.0
            gauge(out, missing, (*target, ("column", column)), t, value)
    if s.baseline_gauges and instance in s.exported:
        _write_baseline(out, s.exported[instance], s.exported_source, target, t)


BASELINE_SOURCES = ("monitor", "configuration", "prometheus_history", "none")


def _write_baseline(
    out: Families, learned: Mapping[str, float], source: str, target: Labels, t: int
) -> None:
    """The gauges monitor/baseline.py exports once frozen; the values given, no others."""
    gauge(out, "rollout_baseline_frozen", target, t, float(t >= APPLIED))
    gauge(out, "rollout_baseline_auth_callback_probes", target, t, learned.get("probes"))
    gauge(out, "rollout_baseline_auth_callback_success_ratio", target, t, learned.get("ratio"))
    for q in ("0.5", "0.95", "0.99"):
        labels = (*target, ("quantile", q))
        gauge(out, "rollout_baseline_auth_callback_duration_seconds", labels, t, learned.get(q))
    for name in BASELINE_SOURCES:
        chosen = float(name == (source if t >= APPLIED else "none"))
        gauge(out, "rollout_baseline_source", (*target, ("source", name)), t, chosen)


def openmetrics(scenarios: list[Scenario]) -> str:
    """Every scenario's series, as one OpenMetrics text."""
    out = Families()
    for scenario in scenarios:
        for instance in INSTANCES:
            _write_replica(out, scenario, instance)
    return out.text()


def variant(scenario: Scenario, job: str, **changes: object) -> Scenario:
    """The scenario under another job, with some behaviour changed."""
    return replace(scenario, job=job, **changes)  # type: ignore[arg-type]


class LoadedPrometheus:
    """A real Prometheus serving blocks made from the scenarios; stopped on close."""

    def __init__(self, series: str, workdir: Path, promtool: str, binary: str):
        workdir.mkdir(parents=True, exist_ok=True)
        source = workdir / "series.om"
        source.write_text(series)
        data = workdir / "data"
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
            check=True,
            capture_output=True,
        )
        config = workdir / "prometheus.yml"
        config.write_text("global: {}\n")
        address = f"127.0.0.1:{free_port()}"
        self.url = f"http://{address}"
        self._process = Process(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address={address}",
                "--storage.tsdb.retention.time=100y",  # the blocks are in the past
            ],
            workdir / "prometheus.log",
        )
        try:
            self._process.wait_ready(f"{self.url}/-/ready")
        except BaseException:
            self._process.stop()
            raise

    def close(self) -> None:
        """Stop Prometheus."""
        self._process.stop()


def loaded_prometheus(scenarios: list[Scenario], workdir: Path) -> Iterator[LoadedPrometheus]:
    """A generator for a pytest fixture: Prometheus up with the scenarios, stopped after."""
    yield from serving(openmetrics(scenarios), workdir)


def serving(series: str, workdir: Path) -> Iterator[LoadedPrometheus]:
    """Prometheus up with these OpenMetrics series, stopped after; a missing binary fails the
    test (the test command installs them), never skips it."""
    found = {name: shutil.which(name) for name in ("promtool", "prometheus")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed (scripts/install-system-deps)")
    promtool, prometheus = str(found["promtool"]), str(found["prometheus"])
    server = LoadedPrometheus(series, workdir, promtool, prometheus)
    try:
        yield server
    finally:
        server.close()
