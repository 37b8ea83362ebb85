"""The drift sweep's bookkeeping: slices per run, where a pass ends, what its totals hold.

The reads here are a table of per-block token counts in memory; tests/test_large_tables.py runs
the sweep against a real PostgreSQL.
"""

from __future__ import annotations

from monitor.checks.counting.sweep import Sweep, Tally, Totals


class Table:
    """Tokens per heap block, each one wrongly invalid when the block is in `locked_out`."""

    def __init__(self, blocks: int, locked_out: frozenset[int] = frozenset()) -> None:
        self.blocks = blocks
        self.locked_out = locked_out
        self.reads: list[tuple[int, int]] = []

    def read(self, first: int, last: int) -> Tally | None:
        self.reads.append((first, last))
        inside = range(first, min(last, self.blocks))
        return Tally(0, sum(b in self.locked_out for b in inside), len(inside))


def test_a_pass_is_spread_over_the_period_and_ends_at_the_first_empty_slice() -> None:
    table = Table(95, frozenset({3, 50, 94}))
    sweep = Sweep(blocks=10, period=300.0, interval=60.0, clock=lambda: 7.0)
    assert sweep.slices_per_run(95) == 3  # 11 slices (10 with blocks, 1 empty) in 5 runs
    for run in range(3):
        sweep.advance(table.read, 95)
        assert sweep.totals() is None, run
    sweep.advance(table.read, 95)  # slices 9, 10 (blocks 90-94), 11 (empty: the end)
    assert sweep.totals() == Totals(Tally(0, 3, 95), 7.0)
    assert table.reads[-1] == (100, 110)
    assert sweep.progress(95) == 0.0


def test_a_table_grown_past_relpages_is_read_to_its_real_end() -> None:
    """relpages lags behind a growing table: the pass goes on until a slice is empty."""
    table = Table(45, frozenset({44}))
    sweep = Sweep(blocks=10, period=60.0, interval=60.0)
    sweep.advance(table.read, 20)  # the catalog says 20 blocks: 3 slices a run
    sweep.advance(table.read, 20)
    totals = sweep.totals()
    assert totals is not None
    assert totals.tally == Tally(0, 1, 45)


def test_slices_past_a_shrunk_table_leave_the_totals() -> None:
    table = Table(40, frozenset({35}))
    sweep = Sweep(blocks=10, period=60.0, interval=60.0, clock=lambda: 3.0)
    sweep.advance(table.read, 40)
    assert sweep.totals() == Totals(Tally(0, 1, 40), 3.0)
    table.blocks = 20  # truncated: what was counted in blocks 20-39 is gone
    sweep.advance(table.read, 20)
    totals = sweep.totals()
    assert totals is not None
    assert totals.tally == Tally(0, 0, 20)


def test_a_slice_that_could_not_be_read_is_read_on_the_next_run() -> None:
    table = Table(30)
    refused = {10}
    sweep = Sweep(blocks=10, period=60.0, interval=60.0)

    def read(first: int, last: int) -> Tally | None:
        return None if first in refused else table.read(first, last)

    sweep.advance(read, 30)
    assert sweep.totals() is None
    refused.clear()
    sweep.advance(read, 30)
    assert table.reads == [(0, 10), (10, 20), (20, 30), (30, 40)]
    totals = sweep.totals()
    assert totals is not None
    assert totals.tally.tokens == 30
