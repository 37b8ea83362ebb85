"""A small client of Prometheus's HTTP query API: instant queries, answered as plain numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.redact import redact_url


class PrometheusError(Exception):
    """Prometheus could not be asked or could not answer; the message is one line."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and value."""

    labels: dict[str, str]
    value: float


class Prometheus:
    """Instant queries against one Prometheus server (or anything serving its API)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def vector(self, query: str, at: float) -> list[Sample]:
        """The instant vector the query gives at Unix time at; NaN samples are left out."""
        data = self._query(query, at)
        if data.get("resultType") == "scalar":
            value = float(data["result"][1])
            return [] if math.isnan(value) else [Sample({}, value)]
        samples = [Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]
        return [s for s in samples if not math.isnan(s.value)]

    def scalar(self, query: str, at: float) -> float | None:
        """The query's single value at that time, or None when it has none."""
        samples = self.vector(query, at)
        if len(samples) > 1:
            raise PrometheusError(f"{query!r} gave {len(samples)} series where one was expected")
        return samples[0].value if samples else None

    def _query(self, query: str, at: float) -> dict[str, Any]:
        where = f"Prometheus at {redact_url(self._url)}"
        try:
            response = self._client.get(
                f"{self._url}/api/v1/query", params={"query": query, "time": f"{at:.3f}"}
            )
        except httpx.HTTPError as error:
            raise PrometheusError(f"{where}: {type(error).__name__}: {error}") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(f"{where}: HTTP {response.status_code}, not JSON") from None
        if response.status_code != httpx.codes.OK or body.get("status") != "success":
            raise PrometheusError(f"{where}: {body.get('error', response.status_code)}")
        data: dict[str, Any] = body["data"]
        return data
