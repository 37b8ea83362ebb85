"""The HTTP endpoint: /metrics from memory, /healthz, /readyz, the status page; TLS, basic auth.

Served by uvicorn (asyncio, h11) from a small ASGI app, in a thread of its own: a connection
costs a file descriptor and a few kilobytes, not a thread, so a flood of idle or slow clients
cannot starve a scrape. uvicorn was chosen over hypercorn for its wider use; what it lacks for an
exporter facing hostile clients, monitor.http.guard adds to its protocol: deadlines on each
request's head (slowloris), TLS handshake and answer's writing, and a cap on connections,
handshakes included (the guarded protocol does TLS itself, with the web-config's own context),
that closes the oldest idle one rather than refuse a scrape.

Every response passes through here; scrapes and page renders run in a small thread pool (they
take the collectors' locks), bcrypt in two threads of monitor.http.passwords, which schedules
the checks so that wrong-password floods wait behind each other, never in front of a scrape or
a first login from another address.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from monitor.http import gates, guard
from monitor.http.acceptlog import AcceptErrors
from monitor.http.guard import guarded
from monitor.http.headlimit import MAX_HEAD_BYTES, HeadLimit
from monitor.http.passwords import RETRY_AFTER, PasswordChecks
from monitor.http.webconfig import BasicAuth, WebConfig
from monitor.judge.gate import Gate

log = structlog.get_logger("monitor.http.exporter")

CHALLENGE = 'Basic realm="rollout-monitor", charset="UTF-8"'
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection closes after this (uvicorn's default)
RENDER_THREADS = 4
# Seconds a rendering of /metrics is served again while no check ran: /metrics is rendered when
# a scrape finds what it shows changed (a check ran), never on a timer; the age bounds how stale
# the time-dependent parts (the window since the migration) can be.
RENDER_MAX_AGE = 10.0
BCRYPT_THREADS = 2
BODY_TIMEOUT = 10.0  # seconds to receive a POST's body, as for a request's head

LANDING = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>rollout-monitor</title></head>
<body><h1>rollout-monitor</h1>
<p>Watches migration 001_threads_oauth_enhancements and the Threads OAuth callback.</p>
<ul><li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li>
<li><a href="/readyz">/readyz</a></li></ul></body></html>
"""
TEXT = "text/plain; charset=utf-8"
SHED = b"too many password checks waiting; the password was not checked, retry later\n"
JSON = "application/json"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Reply:
    """A response: status, body, content type, extra headers."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = TEXT,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.status, self.body, self.content_type, self.headers = (
            status,
            body,
            content_type,
            headers,
        )


class App:
    """The ASGI application: authentication, then the four paths, GET and HEAD only, and the
    gate paths (with a gate), GET, HEAD and POST alike."""

    def __init__(
        self,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        web: WebConfig,
        page: Callable[[], bytes] | None,
        *,
        auth_before: BasicAuth | None = None,
        changes: Callable[[], int] | None = None,
        gate: Gate | None = None,
    ) -> None:
        self._registry = registry
        self._gate = gate
        # A verdict may wait seconds on Prometheus: in a thread of its own, never a render's.
        self._gating = ThreadPoolExecutor(1, thread_name_prefix="gate")
        self._changes = changes
        self._rendered: dict[str, tuple[int, float, bytes]] = {}  # content type -> rendering
        self._ready = ready
        self._page = page or (lambda: LANDING)
        self._headers = [
            (k.encode(), v.encode()) for k, v in web.http_server_config.headers.items()
        ]
        users = web.basic_auth_users
        self.auth = BasicAuth.keeping(users, auth_before) if users else None
        self._checks = None if self.auth is None else PasswordChecks(self.auth, BCRYPT_THREADS)
        self._renders = ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="render")
        self._routes: dict[str, Callable[[Scope], Awaitable[Reply]]] = {
            "/metrics": self._metrics,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/": self._status_page,
        }

    def close(self) -> None:
        """Let the pools' threads go."""
        self._renders.shutdown(wait=False, cancel_futures=True)
        if self._checks is not None:
            self._checks.close()
        self._gating.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        reply = await self._answer(scope, receive)
        await self._send(scope, send, reply)

    async def _answer(self, scope: Scope, receive: Receive) -> Reply:
        if self._checks is not None:
            client = (scope.get("client") or ("?", 0))[0]
            authenticated = await self._checks.check(client, header(scope, b"authorization"))
            if authenticated is None:  # not checked: too many checks waiting
                return Reply(429, SHED, headers=(("Retry-After", str(RETRY_AFTER)),))
            if not authenticated:
                return Reply(401, b"unauthorized\n", headers=(("WWW-Authenticate", CHALLENGE),))
        if self._gate is not None and scope["path"] in gates.PATHS:
            return await self._gate_reply(scope, receive)
        if scope["method"] not in ("GET", "HEAD"):
            return Reply(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        route = self._routes.get(scope["path"])
        return Reply(404, b"not found\n") if route is None else await route(scope)

    async def _gate_reply(self, scope: Scope, receive: Receive) -> Reply:
        """A gate path's answer; a POST's body is read (bounded in size and time) and dropped."""
        assert self._gate is not None
        if scope["method"] not in ("GET", "HEAD", "POST"):
            return Reply(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD, POST"),))
        if scope["method"] == "POST":
            try:
                complete = await asyncio.wait_for(drain(receive), BODY_TIMEOUT)
            except TimeoutError:
                return Reply(408, b"the request body was too slow\n")
            if not complete:
                too_big = f"the request body is over {gates.MAX_BODY_BYTES} bytes\n"
                return Reply(413, too_big.encode())
        loop = asyncio.get_running_loop()
        respond = functools.partial(
            gates.respond, self._gate, scope["path"], scope.get("query_string", b"")
        )
        status, document = await loop.run_in_executor(self._gating, respond)
        return Reply(status, gates.encode(document), JSON)

    async def _healthz(self, scope: Scope) -> Reply:
        return Reply(200, b"ok\n")

    async def _readyz(self, scope: Scope) -> Reply:
        if self._ready():
            return Reply(200, b"ready\n")
        return Reply(503, b"not ready: the first run of every check is not done\n")

    async def _metrics(self, scope: Scope) -> Reply:
        encoder, content_type = choose_encoder(header(scope, b"accept") or "")
        body = self._still_fresh(content_type)
        if body is None:
            changes = None if self._changes is None else self._changes()
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(self._renders, encoder, self._registry)
            if changes is not None:
                self._rendered[content_type] = (changes, time.monotonic(), body)
        if "gzip" in (header(scope, b"accept-encoding") or ""):
            return Reply(200, gzip.compress(body), content_type, (("Content-Encoding", "gzip"),))
        return Reply(200, body, content_type)

    def _still_fresh(self, content_type: str) -> bytes | None:
        """The last rendering, when no check ran since and it is under RENDER_MAX_AGE old (the
        registry takes a millisecond to render; most scrapes find nothing new)."""
        kept = self._rendered.get(content_type)
        if kept is None or self._changes is None:
            return None
        changes, at, body = kept
        fresh = changes == self._changes() and time.monotonic() - at < RENDER_MAX_AGE
        return body if fresh else None

    async def _status_page(self, scope: Scope) -> Reply:
        loop = asyncio.get_running_loop()
        try:
            body = await loop.run_in_executor(self._renders, self._page)
        except Exception:  # a rendering bug must not cost /metrics anything
            log.exception("status_page_failed")
            return Reply(500, b"the status page failed; see the log\n")
        return Reply(200, body, "text/html; charset=utf-8")

    async def _send(self, scope: Scope, send: Send, reply: Reply) -> None:
        headers = [
            *self._headers,
            (b"date", formatdate(usegmt=True).encode()),
            (b"content-type", reply.content_type.encode()),
            (b"content-length", str(len(reply.body)).encode()),
            *((k.encode(), v.encode()) for k, v in reply.headers),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else reply.body
        await send({"type": "http.response.body", "body": body})


async def drain(receive: Receive) -> bool:
    """Read a request's body to its end and drop it; False when it is over MAX_BODY_BYTES or
    the client left first."""
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        size += len(message.get("body", b""))
        if size > gates.MAX_BODY_BYTES:
            return False
        if not message.get("more_body", False):
            return True


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (latin-1, as HTTP/1.1 carries it), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class QuietServer(uvicorn.Server):
    """uvicorn's server, waiting for the stop instead of ticking: its main loop wakes ten times
    a second to refresh the Date header and look for the stop (0.23% of a core on an idle
    exporter, more than the rest of the daemon). The Date header is App's."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    async def main_loop(self) -> None:
        """Serve until stop() is called."""
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._loop.set_exception_handler(AcceptErrors())  # accept() failures, rate-limited
        if not self.should_exit:
            await self._stopping.wait()

    def stop(self) -> None:
        """Ask the server to stop (from any thread)."""
        self.should_exit = True
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: it stopped already
                self._loop.call_soon_threadsafe(self._stopping.set)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now (so that a taken address fails here, as OSError)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Exporter:
    """Serves the registry; a scrape reads memory only and never waits on the database.

    `page` renders / (the status page); without it / is a landing page of links. `changes`
    counts what may change the registry's samples; with it, a rendering is served again, for up
    to RENDER_MAX_AGE, while the count stands. `gate` answers the gate paths (monitor.http.gates);
    without it they are not found."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        web: WebConfig | None = None,
        *,
        page: Callable[[], bytes] | None = None,
        auth_before: BasicAuth | None = None,
        changes: Callable[[], int] | None = None,
        gate: Gate | None = None,
    ) -> None:
        web = web or WebConfig()
        self._socket = bind(host, port)
        self._app = App(
            registry, ready, web, page, auth_before=auth_before, changes=changes, gate=gate
        )
        tls = web.tls_server_config
        config = uvicorn.Config(
            HeadLimit(self._app),
            # TLS is the guarded protocol's, not uvicorn's ssl: handshakes count in its cap
            http=guarded(None if tls is None else tls.context()),
            # accept()s per wakeup, and the listen queue: a flood past the cap waits in the
            # kernel instead of costing a few thousand connections' objects at once
            backlog=guard.MAX_CONNECTIONS,
            ws="none",  # no websockets: wsproto or websockets, where installed, stay unloaded
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,  # the client address is the peer's: a header cannot change it
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=int(STOP_TIMEOUT),
            date_header=False,  # App sends its own: uvicorn's is refreshed by a 10 Hz tick
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )
        self._server = QuietServer(config)
        self._thread = threading.Thread(target=self._serve, name="exporter", daemon=True)

    @property
    def auth(self) -> BasicAuth | None:
        """The basic-auth checker, with the passwords it verified (a reload hands it on)."""
        return self._app.auth

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._socket.getsockname()[1])

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException:  # uvicorn exits by SystemExit when it cannot start
            log.exception("http_server_failed")

    def start(self) -> None:
        """Serve in a background thread; return once it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise OSError("the HTTP server did not start")
            time.sleep(0.01)
        if not self._server.started:
            raise OSError("the HTTP server did not start")

    def stop(self) -> None:
        """Stop serving, if started, and release the port."""
        if self._thread.is_alive():
            self._server.stop()
            self._thread.join(STOP_TIMEOUT + 1)
        self._app.close()
        self._socket.close()
