"""uvicorn's HTTP/1.1 protocol, guarded against clients that hold connections without using them.

uvicorn closes a keep-alive connection idle for `timeout_keep_alive`, but any byte restarts that
clock, a connection that never sends a request has none, and it accepts connections without
bound. An exporter's clients send a short request and read the answer, so:

- **A deadline on each request's head**: from the connection (or the end of the last response)
  to a complete request head, at most HEAD_TIMEOUT, however slowly the bytes trickle in
  (slowloris). A request being answered is never cut.
- **A cap on connections**: past MAX_CONNECTIONS, a new connection closes the oldest idle one
  (no request in progress) to make room, so that a flood of idle connections costs the flood,
  not the next scrape; when none is idle, the new one is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT = 10.0  # seconds for a request's head, as Prometheus's default scrape timeout
# An exporter has a few clients (Prometheus servers, a browser); a flood past this costs the
# flood its oldest idle connections, and the process a bounded amount of memory.
MAX_CONNECTIONS = 128


class GuardedH11Protocol(H11Protocol):
    """H11Protocol with a deadline on request heads and a cap on connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._timed_cycle: object = None
        self.opened_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head's clock; make room past the cap."""
        super().connection_made(transport)
        self.opened_at = self.loop.time()
        if sum(not c.transport.is_closing() for c in self.connections) > MAX_CONNECTIONS:
            self._make_room()
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._stop_clock()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        """A complete request head stops the clock."""
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._timed_cycle:
            self._timed_cycle = self.cycle
            self._stop_clock()

    def on_response_complete(self) -> None:
        """The next request's head has its own deadline."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.idle:
            self._await_head()

    @property
    def idle(self) -> bool:
        """No request being answered."""
        return self.cycle is None or self.cycle.response_complete

    def _await_head(self) -> None:
        self._stop_clock()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)

    def _stop_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.idle and not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> None:
        """Close the oldest idle connection; this one if every other is busy."""
        idle = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, GuardedH11Protocol)
            and c.idle
            and not c.transport.is_closing()
        ]
        oldest = min(idle, key=lambda c: c.opened_at, default=None)
        (oldest or self).transport.close()
