"""Prometheus's HTTP API as the end-to-end tests ask it, and polling until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest


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
