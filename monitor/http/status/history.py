"""The last hour as the status page draws it: one sample per callback probe, from the probe log."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from monitor.judge.baseline import bucket_quantile
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.probelog import HOUR, Observed, ProbeLog

# One probe a second for an hour; a faster probe keeps its last MAX_SAMPLES only, so memory is
# bounded whatever the configuration says.
MAX_SAMPLES = 3600
DRIFT_KINDS = ("stale_valid", "wrongly_invalid")


@dataclass(frozen=True)
class Moment:
    """What was known when a probe ended: its outcome and latency, the drift, the backfill."""

    at: float  # Unix time
    outcome: str
    duration_seconds: float | None  # None when the probe got no answer (timeout, refused)
    drift: dict[str, float] = field(default_factory=dict)  # kind -> tokens
    missing: dict[str, float] = field(default_factory=dict)  # column -> users still NULL
    status: int | None = None  # the HTTP status, None when no answer came
    detail: str = ""  # why it got no answer (the probe's own words; redacted when shown)


@dataclass(frozen=True)
class Minute:
    """The probes that ended in one minute: how many, how many succeeded, their p95 latency."""

    start: float
    probes: int
    successes: int
    p95_seconds: float | None

    @property
    def success_ratio(self) -> float:
        """Share of this minute's probes with outcome success."""
        return self.successes / self.probes


class History:
    """The last hour of the probe log, as the page draws it; at most `capacity` samples."""

    def __init__(
        self,
        log: ProbeLog,
        clock: Callable[[], float] = time.time,
        span: float = HOUR,
        capacity: int = MAX_SAMPLES,
    ) -> None:
        self._log = log
        self._clock = clock
        self._span = span
        self._capacity = capacity
        # The samples drawn last time, by record: each page load converts only the new probes.
        self._drawn: dict[int, tuple[Observed, Moment]] = {}

    def samples(self) -> list[Moment]:
        """The samples of the last hour, oldest first."""
        start = self._clock() - self._span
        recent = [o for o in self._log.since(start) if o.at > start][-self._capacity :]
        drawn, before = {}, self._drawn
        for observed in recent:
            kept = before.get(id(observed))
            if kept is None or kept[0] is not observed:
                kept = (observed, moment_of(observed))
            drawn[id(observed)] = kept
        self._drawn = drawn
        return [sample for _, sample in drawn.values()]


def moment_of(observed: Observed) -> Moment:
    """A probe as the page draws it: with the drift and backfill reported around it."""
    around = observed.around
    drift = (
        {}
        if around.wrongly_invalid is None or around.stale_valid is None
        else {"stale_valid": around.stale_valid, "wrongly_invalid": around.wrongly_invalid}
    )
    return Moment(
        at=observed.at,
        outcome=observed.outcome,
        duration_seconds=observed.answered,
        drift=drift,
        missing=dict(around.missing),
        status=observed.status,
        detail=observed.detail,
    )


def per_minute(samples: Sequence[Moment]) -> list[Minute]:
    """The samples grouped by the minute they ended in (Unix minutes), oldest first."""
    groups: dict[float, list[Moment]] = {}
    for sample in samples:
        groups.setdefault(sample.at - sample.at % 60, []).append(sample)
    return [minute(start, group) for start, group in sorted(groups.items())]


def minute(start: float, samples: Sequence[Moment]) -> Minute:
    """One minute's summary; p95 from the histogram's buckets, as the criteria judge it."""
    answered = [s.duration_seconds for s in samples if s.duration_seconds is not None]
    return Minute(
        start=start,
        probes=len(samples),
        successes=sum(1 for s in samples if s.outcome == "success"),
        p95_seconds=bucket_quantile(0.95, PROBE_BUCKETS, answered),
    )
