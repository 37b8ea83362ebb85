"""The probes of the window since the migration, with running totals: a scrape counts them
without walking a day of them. A window that ended (the gate's 1 h, asked later) is counted once
by walking its probes, and kept until a probe of it changes."""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
from dataclasses import dataclass

from monitor.judge.stats import Latencies
from monitor.observe.metrics import PROBE_BUCKETS
from monitor.observe.probelog import MAX_PROBES, Observed


@dataclass(frozen=True)
class Counted:
    """The window's probes from some start on: how many, how many succeeded, their latencies,
    and the most tokens wrongly invalid any of them saw."""

    probes: int
    successes: int
    latencies: Latencies
    highest_wrongly_invalid: float | None


class ProbeWindow:
    """Probes in the window with running totals, so that a scrape does not walk a day of them."""

    def __init__(self) -> None:
        self.probes: deque[Observed] = deque()
        self.successes = 0
        self.buckets = [0] * (len(PROBE_BUCKETS) + 1)
        # Probes whose wrongly_invalid no later probe matches or exceeds: the first is the max.
        self._highest: deque[Observed] = deque()
        # Probes per minute (the multiple of 60 s that ends it), for the window's coverage.
        self.minutes: Counter[int] = Counter()
        # Counts of windows that ended, by (start, end); emptied when a probe before an end
        # comes or goes.
        self._ended: dict[tuple[float, float], Counted] = {}

    def add(self, seen: Observed) -> None:
        """Count a probe in; the oldest falls out beyond MAX_PROBES."""
        if len(self.probes) >= MAX_PROBES:
            self._drop()
        if self._ended and any(seen.at < end for _, end in self._ended):
            self._ended.clear()
        self.probes.append(seen)
        self._count(seen, 1)
        if (value := seen.around.wrongly_invalid) is not None:
            while self._highest and (self._highest[-1].around.wrongly_invalid or 0.0) <= value:
                self._highest.pop()
            self._highest.append(seen)

    @property
    def last_at(self) -> float:
        """When the newest probe counted was taken (-inf when none is)."""
        return self.probes[-1].at if self.probes else -math.inf

    def holds(self, observed: Observed) -> bool:
        """Whether this very record is counted (looking back only as far as its time)."""
        for seen in reversed(self.probes):
            if seen is observed:
                return True
            if seen.at < observed.at:
                return False
        return False

    def trim(self, start: float) -> None:
        """Drop the probes taken before start."""
        while self.probes and self.probes[0].at < start:
            self._drop()

    def counted(self, start: float, end: float = math.inf) -> Counted:
        """The counts of the probes from start on (before `end`, when the window ended)."""
        if end == math.inf:
            return self._from(start)
        found = self._ended.get((start, end))
        if found is None:
            found = self._ended[(start, end)] = self._between(start, end)
        return found

    def _between(self, start: float, end: float) -> Counted:
        """The counts of the probes in [start, end), walking them."""
        inside = [s for s in self.probes if start <= s.at < end]
        buckets = [0] * (len(PROBE_BUCKETS) + 1)
        for seen in inside:
            if (bucket := seen.bucket) is not None:
                buckets[bucket] += 1
        running = tuple(itertools.accumulate(buckets))
        latencies = Latencies(PROBE_BUCKETS, running[:-1], running[-1])
        values = [s.around.wrongly_invalid for s in inside if s.around.wrongly_invalid is not None]
        successes = sum(s.success for s in inside)
        return Counted(len(inside), successes, latencies, max(values) if values else None)

    def _from(self, start: float) -> Counted:
        """The counts of the probes from start on, without dropping the older ones: they are
        taken off the running totals (walking only those, from the oldest)."""
        probes, successes, buckets = len(self.probes), self.successes, list(self.buckets)
        for seen in itertools.takewhile(lambda s: s.at < start, self.probes):
            probes -= 1
            successes -= seen.success
            if (bucket := seen.bucket) is not None:
                buckets[bucket] -= 1
        # The first of _highest from start on is the largest: any before it is larger still
        # and earlier, so it left with the probes before start.
        highest = next((s.around.wrongly_invalid for s in self._highest if s.at >= start), None)
        running = tuple(itertools.accumulate(buckets))
        latencies = Latencies(PROBE_BUCKETS, running[:-1], running[-1])
        return Counted(probes, successes, latencies, highest)

    def _drop(self) -> None:
        gone = self.probes.popleft()
        self._ended.clear()
        self._count(gone, -1)
        if self._highest and self._highest[0] is gone:
            self._highest.popleft()

    def _count(self, seen: Observed, sign: int) -> None:
        self.successes += sign * seen.success
        if (bucket := seen.bucket) is not None:
            self.buckets[bucket] += sign
        minute = math.ceil(seen.at / 60)
        self.minutes[minute] += sign
        if self.minutes[minute] <= 0:
            del self.minutes[minute]

    def started_before(self, moment: float, longest: float) -> list[float]:
        """The answer times of the probes logged at or after the moment that had started before
        it (a probe is logged when answered, at most `longest` after it started)."""
        found = []
        for seen in self.probes:
            if seen.at < moment:
                continue
            if seen.at > moment + longest:
                break
            if seen.answered is not None and seen.at - seen.answered < moment:
                found.append(seen.answered)
        return found

    def probed_minutes(self, start: float, end: float) -> tuple[int, int]:
        """Of the minutes (multiples of 60 s) in [start, end], how many a probe counted here
        ends in, and how many there are: the verdict's measure of the same thing."""
        first, last = math.ceil(start / 60), math.floor(end / 60)
        probed = sum(1 for minute in self.minutes if first <= minute <= last)
        return probed, max(0, last - first + 1)
