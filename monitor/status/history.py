"""The last hour as the status page draws it: one sample per callback probe, kept in memory."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from monitor.baseline import bucket_quantile
from monitor.metrics import PROBE_BUCKETS
from monitor.probe import ProbeResult
from monitor.readings import Backfill, Drift, Readings

SPAN_SECONDS = 3600.0
# One probe a second for an hour; a faster probe keeps its last MAX_SAMPLES only, so memory is
# bounded whatever the configuration says.
MAX_SAMPLES = 3600
DRIFT_KINDS = ("stale_valid", "wrongly_invalid")


@dataclass(frozen=True)
class Sample:
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
    """The samples of the last hour, fed by the callback probe; bounded in time and in count.

    `kept`: a previous history's samples (a reload keeps the charts)."""

    def __init__(
        self,
        readings: Readings,
        clock: Callable[[], float] = time.time,
        span: float = SPAN_SECONDS,
        capacity: int = MAX_SAMPLES,
        kept: Sequence[Sample] = (),
    ) -> None:
        self._readings = readings
        self._clock = clock
        self._span = span
        self._lock = threading.Lock()
        self._samples: deque[Sample] = deque(kept, maxlen=capacity)

    def record(self, result: ProbeResult) -> None:
        """Keep this probe with the drift and backfill the checks last reported."""
        answered = result.duration if result.status is not None else None
        now = self._readings.current()
        drift, backfill = now.get(Drift), now.get(Backfill)
        sample = Sample(
            at=self._clock(),
            outcome=result.outcome,
            duration_seconds=answered,
            drift={}
            if drift is None
            else {"stale_valid": drift.stale_valid, "wrongly_invalid": drift.wrongly_invalid},
            missing={} if backfill is None else dict(backfill.missing),
            status=result.status,
            detail=result.detail,
        )
        with self._lock:
            self._samples.append(sample)
            self._trim(sample.at)

    def samples(self) -> list[Sample]:
        """The samples of the last hour, oldest first."""
        with self._lock:
            self._trim(self._clock())
            return list(self._samples)

    def _trim(self, now: float) -> None:
        while self._samples and self._samples[0].at <= now - self._span:
            self._samples.popleft()


def per_minute(samples: Sequence[Sample]) -> list[Minute]:
    """The samples grouped by the minute they ended in (Unix minutes), oldest first."""
    groups: dict[float, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.at - sample.at % 60, []).append(sample)
    return [minute(start, group) for start, group in sorted(groups.items())]


def minute(start: float, samples: Sequence[Sample]) -> Minute:
    """One minute's summary; p95 from the histogram's buckets, as the criteria judge it."""
    answered = [s.duration_seconds for s in samples if s.duration_seconds is not None]
    return Minute(
        start=start,
        probes=len(samples),
        successes=sum(1 for s in samples if s.outcome == "success"),
        p95_seconds=bucket_quantile(0.95, PROBE_BUCKETS, answered),
    )
