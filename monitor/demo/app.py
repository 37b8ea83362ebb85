"""A stand-in for the web app: serves the Threads OAuth callback and takes fault injections.

`POST /api/auth/callback/threads` with `{"code": "login:<threadsUserId>"}` logs that user in
(creating them if new) and answers 200; any other code is looked up, not found, and refused with
400, as the real app refuses the plan's `{"code":"test"}`. `POST /demo/<action>` injects or heals
a failure mode; `GET /demo` tells which are active.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from monitor.demo import data, faults
from monitor.demo.logins import known_user, log_in
from monitor.demo.serving import LocalServer

CALLBACK_PATH = "/api/auth/callback/threads"
CONTROL_PATH = "/demo"
LOGIN_PREFIX = "login:"
FAULTS = ("callback_5xx", "slow_callback", "trigger_bug", "lock_queue", "route_404")
# What a proxy answers for a route the app no longer has (a release that lost it): a 4xx, so
# healthy by the status codes alone; not the app's own answer (monitor.observe.answers).
PROXY_404 = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
ACTIONS = (*FAULTS, "rollback", "migrate", "heal")
SLOW_DELAY_SECONDS = 0.4
POOL_SIZE = 8
MAX_BODY = 64 * 1024
Answer = tuple[int, dict[str, Any]]


class ActionError(Exception):
    """An action that cannot be taken now (e.g. a trigger bug before the migration)."""


class StandInApp:
    """The app's callback, its connection pool, and the faults currently injected."""

    def __init__(
        self, database_url: str, port: int = 0, announce: Callable[[str], None] | None = None
    ) -> None:
        self._database_url = database_url
        self._announce = announce or (lambda _: None)
        self._pool = ConnectionPool(
            database_url,
            min_size=2,
            max_size=POOL_SIZE,
            timeout=5,
            kwargs={
                "application_name": faults.APP_NAME,
                "autocommit": True,
                "options": "-c statement_timeout=10s",
            },
            open=False,
        )
        self._faults: set[str] = set()
        self._lock_queue: faults.LockQueue | None = None
        self._guard = threading.Lock()
        self._server = LocalServer(handler_for(self), port)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:port of the app."""
        return self._server.base_url

    @property
    def callback_url(self) -> str:
        """The OAuth callback URL the monitor probes."""
        return self.base_url + CALLBACK_PATH

    def start(self) -> None:
        """Open the pool and serve."""
        self._pool.open(wait=True, timeout=30)
        self._server.start()

    def stop(self) -> None:
        """Stop serving, release any lock queue, close the pool."""
        self._server.stop()
        with self._guard:
            self._release_lock_queue()
            self._faults.clear()
        self._pool.close()

    @property
    def route_lost(self) -> bool:
        """Whether the callback's route is gone (route_404): a proxy answers instead."""
        return "route_404" in self._faults

    def callback(self, body: bytes) -> Answer:
        """The OAuth callback: log the user in, or refuse the code."""
        if "callback_5xx" in self._faults:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "injected fault callback_5xx"}
        if "slow_callback" in self._faults:
            time.sleep(SLOW_DELAY_SECONDS)
        code = oauth_code(body)
        if code is None:
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_request"}
        try:
            with self._pool.connection() as conn:
                return self._exchange(conn, code)
        except (psycopg.Error, PoolTimeout) as error:
            return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": type(error).__name__}

    def _exchange(self, conn: psycopg.Connection[Any], code: str) -> Answer:
        if code.startswith(LOGIN_PREFIX):
            log_in(conn, code.removeprefix(LOGIN_PREFIX))
            return HTTPStatus.OK, {"ok": True}
        known_user(conn, code)  # a fake code matches nobody, as with the real API
        return HTTPStatus.BAD_REQUEST, {"error": "invalid_grant"}

    def status(self) -> dict[str, Any]:
        """Which faults are active."""
        with self._guard:
            return {"faults": sorted(self._faults)}

    def act(self, action: str) -> str:
        """Inject a fault, heal them all, migrate or roll back; what happened, in words.

        Whoever asked (typed, piped, over HTTP, the scheduled migration), the outcome is
        announced, and so is the refusal or failure, which is raised as well.
        """
        try:
            done = self._act(action)
        except Exception as error:
            self._announce(why_not(action, error))
            raise
        self._announce(done)
        return done

    def _act(self, action: str) -> str:
        actions: dict[str, Callable[[], str]] = {
            "callback_5xx": lambda: self._flag("callback_5xx", "the callback answers 503"),
            "slow_callback": lambda: self._flag(
                "slow_callback", f"the callback answers {SLOW_DELAY_SECONDS:g}s later"
            ),
            "trigger_bug": self._break_trigger,
            "lock_queue": self._start_lock_queue,
            "route_404": lambda: self._flag(
                "route_404", "the callback's route is gone: the proxy answers 404 (text/html)"
            ),
            "rollback": self._roll_back,
            "migrate": self._migrate,
            "heal": self._heal,
        }
        if action not in actions:
            raise ActionError(f"unknown action {action!r}: expected one of {', '.join(ACTIONS)}")
        with self._guard:
            try:
                return actions[action]()
            except psycopg.errors.LockNotAvailable:
                raise ActionError(
                    f"{action}: a table it changes stayed locked for {data.DDL_LOCK_TIMEOUT}"
                    " (heal a lock_queue first)"
                ) from None

    def _flag(self, fault: str, effect: str) -> str:
        self._faults.add(fault)
        return effect

    def _break_trigger(self) -> str:
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            if not data.applied(conn):
                raise ActionError("trigger_bug needs migration 001 applied first")
            faults.break_trigger(conn)
        return self._flag("trigger_bug", "the trigger now marks fresh tokens invalid")

    def _start_lock_queue(self) -> str:
        if self._lock_queue is None:
            self._lock_queue = faults.LockQueue(self._database_url)
        return self._flag(
            "lock_queue", "an app transaction holds users; an ALTER TABLE waits; logins queue"
        )

    def _release_lock_queue(self) -> None:
        if self._lock_queue is not None:
            self._lock_queue.release()
            self._lock_queue = None

    def _roll_back(self) -> str:
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            data.roll_back(conn)
        self._faults.discard("trigger_bug")
        return "ran the plan's rollback SQL"

    def _migrate(self) -> str:
        with psycopg.connect(self._database_url, autocommit=True) as conn:
            if data.applied(conn):
                raise ActionError("migration 001 is already applied")
            data.migrate(conn)
        return "applied migration 001"

    def _heal(self) -> str:
        self._release_lock_queue()
        if "trigger_bug" in self._faults:
            with psycopg.connect(self._database_url, autocommit=True) as conn:
                faults.fix_trigger(conn)
        healed = sorted(self._faults)
        self._faults.clear()
        return f"healed {', '.join(healed)}" if healed else "nothing to heal"


def why_not(action: str, error: Exception) -> str:
    """Why an action was refused, or how it failed, in words."""
    return str(error) if isinstance(error, ActionError) else f"{action} failed: {error}"


def oauth_code(body: bytes) -> str | None:
    """The `code` of a JSON callback body, or None."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, str) and code else None


def handler_for(app: StandInApp) -> type[BaseHTTPRequestHandler]:
    """The request handler class serving this app."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            body = self.rfile.read(length)
            if self.path == CALLBACK_PATH and app.route_lost:
                self._send(HTTPStatus.NOT_FOUND, "text/html", PROXY_404, server="nginx")
            elif self.path == CALLBACK_PATH:
                self._answer(*app.callback(body))
            elif self.path.startswith(CONTROL_PATH + "/"):
                self._answer(*control(app, self.path.removeprefix(CONTROL_PATH + "/")))
            else:
                self._answer(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def do_GET(self) -> None:
            if self.path == CONTROL_PATH:
                self._answer(HTTPStatus.OK, app.status())
            else:
                self._answer(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, "application/json", json.dumps(payload).encode())

        def _send(self, status: int, media: str, body: bytes, server: str = "") -> None:
            self.answering_as = server
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def version_string(self) -> str:
            """The Server header: the proxy's name when a proxy answers (route_404)."""
            return getattr(self, "answering_as", "") or super().version_string()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the demo prints its own summary."""

    return Handler


def control(app: StandInApp, action: str) -> Answer:
    """Run a control action and answer with what it did, or why it could not."""
    try:
        done = app.act(action)
    except ActionError as error:
        return HTTPStatus.CONFLICT, {"error": str(error)}
    except psycopg.Error as error:
        return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"}
    return HTTPStatus.OK, {"done": done, **app.status()}
