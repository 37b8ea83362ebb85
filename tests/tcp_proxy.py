"""A TCP proxy on 127.0.0.1 between the monitor and PostgreSQL that can cut the line.

Like the proxy psycopg's own test suite puts in front of its server: ``cut()`` closes every
connection through it and turns new ones away (accepted and closed at once, as a server that is
going down does), ``restore()`` forwards again. Every thread waits at most ``POLL`` seconds at a
time and stops when the proxy does; leaving the block closes every socket.

    with TcpProxy("127.0.0.1", server.port) as proxy:
        url = proxy.url_for(server.url("app"))
        proxy.cut()
        proxy.restore()
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType

HOST = "127.0.0.1"
POLL = 0.05  # seconds any thread blocks before it looks at the proxy's state again
_CHUNK = 64 * 1024


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target address until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(POLL)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._cut = False
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self.turned_away = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}")

    def url_for(self, url: str) -> str:
        """The same database URL, through the proxy."""
        return url.replace(f":{self._target[1]}/", f":{self.port}/", 1)

    def cut(self) -> None:
        """Close every connection through the proxy and turn new ones away."""
        with self._lock:
            self._cut = True
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            _close(*pair)

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._cut = False

    @property
    def open_connections(self) -> int:
        """Connections being forwarded right now."""
        with self._lock:
            return len(self._pairs)

    def __enter__(self) -> TcpProxy:
        self._acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=2)
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=2)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        with self._lock:
            cut = self._cut
        upstream = None
        if not cut:
            with contextlib.suppress(OSError):
                upstream = socket.create_connection(self._target, timeout=2)
        if upstream is None:
            self.turned_away += 1
            _close(client)
            return
        with self._lock:
            self.accepted += 1
            self._pairs.append((client, upstream))
        thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes, the line is cut or the proxy stops."""
        peers = {client: upstream, upstream: client}
        try:
            while not self._stopping.is_set():
                readable, _, _ = select.select(list(peers), [], [], POLL)
                for source in readable:
                    data = source.recv(_CHUNK)
                    if not data:
                        return
                    peers[source].sendall(data)
        except (OSError, ValueError):
            return  # cut: the sockets were closed under us
        finally:
            with self._lock:
                if (client, upstream) in self._pairs:
                    self._pairs.remove((client, upstream))
            _close(client, upstream)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
