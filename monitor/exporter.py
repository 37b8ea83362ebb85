"""The HTTP endpoint: /metrics from memory, /healthz, /readyz, the status page; TLS, basic auth."""

from __future__ import annotations

import gzip
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from monitor.webconfig import BasicAuth, WebConfig

log = structlog.get_logger("monitor.exporter")

# A client that connects and never finishes the TLS handshake gives up its thread after this.
HANDSHAKE_TIMEOUT = 10.0
CHALLENGE = 'Basic realm="rollout-monitor", charset="UTF-8"'

LANDING = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>rollout-monitor</title></head>
<body><h1>rollout-monitor</h1>
<p>Watches migration 001_threads_oauth_enhancements and the Threads OAuth callback.</p>
<ul><li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li>
<li><a href="/readyz">/readyz</a></li></ul></body></html>
"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake here, in the connection's own thread, never in the accept loop."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            connection = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # plain HTTP, no or an unverified client certificate, or a client gone
        with connection:
            super().finish_request(connection, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed (a client gone mid-answer, TLS cut short): one event with
        its kind, never socketserver's traceback on stderr."""
        kind = type(sys.exc_info()[1]).__name__
        log.info("http_connection_failed", error=kind)


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class Exporter:
    """Serves the registry; a scrape reads memory only and never waits on the database.

    `page` renders / (the status page); without it / is a landing page of links."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        web: WebConfig | None = None,
        *,
        page: Callable[[], bytes] | None = None,
    ) -> None:
        web = web or WebConfig()
        server_class = _IPv6Server if ":" in host else _Server
        self._server = server_class((host, port), _handler(registry, ready, web, page))
        if web.tls_server_config is not None:
            self._server.tls = web.tls_server_config.context()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="exporter", daemon=True
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, if started, and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    web: WebConfig,
    page: Callable[[], bytes] | None,
) -> type[BaseHTTPRequestHandler]:
    auth = BasicAuth(web.basic_auth_users) if web.basic_auth_users else None
    headers = web.http_server_config.headers.items()
    landing = page or (lambda: LANDING)

    class Handler(BaseHTTPRequestHandler):
        server_version = "rollout-monitor"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if auth is not None and not auth.allows(self.headers.get("Authorization")):
                self._reply(401, b"unauthorized\n", "text/plain; charset=utf-8")
            elif path == "/metrics":
                self._metrics()
            elif path == "/healthz":
                self._reply(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                ok = ready()
                body = (
                    b"ready\n" if ok else b"not ready: the first run of every check is not done\n"
                )
                self._reply(200 if ok else 503, body, "text/plain; charset=utf-8")
            elif path == "/":
                self._page()
            else:
                self._reply(404, b"not found\n", "text/plain; charset=utf-8")

        def _page(self) -> None:
            try:
                body = landing()
            except Exception:  # a rendering bug must not cost /metrics its thread or its log
                log.exception("status_page_failed")
                self._reply(500, b"the status page failed; see the log\n", "text/plain")
                return
            self._reply(200, body, "text/html; charset=utf-8")

        def _metrics(self) -> None:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(registry)
            gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
            self._reply(200, gzip.compress(body) if gzipped else body, content_type, gzipped)

        def _reply(
            self, status: int, body: bytes, content_type: str, gzipped: bool = False
        ) -> None:
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", CHALLENGE)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: scrapes every few seconds would drown the log."""

    return Handler
