"""A clock a test moves by hand."""

from __future__ import annotations


class Clock:
    """A settable clock: call it for the time, set `now` to move it."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
