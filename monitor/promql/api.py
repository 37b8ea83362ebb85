"""A small client of Prometheus's HTTP query API: instant queries, answered as plain numbers.

Whatever answers is read as a stranger's: an answer is read within one deadline (the timeout, for
the whole answer, not for each read), up to MAX_ANSWER_BYTES, nested at most MAX_DEPTH deep, and
every sample's time and value is checked before anything uses it. Each problem is one
PrometheusError line, never a traceback.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.output.redact import Redactor, redact_url, userinfo_secrets

# The verdict's answers are a few KB (sums by outcome or bucket, one series per replica): 2 MiB
# holds thousands of series and keeps a hostile or broken server's endless body out of memory.
MAX_ANSWER_BYTES = 2 * 1024 * 1024
# An instant vector is nested 5 deep ({"data": {"result": [{"value": [...]}]}}).
MAX_DEPTH = 32
# Sample times Prometheus may give and the monitor may ask about: 1970 to 5138, as --at allows.
LATEST_TIME = 1e11
# Values beyond 2**53 (where float64 stops counting exactly) are no count, time, ratio or latency
# the monitor exports; sums of them could reach infinity (round() raises on it).
LARGEST_VALUE = float(2**53)
# Prometheus writes a value as Go's strconv.FormatFloat(v, 'f', -1, 64): NaN, +Inf, -Inf or
# decimal digits (1e300 is 301 of them).
_VALUE = re.compile(r"NaN|[+-]Inf|-?[0-9]{1,400}(?:\.[0-9]{1,400})?(?:[eE][+-]?[0-9]{1,3})?")
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


class PrometheusError(Exception):
    """Prometheus could not be asked or could not answer; the message is one line."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and value."""

    labels: dict[str, str]
    value: float


class _Shape(ValueError):
    """An answer that is JSON but not an instant query's: what is wrong with it."""


class Prometheus:
    """Instant queries against one Prometheus server (or anything serving its API)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout
        # Uncompressed: a small gzip body can inflate a thousandfold before it is counted.
        self._client = httpx.Client(timeout=timeout, headers={"Accept-Encoding": "identity"})
        self._redact = Redactor(userinfo_secrets(url))

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def vector(self, query: str, at: float) -> list[Sample]:
        """The instant vector the query gives at Unix time at; NaN and ±Inf values (no number:
        an empty ratio, a quantile past the last bucket) are left out."""
        data = self._query(query, at)
        try:
            if data.get("resultType") == "scalar":
                samples = [Sample({}, _value(data["result"]))]
            elif data.get("resultType") == "vector" and isinstance(data["result"], list):
                samples = [Sample(_labels(r["metric"]), _value(r["value"])) for r in data["result"]]
            else:
                raise _Shape("of unexpected shape")
        except _Shape as problem:
            raise PrometheusError(f"{self.where}: an answer to {query!r} {problem}") from None
        except (KeyError, IndexError, TypeError, ValueError):
            raise PrometheusError(
                f"{self.where}: an answer to {query!r} of unexpected shape"
            ) from None
        return [s for s in samples if math.isfinite(s.value)]

    def scalar(self, query: str, at: float) -> float | None:
        """The query's single value at that time, or None when it has none."""
        samples = self.vector(query, at)
        if len(samples) > 1:
            raise PrometheusError(f"{query!r} gave {len(samples)} series where one was expected")
        return samples[0].value if samples else None

    @property
    def where(self) -> str:
        """Prometheus at its URL, the password masked: how messages about it begin."""
        return f"Prometheus at {redact_url(self._url)}"

    def _query(self, query: str, at: float) -> dict[str, Any]:
        if not (math.isfinite(at) and 0 <= at <= LATEST_TIME):
            # --at is checked: such a time comes from an earlier answer (a migration's time).
            raise PrometheusError(f"{self.where}: its answers led to a time out of range ({at:g})")
        status, body = self._get(f"{self._url}/api/v1/query", {"query": query, "time": f"{at:.3f}"})
        if _depth(body) > MAX_DEPTH:
            raise PrometheusError(f"{self.where}: HTTP {status}, JSON nested over {MAX_DEPTH} deep")
        try:
            answer = json.loads(body)
        except RecursionError:  # _depth() stops this first; kept in case
            raise PrometheusError(f"{self.where}: HTTP {status}, JSON nested too deep") from None
        except ValueError:  # UnicodeDecodeError too
            raise PrometheusError(f"{self.where}: HTTP {status}, not JSON") from None
        return self._data(answer, status)

    def _get(self, url: str, params: dict[str, str]) -> tuple[int, bytes]:
        """The status and body, read whole within the timeout and MAX_ANSWER_BYTES.

        httpx's timeout bounds each read, so a server sending a byte a second is never timed out:
        the request runs in a thread that stops reading at the deadline, and the caller waits for
        it only until then (the thread then ends within one read's timeout).
        """
        deadline = time.monotonic() + self._timeout
        outcome: list[tuple[int, bytes] | PrometheusError] = []

        def read() -> None:
            try:
                outcome.append(self._read(url, params, deadline))
            except PrometheusError as error:
                outcome.append(error)
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                outcome.append(PrometheusError(f"{self.where}: {type(error).__name__}: {error}"))
            except Exception as error:  # whatever else a stranger's bytes cause: one line
                outcome.append(PrometheusError(f"{self.where}: {type(error).__name__}"))

        worker = threading.Thread(target=read, name="prometheus-query", daemon=True)
        worker.start()
        worker.join(max(deadline - time.monotonic(), 0.0))
        if not outcome:  # the thread ends within one read's timeout, reading no more
            raise PrometheusError(f"{self.where}: no whole answer within {self._timeout:g}s")
        found = outcome[0]
        if isinstance(found, PrometheusError):
            raise found
        return found

    def _read(self, url: str, params: dict[str, str], deadline: float) -> tuple[int, bytes]:
        with self._client.stream("GET", url, params=params) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise PrometheusError(
                        f"{self.where}: HTTP {response.status_code}, an answer over "
                        f"{MAX_ANSWER_BYTES // 1024 // 1024} MiB"
                    )
                if time.monotonic() > deadline:  # the caller has given up: stop reading
                    raise PrometheusError(
                        f"{self.where}: no whole answer within {self._timeout:g}s"
                    )
            return response.status_code, bytes(body)

    def _data(self, body: object, status: int) -> dict[str, Any]:
        """The answer's data, or PrometheusError with Prometheus's own reason: its first
        200 characters (Redactor.excerpt) on one line, a secret in them masked."""
        if not isinstance(body, dict):
            raise PrometheusError(f"{self.where}: HTTP {status}, not a query API answer")
        data = body.get("data")
        if (
            status != httpx.codes.OK
            or body.get("status") != "success"
            or not isinstance(data, dict)
        ):
            error = body.get("error")
            reason = error if isinstance(error, str) and error.strip() else f"HTTP {status}"
            raise PrometheusError(f"{self.where}: {' '.join(self._redact.excerpt(reason).split())}")
        return data


def _depth(body: bytes) -> int:
    """How deep the JSON's arrays and objects nest, read in one linear pass (json.loads recurses
    once per level). Escapes go first, then strings, then all but brackets; what is not JSON gets
    some number here and fails to parse after."""
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", body)).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                break
    return deepest


def _labels(metric: object) -> dict[str, str]:
    if not isinstance(metric, dict) or not all(isinstance(v, str) for v in metric.values()):
        raise _Shape("of unexpected shape")
    return dict(metric)


def _value(pair: object) -> float:
    """A sample's value, its time checked: NaN and ±Inf as they are (the caller leaves them
    out); a finite value beyond LARGEST_VALUE, or a time out of range, is an error."""
    if not isinstance(pair, list) or len(pair) != 2:
        raise _Shape("of unexpected shape")
    at, text = pair
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise _Shape("of unexpected shape")
    if not 0 <= at <= LATEST_TIME:  # False for NaN; exact for an integer of 400 digits
        digits = str(at) if isinstance(at, int) else f"{at:g}"
        shown = digits if len(digits) <= 20 else f"{digits[:12]}… ({len(digits)} digits)"
        raise _Shape(f"with a sample time out of range ({shown})")
    if not isinstance(text, str) or not _VALUE.fullmatch(text):
        raise _Shape("of unexpected shape")
    value = float(text)
    if math.isfinite(value) and abs(value) > LARGEST_VALUE:
        raise _Shape(f"with a value out of range ({value:g})")
    return value
