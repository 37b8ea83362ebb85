"""Metric definitions: the long-lived metrics, and the latest values each check reported."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from monitor.observe.matchers import MATCHER_OUTCOMES

CHECK_OUTCOMES = ("success", "failure", "skipped", "not_applicable")
PROBE_OUTCOMES = (
    *("success", "server_error", "unexpected_status", "timeout", "connection_error"),
    *("body_too_large", "bad_body"),  # cut off at checks.callback.body_size_limit; undecodable
    *MATCHER_OUTCOMES,  # blackbox-style matchers, each failing with its own
    "unexpected_answer",  # healthy by its status, but not the app's own answer
)
# 5 ms to 10 s: a healthy callback answers in tens of milliseconds, a sick one times out. Up to
# 1 s each bucket is at most 1.5x the one below, so histogram_quantile's linear interpolation
# inside a bucket is off by well under a third: fine enough to see a 10% latency regression.
PROBE_BUCKETS = (
    *(0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1),
    *(0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0),
)


class Snapshots:
    """A collector serving, from memory, the families each check built on its last run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_check: dict[str, tuple[Metric, ...]] = {}

    def replace(self, check: str, families: Iterable[Metric]) -> None:
        """Serve these families for the check from now on, dropping what it reported before."""
        with self._lock:
            self._by_check[check] = tuple(families)

    def collect(self) -> Iterator[Metric]:
        """Every family of every check (prometheus_client's collector interface)."""
        with self._lock:
            current = list(self._by_check.values())
        # Several checks may export samples of one family (rollout_check_estimated{check}):
        # the exposition format allows each family once, so their samples are merged.
        merged: dict[str, Metric] = {}
        for families in current:
            for family in families:
                first = merged.setdefault(family.name, family)
                if first is not family:
                    both = Metric(first.name, first.documentation, first.type, first.unit)
                    both.samples = [*first.samples, *family.samples]
                    merged[family.name] = both
        yield from merged.values()

    def describe(self) -> list[Metric]:
        """Nothing: the families change at run time (avoids a collect at registration)."""
        return []

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample named so that the checks last reported."""
        found = [s for f in self.collect() for s in f.samples if s.name == name]
        return [(dict(s.labels), s.value) for s in found]


class Metrics:
    """The metrics that live as long as the process, registered on the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Moves whenever what a scrape shows changes: a check ran (the probe included), the lead
        # changed hands, a reload failed. A rendering made ahead stands until it moves.
        self.changes = 0

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        # Database-derived: a follower of several monitors (daemon/leader.py) exports none of it.
        self.database_shown = True
        self.postgres = Reachability(lambda: self.database_shown)
        registry.register(self.postgres)
        self.check_success = gauge(
            "rollout_check_success", "1 when the check's last completed run succeeded.", ["check"]
        )
        self.check_duration = gauge(
            "rollout_check_duration_seconds", "Wall time of the check's last run.", ["check"]
        )
        self.check_last_success = gauge(
            "rollout_check_last_success_timestamp_seconds",
            "Unix time of the check's last successful run; 0 before the first.",
            ["check"],
        )
        self.check_skipped = gauge(
            "rollout_check_skipped",
            "1 when the check's last run was skipped because a table it reads was locked.",
            ["check"],
        )
        self.check_applicable = gauge(
            "rollout_check_applicable",
            "0 when the check does not apply yet (the columns it reads do not exist).",
            ["check"],
        )
        self.check_interval = gauge(
            "rollout_check_interval_seconds", "The check's configured interval.", ["check"]
        )
        self.check_runs = Counter(
            "rollout_check_runs",
            "Runs of each check by outcome.",
            ["check", "outcome"],
            registry=registry,
        )
        self.callback_requests = Counter(
            "rollout_auth_callback_requests",
            "Synthetic probes of the OAuth callback by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.callback_duration = Histogram(
            "rollout_auth_callback_duration_seconds",
            "Wall time of each callback probe that got an answer, request sent to response read;"
            " a probe that timed out counts at the time it gave up (at least the deadline).",
            buckets=PROBE_BUCKETS,
            registry=registry,
        )
        self.snapshots = Snapshots()
        registry.register(self.snapshots)
        for outcome in PROBE_OUTCOMES:
            self.callback_requests.labels(outcome)

    def drop_check(self, check: str) -> None:
        """Export none of the check's per-check series (it runs in another replica)."""
        for metric in (
            self.check_interval,
            self.check_success,
            self.check_duration,
            self.check_last_success,
            self.check_skipped,
            self.check_applicable,
        ):
            with contextlib.suppress(KeyError):
                metric.remove(check)
        for outcome in CHECK_OUTCOMES:
            with contextlib.suppress(KeyError):
                self.check_runs.remove(check, outcome)

    def rejoin_check(self, check: str, interval: float) -> None:
        """The per-check series a run does not set, after the check's first run in a replica
        that has just taken the lead: its interval, every outcome's count, and a last success
        of 0 if that run failed (it has not succeeded here yet)."""
        self._declare(check, interval)

    def _declare(self, check: str, interval: float) -> None:
        """The check's interval, every outcome's count, and its last success (0 when new)."""
        self.check_interval.labels(check).set(interval)
        for outcome in CHECK_OUTCOMES:
            self.check_runs.labels(check, outcome)
        self.check_last_success.labels(check)

    def add_check(self, check: str, interval: float) -> None:
        """Export every per-check series from the start, before the check first runs."""
        self._declare(check, interval)
        self.check_success.labels(check).set(0)
        self.check_duration.labels(check).set(0)
        self.check_last_success.labels(check).set(0)
        self.check_skipped.labels(check).set(0)
        self.check_applicable.labels(check).set(1)


class Reachability:
    """Whether the database answered the last poll: what rollout_postgres_up exports (0 until
    a poll reports, and only while `shown()`) and what the status page says."""

    def __init__(self, shown: Callable[[], bool] = lambda: True) -> None:
        self._shown = shown
        self.up: bool | None = None  # None until a poll reported

    def report(self, up: bool) -> None:
        """The last poll could connect and query (True), or could not (False)."""
        self.up = up

    def collect(self) -> list[Metric]:
        """rollout_postgres_up, or nothing (prometheus_client's collector interface)."""
        if not self._shown():
            return []
        return [
            gauge(
                "rollout_postgres_up",
                "1 when the last poll could connect and query, else 0.",
                float(bool(self.up)),
            )
        ]

    def describe(self) -> list[Metric]:
        """Nothing: avoid a collect at registration."""
        return []


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    """A gauge family with one unlabelled sample."""
    return GaugeMetricFamily(name, doc, value=value)


def labelled_gauge(
    name: str, doc: str, labels: Sequence[str], samples: Mapping[tuple[str, ...], float]
) -> GaugeMetricFamily:
    """A gauge family with one sample per label-value tuple."""
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    for values, value in samples.items():
        family.add_metric(list(values), value)
    return family


def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    """A counter family with one unlabelled sample; the name ends in _total."""
    return CounterMetricFamily(name.removesuffix("_total"), doc, value=value)


def one_hot(
    name: str, doc: str, label: str, choices: Sequence[str], current: str
) -> GaugeMetricFamily:
    """1 for the current choice and 0 for every other, all always exported."""
    return labelled_gauge(name, doc, [label], {(c,): float(c == current) for c in choices})
