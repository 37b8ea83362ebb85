"""A rollout as the daemon really sees it: probes every 4 s, schema looks every 30 s, scrapes
every 15 s, each on its own offset; a scrape missed now and then; the migration's run seen at the
first look after it started and its application at the first look after it ended. One replica,
written as the monitor would have exported it (OpenMetrics for a real Prometheus), and replayed
into the daemon's own memory (worlds.Watching) on the same timeline.

The numbers are issue 19's: a healthy callback (p95 122.2 ms), a 17 s run whose ALTER TABLEs make
the logins that arrive meanwhile wait 0.45 s, and a monitor that may die 2 minutes after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_blocks import BASE, Families, Labels, Probe, Replica, gauge, write_counters
from worlds import Watching

# 20 probes: 18 between 80 and 118 ms, 2 at 124 ms. The 0.95 rank of any whole number of cycles
# falls in the 0.1..0.125 bucket (19 of 20 at or below 0.125, 16 at or below 0.1): p95 122.5 ms
# by histogram_quantile's interpolation (0.1 + 0.025 * (19 - 16) / 4 ... of each 20).
HEALTHY_MS = (
    80,
    84,
    88,
    92,
    96,
    100,
    104,
    108,
    112,
    116,
    82,
    86,
    90,
    94,
    98,
    102,
    118,
    95,
    124,
    124,
)
RUN_START = BASE + 2 * 3600 + 3  # 02:00:03, Prisma's started_at
STATES = ("pending", "partial", "applied", "rolled_back")
TIMEOUT = 3.0  # checks.callback.timeout: a login not answered by then is a timeout


@dataclass(frozen=True)
class Timing:
    """When each thing happens: every `every` seconds from `offset`."""

    probe_every: float = 4.0
    probe_offset: float = 1.3
    look_every: float = 30
    look_offset: float = 11
    scrape_every: int = 15
    scrape_offset: int = 7
    missed: frozenset[int] = frozenset({BASE + 2 * 3600 + 67})  # one scrape lost after the run


@dataclass(frozen=True)
class TimedRollout:
    """One rollout on that timing: a run from `run_start` for `run_seconds`, the logins meanwhile
    answered after `run_latency` (None: they time out), and the monitor alive until `dies_at`."""

    job: str
    run_seconds: float = 17.0
    run_latency: float | None = 0.45
    dies_at: float | None = None
    timing: Timing = field(default_factory=Timing)
    start: int = BASE  # the first scrape's minute: two hours of baseline before the run
    end: int = BASE + 4 * 3600
    run_start: float = RUN_START

    @property
    def applied_at(self) -> float:
        """Prisma's finished_at: the run's end."""
        return self.run_start + self.run_seconds

    def alive(self, t: float) -> bool:
        return self.dies_at is None or t < self.dies_at

    def probes(self) -> Iterator[tuple[float, Probe]]:
        """(when answered or given up, the probe) in time order, while the monitor lives."""
        timing, n = self.timing, 0
        t = self.start + timing.probe_offset
        while t <= self.end and self.alive(t):
            if self.run_start <= t < self.applied_at:
                latency = self.run_latency
                probe = Probe("success", latency) if latency else Probe("timeout", None)
                done = t + (latency if latency else TIMEOUT)
            else:
                seconds = HEALTHY_MS[n % len(HEALTHY_MS)] / 1000
                probe, done = Probe("success", seconds), t + seconds
            yield done, probe
            n += 1
            t = self.start + timing.probe_offset + n * timing.probe_every

    def looks(self) -> Iterator[float]:
        """The schema check's looks, while the monitor lives."""
        t = self.start + self.timing.look_offset
        while t <= self.end and self.alive(t):
            yield t
            t += self.timing.look_every

    def seen(self, look: float) -> tuple[str, bool]:
        """(state, running) at a look."""
        if look < self.run_start:
            return "pending", False
        if look < self.applied_at:
            return "pending", True
        return "applied", False

    def scrapes(self) -> Iterator[int]:
        t = self.start + self.timing.scrape_offset
        while t <= self.end and self.alive(t):
            if t not in self.timing.missed:
                yield t
            t += self.timing.scrape_every


def openmetrics(rollouts: list[TimedRollout]) -> str:
    """Each rollout's series as its one replica exported them, scrape by scrape."""
    out = Families()
    for rollout in rollouts:
        write(out, rollout)
    return out.text()


def write(out: Families, rollout: TimedRollout) -> None:
    target: Labels = (("job", rollout.job), ("instance", "a"))
    counters = Replica()
    probes = iter(rollout.probes())
    pending = next(probes, None)
    looks = list(rollout.looks())
    for t in rollout.scrapes():
        while pending is not None and pending[0] <= t:
            counters.observe(pending[1])
            pending = next(probes, None)
        write_counters(out, target, t, counters)
        last = max((look for look in looks if look <= t), default=None)
        state, running = ("pending", False) if last is None else rollout.seen(last)
        for name in STATES:
            gauge(
                out, "rollout_migration_state", (*target, ("state", name)), t, float(name == state)
            )
        gauge(out, "rollout_migration_running", target, t, float(running))
        interval = (*target, ("check", "callback"))
        gauge(out, "rollout_check_interval_seconds", interval, t, rollout.timing.probe_every)
        if running or state == "applied":
            gauge(out, "rollout_migration_started_timestamp_seconds", target, t, rollout.run_start)
        if state == "applied":
            applied = "rollout_migration_applied_timestamp_seconds"
            gauge(out, applied, target, t, rollout.applied_at)
            for kind in ("stale_valid", "wrongly_invalid"):
                drift = (*target, ("kind", kind))
                gauge(out, "rollout_token_validity_drift", drift, t, 0.0)


def replay(rollout: TimedRollout, watching: Watching, until: float) -> None:
    """The rollout into the daemon's memory up to `until`: each probe logged when answered,
    each look published, in time order."""
    events: list[tuple[float, int, object]] = [(t, 0, probe) for t, probe in rollout.probes()]
    events += [(t, 1, t) for t in rollout.looks()]
    for t, kind, what in sorted(events, key=lambda e: (e[0], e[1])):
        if t > until:
            break
        if kind == 0:
            assert isinstance(what, Probe)
            watching.clock.now = t
            duration = TIMEOUT if what.duration is None else what.duration
            watching.probe(duration, what.outcome, after=0.0)
        else:
            watching.clock.now = t
            state, running = rollout.seen(t)
            applied = rollout.applied_at if state == "applied" else None
            started = rollout.run_start if running or state == "applied" else None
            watching.publish(state, applied, started, running=running)
            if state == "applied":
                watching.report_drift(0.0)
    watching.clock.now = until
