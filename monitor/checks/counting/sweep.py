"""Exact drift counts on a large token table: the table read a few slices of blocks per run.

A block sample cannot see a hundred locked-out users among ten million tokens, and the exact
count through the "isValid" index reads every legitimately invalid token too (1-5% of the table:
as costly as reading it all). The sweep reads the whole table instead, but spread out: each run
of the drift check reads the next few slices of `sweep_blocks` heap blocks by ctid (a TID Range
Scan, PostgreSQL 14+, no index needed), each slice in its own short transaction, so the table's
ACCESS SHARE lock is held for one slice at a time (about 15 ms for 2,000 blocks). The slices per
run are as many as one pass over the table in `sweep_period` needs. Once a pass is done, the
latest count of every slice adds up to exact counts, none older than one pass.

A pass ends at the first empty slice at or past the catalog's relpages, so a table that grew
since its last VACUUM is read to its real end without opening the relation to size it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

TID_RANGE_SCAN_SINCE = 140_000  # server_version_num of PostgreSQL 14


@dataclass(frozen=True)
class Tally:
    """The drift counts of some tokens."""

    stale_valid: int = 0
    wrongly_invalid: int = 0
    tokens: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.stale_valid + other.stale_valid,
            self.wrongly_invalid + other.wrongly_invalid,
            self.tokens + other.tokens,
        )


@dataclass(frozen=True)
class Totals:
    """Exact counts over the whole table, and when the oldest slice in them was read."""

    tally: Tally
    oldest: float


# Reads the tokens in heap blocks [first, last); None when it could not this time (the table
# locked for DDL, or a time limit): the sweep resumes there on the next run.
ReadSlice = Callable[[int, int], Tally | None]


class Sweep:
    """Where the pass over the token table is, and the latest count of every slice."""

    def __init__(
        self, blocks: int, period: float, interval: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._blocks = blocks
        self._period = period
        self._interval = interval
        self._clock = clock
        self._slices: dict[int, tuple[Tally, float]] = {}
        self._next = 0
        self.passes = 0

    def slices_per_run(self, relpages: int) -> int:
        """As many as one pass in sweep_period needs (the final, empty slice included)."""
        slices = math.ceil(relpages / self._blocks) + 1
        return max(1, math.ceil(slices * self._interval / self._period))

    def advance(self, read: ReadSlice, relpages: int) -> None:
        """Read this run's slices, ending the pass (and the run) at the first empty one past
        relpages."""
        for _ in range(self.slices_per_run(relpages)):
            first = self._next * self._blocks
            tally = read(first, first + self._blocks)
            if tally is None:
                return
            self._slices[self._next] = (tally, self._clock())
            if tally.tokens == 0 and first >= relpages:
                self._end_pass()
                return
            self._next += 1

    def _end_pass(self) -> None:
        for index in [i for i in self._slices if i > self._next]:
            del self._slices[index]  # beyond the table's end now (it shrank)
        self._next = 0
        self.passes += 1

    def progress(self, relpages: int) -> float:
        """Share of the table the current pass has read (1 at its end)."""
        return min(1.0, self._next * self._blocks / relpages) if relpages > 0 else 1.0

    def totals(self) -> Totals | None:
        """The exact counts, once a whole pass has been read."""
        if not self.passes:
            return None
        tally = sum((t for t, _ in self._slices.values()), Tally())
        return Totals(tally, min(at for _, at in self._slices.values()))
