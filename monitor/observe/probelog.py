"""The one record of the callback probes: each probe once, with what was known when it ended.

The callback check hands every probe to the log, which keeps it as one immutable `Observed`: its
time, outcome, HTTP status, answered latency, the reason it got no answer, whether the migration
was quiet then (pending, no run under way: what a baseline may learn from), and what the checks
last reported around it (`Around`, shared by every probe between two reports). The rest are
views of it:

- the baseline learns from the quiet probes the log holds (monitor.judge.baseline);
- the daemon's window since the migration counts the probes from the run's start, holding
  references to these same records for up to a day (monitor.judge.live);
- the status page draws the last hour of the log (monitor.http.status.history).

The log keeps what those need from it, `span` seconds (the baseline window or an hour, whichever
is longer) and at most `capacity` probes, whatever the probe rate.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.probe import ProbeResult
from monitor.observe.readings import Backfill, Connections, Drift, Lookup, Readings, Snapshot

HOUR = 3600.0  # the last hour, which the status page draws: the log keeps at least that
# Any record of probes holds at most this many: a day at one a second, with room; bounds memory.
MAX_PROBES = 100_000


@dataclass(frozen=True, slots=True)
class Around:
    """What the checks last reported when a probe ended."""

    stale_valid: float | None = None
    wrongly_invalid: float | None = None
    missing: tuple[tuple[str, float], ...] = ()  # column -> users still NULL
    lookup_seconds: float | None = None
    lookup_plan: tuple[str, str] | None = None  # scan node, index
    connections_ratio: float | None = None


NOTHING = Around()


def around(snapshot: Snapshot) -> Around:
    """The parts of the checks' readings a probe is judged or drawn with."""
    drift, backfill = snapshot.get(Drift), snapshot.get(Backfill)
    lookup, connections = snapshot.get(Lookup), snapshot.get(Connections)
    return Around(
        stale_valid=None if drift is None else drift.stale_valid,
        wrongly_invalid=None if drift is None else drift.wrongly_invalid,
        missing=() if backfill is None else tuple(backfill.missing.items()),
        lookup_seconds=None if lookup is None else lookup.seconds,
        lookup_plan=None if lookup is None else (lookup.node, lookup.index),
        connections_ratio=None if connections is None else connections.ratio,
    )


@dataclass(frozen=True, slots=True)
class Observed:
    """One probe, as recorded."""

    at: float  # Unix time it ended
    outcome: str
    status: int | None = None  # None: no answer came
    answered: float | None = None  # its latency, when an answer came
    detail: str = ""  # why no answer came (the probe's own words; redacted where shown)
    quiet: bool = False  # the migration pending with no run under way, as last seen
    around: Around = NOTHING
    waited: float | None = None  # when it timed out: how long it waited (at least the deadline)
    answer: str | None = None  # the answer's shape (monitor.observe.answers), when one came

    @property
    def latency(self) -> float | None:
        """What its latency counts as: the answer's, or the wait of a probe that timed out."""
        return self.answered if self.answered is not None else self.waited

    @property
    def success(self) -> bool:
        """Whether the probe's outcome was success."""
        return self.outcome == "success"

    @property
    def bucket(self) -> int | None:
        """Its latency's bucket (index into PROBE_BUCKETS; their count is +Inf), if it has one."""
        latency = self.latency
        return None if latency is None else bisect.bisect_left(PROBE_BUCKETS, latency)


Listener = Callable[[Observed], None]


class ProbeLog:
    """Every probe of the last `span` seconds, at most `capacity`, oldest first; each record is
    handed to the listeners (the baseline, the window since the migration) as it is made."""

    def __init__(
        self,
        readings: Readings | None = None,
        quiet: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
        *,
        span: float = HOUR,
        capacity: int = MAX_PROBES,
        kept: Iterable[Observed] = (),
    ) -> None:
        self._readings = readings or Readings()
        self._quiet = quiet
        self._clock = clock
        self._span = max(span, HOUR)
        self._lock = threading.Lock()
        self._entries: deque[Observed] = deque(kept, maxlen=capacity)
        self._listeners: list[Listener] = []
        now = self._readings.current()
        self._around: tuple[Snapshot, Around] = (now, around(now))

    def subscribe(self, *listeners: Listener) -> None:
        """Hand these, in this order, every record made from now on."""
        self._listeners.extend(listeners)

    def record(self, result: ProbeResult) -> Observed:
        """Keep the probe with what is known now, and hand the record to the listeners."""
        observed = Observed(
            at=self._clock(),
            outcome=result.outcome,
            status=result.status,
            answered=result.duration if result.status is not None else None,
            detail=result.detail,
            quiet=self._quiet(),
            around=self._around_now(),
            waited=result.duration if result.outcome == "timeout" else None,
            answer=result.answer,
        )
        with self._lock:
            self._entries.append(observed)
            self._trim(observed.at)
        for listener in self._listeners:
            listener(observed)
        return observed

    def restore(self, kept: Iterable[Observed]) -> None:
        """Records a previous process kept in its files, merged in time order."""
        with self._lock:
            unique = {(o.at, o.outcome, o.answered): o for o in (*kept, *self._entries)}
            merged = sorted(unique.values(), key=at_of)
            self._entries = deque(merged, maxlen=self._entries.maxlen)
            self._trim(self._clock())

    def since(self, start: float) -> list[Observed]:
        """The records from start on (inclusive), oldest first, within the span of now."""
        with self._lock:
            first = bisect.bisect_left(self._entries, max(start, self._oldest()), key=at_of)
            return [self._entries[i] for i in range(first, len(self._entries))]

    def entries(self) -> list[Observed]:
        """Every record within the span of now, oldest first."""
        return self.since(-math.inf)

    def _oldest(self) -> float:
        """The earliest time a record may have and still be within the span of now (a read
        leaves older ones for the next record to trim)."""
        return math.nextafter(self._clock() - self._span, math.inf)

    def _around_now(self) -> Around:
        """Around for the current readings, made once per change of them."""
        snapshot = self._readings.current()
        seen, made = self._around
        if snapshot is not seen:
            made = around(snapshot)
            self._around = (snapshot, made)
        return made

    def _trim(self, now: float) -> None:
        while self._entries and self._entries[0].at <= now - self._span:
            self._entries.popleft()


def at_of(observed: Observed) -> float:
    """When it was recorded (a sort and search key)."""
    return observed.at
