"""The baseline's records: a probe with its context, the summary frozen at the migration,
and the saved state (versioned)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from monitor.judge.observation import BaselineView
from monitor.judge.stats import Latencies
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.probelog import Around, Observed

QUANTILES = ("0.5", "0.95", "0.99")
# 2 added the database context, 3 the latency buckets; older files are still read
STATE_VERSION = 3
SOURCES = ("monitor", "configuration", "prometheus_history", "none")
Source = Literal["monitor", "configuration", "prometheus_history", "none"]


class Record(BaseModel):
    """Strict, immutable, and the same in memory as in the state file; built at first use (a
    state file read or written), not at import."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Plan(Record):
    """How the user lookup reaches users: scan node and index (empty when none)."""

    node: str
    index: str


class Probe(Record):
    """One callback probe: when (Unix time), its outcome, its duration if it got an answer, and
    the database's user-lookup time, plan and connection usage the checks last saw."""

    at: float
    outcome: str
    duration_seconds: float | None
    user_lookup_seconds: float | None = None
    user_lookup_plan: Plan | None = None
    db_connections_ratio: float | None = None
    answer: str | None = None  # the shape of its answer (monitor.observe.answers)


class Summary(Record):
    """What a set of probes says: how many, the share of successes, latency quantiles, and the
    database's median user-lookup time, last plan and highest connection usage."""

    probes: int
    success_ratio: float | None
    duration_seconds: dict[str, float]
    user_lookup_seconds: float | None = None
    user_lookup_plan: Plan | None = None
    db_connections_ratio: float | None = None
    # Answered probes no slower than each of PROBE_BUCKETS, and all answered: what the latency
    # test needs (a version 2 file and a configured baseline have none: p95 is taken as exact).
    bucket_counts: tuple[int, ...] = ()
    answered: int | None = None
    # The shapes of the app's own healthy answers (monitor.observe.answers.learned), and how
    # many answers they were learned from.
    answers: tuple[str, ...] = ()
    answers_from: int = 0

    @property
    def p95_seconds(self) -> float | None:
        """The 0.95 latency quantile, if known."""
        return self.duration_seconds.get("0.95")

    def view(self, source: str) -> BaselineView:
        """The criteria's view of this baseline, from the given source."""
        return BaselineView(
            self.probes, self.success_ratio, self.p95_seconds, source, latencies=self.latencies
        )

    @property
    def latencies(self) -> Latencies | None:
        """The answered probes by bucket, when known."""
        if self.answered is None or len(self.bucket_counts) != len(PROBE_BUCKETS):
            return None
        return Latencies(PROBE_BUCKETS, self.bucket_counts, self.answered)


class SavedState(Record):
    """The state file: a learning window's probes, or the frozen summary and where it came from."""

    version: Literal[1, 2, 3]
    migration: str
    frozen: bool
    confirmed_until: float | None
    probes: tuple[Probe, ...] = ()
    baseline: Summary | None = None
    source: Literal["monitor", "prometheus_history"] = "monitor"

    @model_validator(mode="after")
    def _frozen_has_summary(self) -> SavedState:
        if self.frozen != (self.baseline is not None):
            raise ValueError("a frozen state holds a baseline, a learning one does not")
        return self


def probe_of(observed: Observed) -> Probe:
    """A logged probe as the baseline keeps it: with the database's context around it."""
    around = observed.around
    plan = around.lookup_plan
    return Probe(
        at=observed.at,
        outcome=observed.outcome,
        duration_seconds=observed.latency,
        user_lookup_seconds=around.lookup_seconds,
        user_lookup_plan=None if plan is None else Plan(node=plan[0], index=plan[1]),
        db_connections_ratio=around.connections_ratio,
        answer=observed.answer,
    )


def observed_of(probe: Probe) -> Observed:
    """A probe of the state file back in the log, quiet (it was learned from)."""
    plan = probe.user_lookup_plan
    around = Around(
        lookup_seconds=probe.user_lookup_seconds,
        lookup_plan=None if plan is None else (plan.node, plan.index),
        connections_ratio=probe.db_connections_ratio,
    )
    latency = probe.duration_seconds
    if probe.outcome == "timeout":  # its wait, not an answer
        return Observed(probe.at, probe.outcome, quiet=True, around=around, waited=latency)
    status = None if latency is None else 0  # answered, the status not kept
    return Observed(
        probe.at, probe.outcome, status, latency, quiet=True, around=around, answer=probe.answer
    )
