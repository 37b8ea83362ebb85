"""A small client of Prometheus's HTTP query API: instant queries, answered as plain numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.output.redact import redact_url


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
        """The instant vector the query gives at Unix time at; non-finite values are left out."""
        data = self._query(query, at)
        try:
            if data.get("resultType") == "scalar":
                samples = [Sample({}, float(data["result"][1]))]
            else:
                samples = [Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]
        except (KeyError, IndexError, TypeError, ValueError):
            raise PrometheusError(
                f"{self._where}: an answer to {query!r} of unexpected shape"
            ) from None
        return [s for s in samples if math.isfinite(s.value)]

    def scalar(self, query: str, at: float) -> float | None:
        """The query's single value at that time, or None when it has none."""
        samples = self.vector(query, at)
        if len(samples) > 1:
            raise PrometheusError(f"{query!r} gave {len(samples)} series where one was expected")
        return samples[0].value if samples else None

    @property
    def _where(self) -> str:
        return f"Prometheus at {redact_url(self._url)}"

    def _query(self, query: str, at: float) -> dict[str, Any]:
        try:
            response = self._client.get(
                f"{self._url}/api/v1/query", params={"query": query, "time": f"{at:.3f}"}
            )
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise PrometheusError(f"{self._where}: {type(error).__name__}: {error}") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(f"{self._where}: HTTP {response.status_code}, not JSON") from None
        return self._data(body, response.status_code)

    def _data(self, body: object, status: int) -> dict[str, Any]:
        """The answer's data, or PrometheusError with Prometheus's own one-line reason."""
        if not isinstance(body, dict):
            raise PrometheusError(f"{self._where}: HTTP {status}, not a query API answer")
        data = body.get("data")
        if (
            status != httpx.codes.OK
            or body.get("status") != "success"
            or not isinstance(data, dict)
        ):
            reason = " ".join(str(body.get("error", f"HTTP {status}")).split())
            raise PrometheusError(f"{self._where}: {reason}")
        return data
