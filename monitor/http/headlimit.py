"""The request head's size limit, however the head arrived.

h11's `max_incomplete_event_size` bounds a head still incomplete: one that arrives whole in a
single read (10,000 headers, 90 KB, in one write) passes it. This ASGI middleware measures
the head h11 parsed and answers 431 and closes the connection when it is over the limit, before
the application (authentication included) sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

MAX_HEAD_BYTES = 16 * 1024  # a request head larger than this is refused (431)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]

TOO_LARGE = f"the request head is over {MAX_HEAD_BYTES} bytes\n".encode()


def head_size(scope: Scope) -> int:
    """The head's size as sent, less the optional spaces h11 strips: the request line and each
    header line with their CRLFs, and the blank line."""
    target = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) + 1
    line = len(scope["method"]) + 1 + target + 1 + len("HTTP/1.1") + 2
    return line + sum(len(k) + 2 + len(v) + 2 for k, v in scope["headers"]) + 2


class HeadLimit:
    """Refuses HTTP requests whose head is over MAX_HEAD_BYTES (431, Connection: close)."""

    def __init__(self, app: Application) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or head_size(scope) <= MAX_HEAD_BYTES:
            await self._app(scope, receive, send)
            return
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(TOO_LARGE)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 431, "headers": headers})
        await send({"type": "http.response.body", "body": TOO_LARGE})
