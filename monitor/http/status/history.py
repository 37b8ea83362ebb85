"""The last hour as the status page draws it: the probe log's records, and their minutes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.judge.baseline import bucket_quantile
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.probelog import HOUR, Observed, ProbeLog

# One probe a second for an hour; a faster probe keeps its last MAX_SAMPLES only, so the work of
# a page is bounded whatever the configuration says.
MAX_SAMPLES = 3600
DRIFT_KINDS = ("stale_valid", "wrongly_invalid")


def last_hour(log: ProbeLog, now: float, capacity: int = MAX_SAMPLES) -> list[Observed]:
    """The probes of the hour before now, oldest first, at most `capacity`."""
    start = now - HOUR
    return [o for o in log.since(start) if o.at > start][-capacity:]


def drift_of(observed: Observed) -> dict[str, float]:
    """Token drift by kind, as the drift check last reported it when the probe ended."""
    around = observed.around
    if around.wrongly_invalid is None or around.stale_valid is None:
        return {}
    return {"stale_valid": around.stale_valid, "wrongly_invalid": around.wrongly_invalid}


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


def per_minute(samples: Sequence[Observed]) -> list[Minute]:
    """The samples grouped by the minute they ended in (Unix minutes), oldest first."""
    groups: dict[float, list[Observed]] = {}
    for sample in samples:
        groups.setdefault(sample.at - sample.at % 60, []).append(sample)
    return [minute(start, group) for start, group in sorted(groups.items())]


def minute(start: float, samples: Sequence[Observed]) -> Minute:
    """One minute's summary; p95 from the histogram's buckets, as the criteria judge it."""
    answered = [latency for s in samples if (latency := s.latency) is not None]
    return Minute(
        start=start,
        probes=len(samples),
        successes=sum(1 for s in samples if s.success),
        p95_seconds=bucket_quantile(0.95, PROBE_BUCKETS, answered),
    )
