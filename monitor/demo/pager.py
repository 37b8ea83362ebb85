"""A stand-in pager and ticket queue: receives Alertmanager's webhooks and says what arrived."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from monitor.demo.serving import LocalServer

MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Notification:
    """One alert of one webhook call: which receiver, firing or resolved, which alert."""

    receiver: str
    status: str
    alertname: str
    summary: str


class Pager:
    """Webhook receiver on 127.0.0.1; every receiver posts to /<receiver name>."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._lock = threading.Lock()
        self._received: list[Notification] = []
        self.server = LocalServer(handler_for(self))

    def received(self) -> list[Notification]:
        """Every notification so far, oldest first."""
        with self._lock:
            return list(self._received)

    def deliver(self, payload: dict[str, Any]) -> None:
        """Record and announce each alert of one Alertmanager webhook payload."""
        receiver = str(payload.get("receiver", "?"))
        for alert in payload.get("alerts", []):
            note = Notification(
                receiver=receiver,
                status=str(alert.get("status", "?")),
                alertname=str(alert.get("labels", {}).get("alertname", "?")),
                summary=str(alert.get("annotations", {}).get("summary", "")),
            )
            with self._lock:
                self._received.append(note)
            self._say(f"{receiver.upper()} {note.status}: {note.alertname}: {note.summary}")


def handler_for(pager: Pager) -> type[BaseHTTPRequestHandler]:
    """The request handler class feeding this pager."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                self.send_response(HTTPStatus.BAD_REQUEST)
            else:
                pager.deliver(payload if isinstance(payload, dict) else {})
                self.send_response(HTTPStatus.OK)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: deliver() says what matters."""

    return Handler


def rewired(config: dict[str, Any], base_url: str) -> dict[str, Any]:
    """An Alertmanager config whose webhooks all post to this pager, at /<receiver name>."""
    receivers = []
    for receiver in config.get("receivers", []):
        hooks = [
            {**hook, "url": f"{base_url}/{receiver['name']}"}
            for hook in receiver.get("webhook_configs", [])
        ]
        receivers.append({**receiver, "webhook_configs": hooks} if hooks else receiver)
    return {**config, "receivers": receivers}
