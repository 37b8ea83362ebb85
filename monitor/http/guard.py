"""uvicorn's HTTP/1.1 protocol, guarded against clients that hold connections without using them.

uvicorn closes a keep-alive connection idle for `timeout_keep_alive`, but any byte restarts that
clock, a connection that never sends a request has none, an answer the client never reads waits
for it forever, and it accepts connections without bound. An exporter's clients send a short
request and read the answer, so:

- **A deadline on each request's head**: from the connection (or the end of the last response)
  to a complete request head, at most HEAD_TIMEOUT, however slowly the bytes trickle in
  (slowloris); on a TLS connection the handshake counts in it. A request being answered is
  never cut.
- **A deadline on each answer's writing**: an answer that cannot be handed to the kernel for
  WRITE_TIMEOUT (the client stopped reading, uvicorn waits for the buffer to drain) aborts the
  connection.
- **A cap on connections**, counted from the accept (a TLS handshake included): past
  MAX_CONNECTIONS, a new connection makes room by closing, in this order,
  1. the oldest idle one (no request being answered, a handshake, nothing waiting to be sent):
     closing it loses nothing, and the oldest is the flood's, not the scrape that just came;
  2. else the one whose answer has waited longest on a client that does not read: it would be
     cut at its write deadline anyway, and a reader slower than that is no scrape;
  3. else the new one: every other is being answered (a render, a verdict).
- **TLS handshakes in the guarded protocol**: the connection is accepted as plain TCP and the
  protocol starts TLS itself (`loop.start_tls`), with HANDSHAKE_TIMEOUT, so that a connection
  that never sends its ClientHello is counted in the cap and cut by the deadlines like any
  other (asyncio's own TLS accept lets each hold a socket and 256 KiB, without bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from monitor.http import buffers

HEAD_TIMEOUT = 10.0  # seconds for a request's head, as Prometheus's default scrape timeout
HANDSHAKE_TIMEOUT = 5.0  # seconds for a TLS handshake (within the head's deadline)
WRITE_TIMEOUT = 10.0  # seconds an answer may wait on a client that does not read it
# An exporter has a few clients (Prometheus servers, a browser); a flood past this costs the
# flood its oldest idle connections, and the process a bounded amount of memory.
MAX_CONNECTIONS = 128
FEW = 8  # connections: fewer left after a flood of TLS ones, and its memory is handed back
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets the connection


def guarded(tls: ssl.SSLContext | None) -> type[GuardedH11Protocol]:
    """The protocol class to give uvicorn: with `tls`, it does the TLS handshakes itself (the
    server then listens without `ssl`)."""
    if tls is None:
        return GuardedH11Protocol
    buffers.return_large_buffers()
    return type("GuardedTLSProtocol", (GuardedH11Protocol,), {"tls": tls})


class GuardedH11Protocol(H11Protocol):
    """H11Protocol with deadlines on request heads, handshakes and writes, and a cap on
    connections."""

    tls: ssl.SSLContext | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._timed_cycle: object = None
        self._handshake: asyncio.Task[None] | None = None
        self.opened_at = 0.0
        self.stuck_since: float | None = None  # when the answer's writing last paused
        self.link: asyncio.Transport | None = None  # the TCP connection, under TLS if any
        self._early = b""  # bytes the TLS layer decrypted before start_tls returned

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection, make room past the cap, start the head's clock; with TLS,
        start the handshake."""
        self.link, self.opened_at = transport, self.loop.time()
        if self.tls is None:
            super().connection_made(transport)
        else:
            transport.pause_reading()  # until start_tls hands the bytes to its SSL protocol
            self.connections.add(self)
            buffers.FLOOD.connected()
            self._handshake = self.loop.create_task(self._start_tls(transport, self.tls))
        if sum(c.is_open for c in self._guarded()) > MAX_CONNECTIONS:
            self._make_room()
        self._await_head()

    async def _start_tls(self, raw: asyncio.Transport, tls: ssl.SSLContext) -> None:
        if raw.is_closing():  # evicted before its turn came: no SSL protocol, no 256 KiB
            self._forget()
            return
        try:
            transport = await self.loop.start_tls(
                raw, self, tls, server_side=True, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
            )
        except OSError as error:  # cut, too slow, not TLS: start_tls closed the connection
            # Its traceback holds start_tls's frame, whose waiter holds the error: a cycle that
            # would keep the SSL protocol and its 256 KiB until the next full collection.
            error.__traceback__ = None
            self._forget()
            return
        except asyncio.CancelledError:
            self._forget()
            raise
        if transport is None or raw.is_closing():
            self._forget()
            return
        super().connection_made(transport)
        if self._early:
            early, self._early = self._early, b""
            self.data_received(early)

    def data_received(self, data: bytes) -> None:
        """The request's bytes; with TLS, those that come with the handshake's end are kept
        until the connection is made (the SSL protocol hands them over at once)."""
        if self.transport is None:
            self._early += data
            return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clocks."""
        if self.transport is None:  # the TLS handshake did not finish
            self._forget()
            return
        self._stop_clock()
        self._stop_write_clock()
        super().connection_lost(exc)
        self._receded()

    def _forget(self) -> None:
        self._stop_clock()
        self.connections.discard(self)
        self._receded()

    def _receded(self) -> None:
        if self.tls is not None and len(self.connections) < FEW:
            buffers.FLOOD.receded(self.loop)

    def shutdown(self) -> None:
        """The server stops: a handshake, or an answer the client does not read, is cut (uvicorn
        would wait for it to its graceful-shutdown timeout); the rest as uvicorn does."""
        if self.transport is None or self.stuck_since is not None:
            self._abort()
            return
        super().shutdown()

    def handle_events(self) -> None:
        """A complete request head stops the clock."""
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._timed_cycle:
            self._timed_cycle = self.cycle
            self._stop_clock()

    def on_response_complete(self) -> None:
        """The next request's head has its own deadline; when uvicorn closed the connection
        after the answer, what is still buffered has the write deadline."""
        super().on_response_complete()
        if self.transport.is_closing():
            self._until_written()
        elif self.idle:
            self._await_head()

    def timeout_keep_alive_handler(self) -> None:
        """uvicorn closes an idle keep-alive connection: what is still buffered has the write
        deadline (close() waits for the client to read it, without one)."""
        super().timeout_keep_alive_handler()
        self._until_written()

    def pause_writing(self) -> None:
        """The client does not read: its answer's writing has a deadline."""
        if self.flow is None:  # a TLS connection not made yet
            return
        super().pause_writing()
        self._start_write_clock()

    def resume_writing(self) -> None:
        """The client reads again."""
        if self.flow is None:
            return
        super().resume_writing()
        self._stop_write_clock()

    @property
    def is_open(self) -> bool:
        """Connected, and not being closed."""
        return self.link is not None and not self.link.is_closing()

    @property
    def idle(self) -> bool:
        """No request being answered, nothing waiting to be sent."""
        answering = self.cycle is not None and not self.cycle.response_complete
        return not answering and self.stuck_since is None

    def _guarded(self) -> list[GuardedH11Protocol]:
        return [c for c in self.connections if isinstance(c, GuardedH11Protocol)]

    def _await_head(self) -> None:
        self._stop_clock()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)

    def _stop_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _start_write_clock(self) -> None:
        if self._write_timer is None:
            self.stuck_since = self.loop.time()
            self._write_timer = self.loop.call_later(WRITE_TIMEOUT, self._abort)

    def _until_written(self) -> None:
        if self.transport.get_write_buffer_size():
            self._start_write_clock()

    def _stop_write_clock(self) -> None:
        self.stuck_since = None
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.idle:
            self._abort()

    def _abort(self) -> None:
        """Close at once, by a reset: close() would wait for the client to read what is buffered,
        and a FIN would leave the kernel holding the unsent bytes (megabytes) for a client that
        never reads them."""
        if self.link is None:
            return
        sock = self.link.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
        self.link.abort()

    def _make_room(self) -> None:
        """Close the oldest idle connection, else the longest stuck writer, else this one."""
        others = [c for c in self._guarded() if c is not self and c.is_open]
        idle = [c for c in others if c.idle]
        stuck = [(c.stuck_since, c) for c in others if c.stuck_since is not None]
        if idle:
            min(idle, key=lambda c: c.opened_at)._abort()
        elif stuck:
            min(stuck, key=lambda pair: pair[0])[1]._abort()
        else:
            self._abort()
