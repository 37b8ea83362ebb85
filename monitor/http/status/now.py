"""The status page's "now": the last probe, the last minutes, the database, and what would page.

"Since the migration" says whether the rollout met the plan; "now" says whether users can log in
at this moment. Both are decided by the same rules (judge/criteria.py): the now-view judges the
last five minutes of probes and the latest token count instead of the whole window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from monitor.judge.criteria import decide
from monitor.judge.observation import Decision, Observation, Thresholds
from monitor.judge.stats import Latencies
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.probelog import Observed
from monitor.observe.readings import Connections, Readings

NOW_SECONDS = 300.0  # "now": the last five minutes
# As in alerts/alerting.rules.yml: RolloutLoginsFailing (its 10-minute arm, for a probe every
# 5 s or faster: 7 failures at least, over 4x the budget), and the connection headroom page.
LOGINS_FAILING_SECONDS = 600.0
LOGINS_FAILING_BUDGETS = 4.0
LOGINS_FAILING_MIN_FAILURES = 7
CONNECTIONS_HIGH_RATIO = 0.8


@dataclass(frozen=True)
class Vitals:
    """The database as the checks last reported it; None where nothing was reported."""

    postgres_up: bool | None = None
    connections: float | None = None
    max_connections: float | None = None
    lock_waiting: float | None = None
    blocked_by_ddl: float | None = None

    @property
    def connections_ratio(self) -> float | None:
        """Client connections over max_connections."""
        if self.connections is None or not self.max_connections:
            return None
        return self.connections / self.max_connections


def read_vitals(readings: Readings, up: bool | None) -> Vitals:
    """The database's vitals from what the connections check last reported."""
    found = readings.get(Connections)
    if found is None:
        return Vitals(postgres_up=up)
    return Vitals(
        postgres_up=up,
        connections=found.clients,
        max_connections=found.max_connections,
        lock_waiting=found.lock_waiting,
        blocked_by_ddl=found.blocked_by_ddl,
    )


@dataclass(frozen=True)
class Recent:
    """The probes that ended in the last `seconds`: how many, how many failed, their latency."""

    seconds: float
    probes: int
    failures: int
    latencies: Latencies

    @property
    def error_ratio(self) -> float | None:
        """Share of failed probes; None without a probe."""
        return self.failures / self.probes if self.probes else None


def recent(samples: Sequence[Observed], now: float, seconds: float = NOW_SECONDS) -> Recent:
    """The probes of the last `seconds` before now."""
    kept = [s for s in samples if s.at > now - seconds]
    answered = [latency for s in kept if (latency := s.latency) is not None]
    failures = sum(1 for s in kept if s.outcome != "success")
    return Recent(seconds, len(kept), failures, Latencies.of(answered, PROBE_BUCKETS))


def latest_wrongly_invalid(samples: Sequence[Observed]) -> float | None:
    """The wrongly_invalid count the drift check reported at the last probe."""
    return samples[-1].around.wrongly_invalid if samples else None


def now_decisions(
    window: Observation, samples: Sequence[Observed], now: float, thresholds: Thresholds
) -> list[Decision]:
    """The criteria judged on the last five minutes and the latest counts (passing now?)."""
    last = recent(samples, now)
    current = replace(
        window,
        stayed_applied=window.state == "applied" if window.state is not None else None,
        wrongly_invalid=latest_wrongly_invalid(samples),
        probes=last.probes,
        successes=last.probes - last.failures,
        latencies=last.latencies,
        window_complete=True,
        run_probes=0,
        run_failures=0,
    )
    return decide(current, thresholds)


@dataclass(frozen=True)
class Paging:
    """An alert of alerts/alerting.rules.yml that the daemon's own numbers say is due."""

    alert: str
    why: str


def would_page(
    samples: Sequence[Observed],
    vitals: Vitals,
    state: str | None,
    now: float,
    thresholds: Thresholds,
    *,
    running: bool = False,
) -> list[Paging]:
    """The alerts whose condition holds by the daemon's own numbers (their `for:` aside)."""
    found = [*_callback(samples, now, thresholds), *_database(vitals)]
    wrongly = latest_wrongly_invalid(samples)
    if wrongly:
        found.append(Paging("RolloutTokensWronglyInvalid", f"{wrongly:g} unexpired tokens"))
    if state == "partial" and not running:  # objects appearing during its run are expected
        found.append(Paging("RolloutMigrationPartial", "some of the migration's objects exist"))
    return found


def _callback(samples: Sequence[Observed], now: float, thresholds: Thresholds) -> list[Paging]:
    found = []
    if samples and samples[-1].outcome != "success":
        found.append(Paging("RolloutCallbackDown", f"the last probe: {samples[-1].outcome}"))
    window = recent(samples, now, LOGINS_FAILING_SECONDS)
    limit = LOGINS_FAILING_BUDGETS * (1 - thresholds.objective)
    ratio = window.error_ratio
    enough = ratio is not None and ratio > limit and window.failures >= LOGINS_FAILING_MIN_FAILURES
    # As the rule: not for the failures of a callback that was down (that page is
    # RolloutCallbackDown's, and resolved with it), and only with a failure lately.
    if enough and not down_within(samples, now) and recent(samples, now, DOWN_SECONDS).failures:
        why = f"{window.failures} of {window.probes} probes failed in 10 minutes"
        found.append(Paging("RolloutLoginsFailing", why))
    return found


DOWN_SECONDS = 120.0  # RolloutCallbackDown: the last probe failed, and two in two minutes
DOWN_FOR_SECONDS = 60.0  # its `for:`


def down_within(samples: Sequence[Observed], now: float) -> bool:
    """Whether RolloutCallbackDown fired in the last 10 minutes, as the rule would: failures
    one after another, the condition (the last failed, and two in two minutes) holding from the
    second of them for its minute."""
    streak: list[float] = []
    for seen in samples:
        if seen.at <= now - LOGINS_FAILING_SECONDS:
            continue
        if seen.success:
            streak = []
            continue
        streak.append(seen.at)
        if len(streak) >= 2 and streak[-1] - streak[1] >= DOWN_FOR_SECONDS:
            return True
    return False


def _database(vitals: Vitals) -> list[Paging]:
    found = []
    if vitals.postgres_up is False:
        found.append(Paging("RolloutPostgresDown", "the last poll could not connect and query"))
    if vitals.blocked_by_ddl:
        why = f"{vitals.blocked_by_ddl:g} behind DDL"
        found.append(Paging("RolloutSessionsBlockedByDDL", why))
    ratio = vitals.connections_ratio
    if ratio is not None and ratio > CONNECTIONS_HIGH_RATIO:
        found.append(Paging("RolloutDBConnectionsHigh", f"{ratio:.0%} of max_connections"))
    return found
