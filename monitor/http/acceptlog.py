"""accept() failures in the log at most once per ACCEPT_LOG_INTERVAL, without a traceback.

At the open-files limit asyncio reports every failed accept() to the loop's exception handler
(`socket.accept() out of system resource`), once per connection waiting in the backlog and
again every second: its default handler logs each with a traceback (170,171 lines, 89 MB in
40 s). This handler, set on the server's loop, turns them into one `accept_failed` event per
interval with the count of those it left out; anything else goes to asyncio's default handler.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import structlog

log = structlog.get_logger("monitor.http.acceptlog")

ACCEPT_LOG_INTERVAL = 10.0  # seconds between two accept_failed events
# asyncio's own words (selector_events.py); the only way its handler context tells the case.
ACCEPT_MESSAGE = "socket.accept() out of system resource"
# After each failed accept() asyncio schedules a retry in a second (BaseSelectorEventLoop.
# _start_serving), one per connection waiting; those that fire after the server stopped find the
# listening socket closed and fail with ValueError: the tail of the same flood, counted with it.
RETRY = "._start_serving("


class AcceptErrors:
    """A loop exception handler: accept() failures rate-limited, the rest as asyncio's."""

    def __init__(self) -> None:
        self._logged_at: float | None = None
        self._left_out = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, ValueError) and RETRY in str(context.get("message", "")):
            self._left_out += 1
            return
        if context.get("message") != ACCEPT_MESSAGE or not isinstance(error, OSError):
            loop.default_exception_handler(context)
            return
        now = loop.time()
        if self._logged_at is not None and now - self._logged_at < ACCEPT_LOG_INTERVAL:
            self._left_out += 1
            return
        log.warning(
            "accept_failed",
            error=errno.errorcode.get(error.errno or 0, str(error.errno)),
            reason=error.strerror,
            left_out=self._left_out,
            interval_seconds=ACCEPT_LOG_INTERVAL,
        )
        self._logged_at, self._left_out = now, 0
