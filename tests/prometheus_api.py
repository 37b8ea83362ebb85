"""Prometheus's HTTP API as the end-to-end tests ask it, polling until a condition holds, and a
fake Prometheus answering what a real one never would."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from callback_servers import (
    MAX_LIFETIME,
    RunningServer,
    ServerState,
    read_request,
    response_bytes,
    serve,
)


class Prometheus:
    """Prometheus's HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) an expression gives now."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        assert answer.status_code == 200, f"{expr}: {answer.text}"
        data = answer.json()["data"]
        return [data] if data["resultType"] == "scalar" else list(data["result"])

    def value(self, expr: str) -> float | None:
        """The single value an expression gives now, or None when it gives nothing."""
        found = self.query(expr)
        return float(found[0]["value"][1]) if found else None

    def alert_state(self, name: str) -> str | None:
        """pending or firing, or None when the alert is inactive."""
        answer = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        states = [a["state"] for a in answer["data"]["alerts"] if a["labels"]["alertname"] == name]
        return "firing" if "firing" in states else (states[0] if states else None)

    def alert(self, name: str) -> dict[str, Any]:
        """The alert's labels and annotations as Prometheus reports them."""
        answer = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return next(a for a in answer["data"]["alerts"] if a["labels"]["alertname"] == name)


def wait_for(what: str, condition: Callable[[], bool], timeout: float) -> float:
    """Poll until the condition holds; the seconds it took. Fails the test after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout:g}s")


# -- a Prometheus that answers what Prometheus never would (issue 22) --

HostileAnswer = Callable[[socket.socket, str], None]


def vector_body(*samples: tuple[object, str]) -> bytes:
    """A successful instant vector with one unlabelled series per (time, value)."""
    result = [
        {"metric": {"instance": f"m{i}"}, "value": [t, v]} for i, (t, v) in enumerate(samples)
    ]
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    ).encode()


def answer_with(status: int, body: bytes) -> HostileAnswer:
    """Every query answered with this status and body."""

    def answer(conn: socket.socket, _query: str) -> None:
        conn.sendall(response_bytes(status, body))

    return answer


def answer_by_query(answers: dict[str, bytes], otherwise: bytes) -> HostileAnswer:
    """A query holding one of the keys gets its body (the first key found); any other gets
    `otherwise`. All with HTTP 200."""

    def answer(conn: socket.socket, query: str) -> None:
        body = next((b for key, b in answers.items() if key in query), otherwise)
        conn.sendall(response_bytes(200, body))

    return answer


def endless_body(conn: socket.socket, _query: str) -> None:
    """An answer with no length that never ends: `[[[[` as fast as the client reads."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{")
    chunk = b"[" * 65536
    deadline = time.monotonic() + MAX_LIFETIME
    while time.monotonic() < deadline:
        conn.sendall(chunk)


def trickled_body(conn: socket.socket, _query: str) -> None:
    """A valid answer sent a byte every 0.1 s: each read is quick, the whole is not."""
    body = vector_body((1.0, "1"))
    conn.sendall(response_bytes(200, body)[: -len(body)])  # the head, with the body's length
    deadline = time.monotonic() + MAX_LIFETIME
    for byte in body:
        if time.monotonic() > deadline:
            return
        conn.sendall(bytes([byte]))
        time.sleep(0.1)


@contextlib.contextmanager
def hostile_prometheus(answer: HostileAnswer) -> Iterator[RunningServer]:
    """A server on 127.0.0.1 answering /api/v1/query as `answer` says (its URL has no path)."""

    def behave(conn: socket.socket, state: ServerState) -> None:
        request = read_request(conn, state)
        if request is not None:
            query = parse_qs(urlsplit(request.path).query).get("query", [""])[0]
            answer(conn, query)

    with serve(behave, path="") as server:
        yield server
