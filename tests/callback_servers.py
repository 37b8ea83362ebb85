"""Real TCP servers on 127.0.0.1 that play a callback endpoint well, slowly, or badly.

Each helper is a context manager that starts a server on a free port in a background thread,
yields where to reach it, and on exit stops it and closes every connection it accepted. Every
connection handler is bounded in time (``MAX_LIFETIME``) and wakes up as soon as the server stops,
so a test that forgets nothing still cannot leave a thread behind for long.

    with answering_server(401) as server:
        CallbackProbe(settings_for(server.url)).probe()
        assert server.requests[0].method == "POST"
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus

HOST = "127.0.0.1"
CALLBACK_PATH = "/api/auth/callback/threads"
MAX_LIFETIME = 20.0  # seconds any connection may live, whatever the test does
TRICKLE_INTERVAL = 0.2  # seconds between two bytes of a trickled body
_ACCEPT_POLL = 0.05
_HEAD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as the server read it off the wire."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of a header, whatever the case of its name."""
        return self.headers.get(name.lower())


@dataclass
class ServerState:
    """What a server saw and did, shared between its threads and the test."""

    stopping: threading.Event = field(default_factory=threading.Event)
    requests: list[ReceivedRequest] = field(default_factory=list)
    connections: int = 0
    bytes_trickled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class RunningServer:
    """A started server: its URL and what it has seen so far."""

    url: str
    state: ServerState

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every complete request received, in order."""
        with self.state.lock:
            return list(self.state.requests)

    @property
    def connections(self) -> int:
        """How many connections the server accepted."""
        with self.state.lock:
            return self.state.connections

    @property
    def bytes_trickled(self) -> int:
        """How many body bytes the trickling server has sent."""
        with self.state.lock:
            return self.state.bytes_trickled


Behaviour = Callable[[socket.socket, ServerState], None]


def read_request(conn: socket.socket, state: ServerState) -> ReceivedRequest | None:
    """Read one request (head, then a Content-Length body) and record it; None if cut short."""
    conn.settimeout(MAX_LIFETIME)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < _HEAD_LIMIT:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    request = ReceivedRequest(method, path, headers, body)
    with state.lock:
        state.requests.append(request)
    return request


def response_bytes(status: int, body: bytes = b"", content_length: int | None = None) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    length = len(body) if content_length is None else content_length
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"Content-Type: application/json\r\n"
        f"Content-Length: {length}\r\n"
        f"Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


@contextlib.contextmanager
def serve(behaviour: Behaviour, path: str = CALLBACK_PATH) -> Iterator[RunningServer]:
    """Run ``behaviour`` for every accepted connection until the block exits."""
    state = ServerState()
    listener = socket.create_server((HOST, 0))
    listener.settimeout(_ACCEPT_POLL)
    port = listener.getsockname()[1]
    open_connections: list[socket.socket] = []
    workers: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            behaviour(conn, state)
        with contextlib.suppress(OSError):
            conn.close()

    def accept_loop() -> None:
        while not state.stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with state.lock:
                state.connections += 1
            open_connections.append(conn)
            worker = threading.Thread(target=handle, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept_loop, name=f"callback-server-{port}", daemon=True)
    acceptor.start()
    try:
        yield RunningServer(f"http://{HOST}:{port}{path}", state)
    finally:
        state.stopping.set()
        acceptor.join(timeout=2)
        listener.close()
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for worker in workers:
            worker.join(timeout=2)


def answering_server(
    status: int, body: bytes = b'{"ok":true}', path: str = CALLBACK_PATH
) -> contextlib.AbstractContextManager[RunningServer]:
    """Answers every request with a fixed status, recording what it received."""

    def answer(conn: socket.socket, state: ServerState) -> None:
        if read_request(conn, state) is not None:
            conn.sendall(response_bytes(status, body))

    return serve(answer, path)


def delayed_server(
    status: int, delay: float, path: str = CALLBACK_PATH
) -> contextlib.AbstractContextManager[RunningServer]:
    """Reads the request, waits ``delay`` seconds, then answers with a fixed status."""

    def answer_late(conn: socket.socket, state: ServerState) -> None:
        if read_request(conn, state) is None:
            return
        if not state.stopping.wait(min(delay, MAX_LIFETIME)):
            conn.sendall(response_bytes(status, b"{}"))

    return serve(answer_late, path)


def hanging_server(path: str = CALLBACK_PATH) -> contextlib.AbstractContextManager[RunningServer]:
    """Accepts and reads the request, then never answers (until stopped)."""

    def hang(conn: socket.socket, state: ServerState) -> None:
        read_request(conn, state)
        state.stopping.wait(MAX_LIFETIME)

    return serve(hang, path)


def garbage_server(path: str = CALLBACK_PATH) -> contextlib.AbstractContextManager[RunningServer]:
    """Answers with bytes that are not HTTP, then keeps the connection open (until stopped)."""

    def babble(conn: socket.socket, state: ServerState) -> None:
        read_request(conn, state)
        conn.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is not HTTP\r\n\r\n")
        state.stopping.wait(MAX_LIFETIME)

    return serve(babble, path)


def closing_server(path: str = CALLBACK_PATH) -> contextlib.AbstractContextManager[RunningServer]:
    """Closes every connection right after accepting it, before reading anything."""

    def close_at_once(conn: socket.socket, state: ServerState) -> None:
        conn.close()

    return serve(close_at_once, path)


def trickling_server(
    status: int = 200, path: str = CALLBACK_PATH
) -> contextlib.AbstractContextManager[RunningServer]:
    """Sends the head at once, then the body one byte every ``TRICKLE_INTERVAL`` seconds."""
    length = int(MAX_LIFETIME / TRICKLE_INTERVAL) + 2  # one more byte than it will ever send

    def trickle(conn: socket.socket, state: ServerState) -> None:
        if read_request(conn, state) is None:
            return
        conn.sendall(response_bytes(status, content_length=length))
        for _ in range(length - 1):
            if state.stopping.wait(TRICKLE_INTERVAL):
                return
            conn.sendall(b"x")
            with state.lock:
                state.bytes_trickled += 1

    return serve(trickle, path)


def refused_url(path: str = CALLBACK_PATH) -> str:
    """A URL on a port that was free a moment ago and has nothing listening on it now."""
    with socket.create_server((HOST, 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://{HOST}:{port}{path}"
