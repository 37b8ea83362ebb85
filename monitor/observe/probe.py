"""The OAuth callback probe: the plan's curl, with a hard deadline and blackbox-style phases."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field, replace
from typing import Any

from monitor.config.checks import CallbackSettings
from monitor.observe.body import BodyTooLarge, BodyUnreadable, read_bounded
from monitor.observe.matchers import Answer, Matchers

PHASES = ("connect", "tls", "processing", "transfer")
MAX_REDIRECTS = 10  # with follow_redirects, as Go's http client (blackbox_exporter's)
# Each phase: from the first event that has happened to the event that ends it.
_PHASE_SPANS = {
    "connect": (("start",), "connect_tcp.complete"),
    "tls": (("start_tls.started",), "start_tls.complete"),
    "processing": (
        ("send_request_body.complete", "send_request_headers.complete"),
        "receive_response_headers.complete",
    ),
    "transfer": (("receive_response_headers.complete",), "receive_response_body.complete"),
}


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw."""

    outcome: str
    duration: float
    status: int | None = None
    phases: dict[str, float] = field(default_factory=dict)
    detail: str = ""

    @property
    def latency(self) -> float | None:
        """What the probe's latency counts as: the answer's, or for a probe that timed out the
        time it gave up (at least the deadline); None when it failed without waiting (refused,
        reset)."""
        if self.status is not None or self.outcome == "timeout":
            return self.duration
        return None


DETAIL_MAX = 160  # characters of an error's text kept: a server echoing garbage is cut short


def describe(error: Exception) -> str:
    """An error as one short printable line: its kind and the start of its text (which may
    quote what the server sent)."""
    text = " ".join(str(error).split()) or "no detail"
    text = "".join(c if c.isprintable() else "?" for c in text)
    text = text if len(text) <= DETAIL_MAX else text[:DETAIL_MAX] + "…"
    return f"{type(error).__name__}: {text}"


class Timings:
    """httpcore trace events -> when each happened, for the phase gauges."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.restart()

    def restart(self) -> None:
        """Start the clock as the request is about to be sent, not when the client is made."""
        self.marks = {"start": time.perf_counter()}

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's trace extension callback; drops the protocol prefix (http11., connection.)."""
        self.marks.setdefault(event.split(".", 1)[-1], time.perf_counter())

    def elapsed(self) -> float:
        """Seconds since the probe started."""
        return time.perf_counter() - self.marks["start"]

    def phases(self) -> dict[str, float]:
        """Seconds spent in each phase that happened; 0 for those that did not."""
        result = dict.fromkeys(PHASES, 0.0)
        for phase, (starts, end) in _PHASE_SPANS.items():
            start = next((self.marks[s] for s in starts if s in self.marks), None)
            if start is not None and end in self.marks:
                result[phase] = self.marks[end] - start
        return result


def tls_context(url: str) -> ssl.SSLContext:
    """The probe's TLS context, made once at the first probe (not at start: the first scrape
    needs none of it). Loading the CA bundle took 18 ms of CPU per probe when each new client
    made its own, and holds 2.6 MiB: an http:// callback (a sidecar's localhost) gets a bare
    context it never uses. Each probe still opens a fresh connection (and TLS session)."""
    if not url.lower().startswith("https://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    import certifi  # noqa: PLC0415

    return ssl.create_default_context(cafile=certifi.where())


class BodyProblem(Exception):
    """The answer came, but its body was cut off at the limit or does not decompress."""

    def __init__(self, status: int, cause: Exception) -> None:
        super().__init__(str(cause))
        self.status, self.cause = status, cause


class CallbackProbe:
    """Sends the configured request on a fresh connection and classifies the answer."""

    def __init__(self, settings: CallbackSettings) -> None:
        self._settings = settings
        self._tls: ssl.SSLContext | None = None
        self._matchers = Matchers(settings)

    def probe(self) -> ProbeResult:
        """One probe; returns by the deadline whatever the server does."""
        if self._tls is None:
            self._tls = tls_context(self._settings.url)
        return asyncio.run(self._probe(self._tls))

    async def _probe(self, tls: ssl.SSLContext) -> ProbeResult:
        # httpx (and the click it imports for its command line) is imported at the first probe:
        # 35 ms that starting to serve /metrics does not need.
        import httpx  # noqa: PLC0415

        timings = Timings()
        try:
            answer = await asyncio.wait_for(self._exchange(timings, tls), self._settings.timeout)
        except BodyProblem as problem:
            outcome = "body_too_large" if isinstance(problem.cause, BodyTooLarge) else "bad_body"
            return self._result(outcome, timings, problem.status, str(problem.cause))
        except (TimeoutError, httpx.TimeoutException):
            waited = self._result("timeout", timings, detail="no answer by the deadline")
            # Its latency counts as at least the deadline (the clock started a moment late).
            return replace(waited, duration=max(waited.duration, self._settings.timeout))
        except httpx.HTTPError as error:
            return self._result("connection_error", timings, detail=describe(error))
        outcome, detail = self._classify(answer)
        return self._result(outcome, timings, answer.status, detail)

    async def _exchange(self, timings: Timings, tls: ssl.SSLContext) -> Answer:
        import httpx  # noqa: PLC0415  # imported by _probe already

        settings = self._settings
        async with httpx.AsyncClient(
            trust_env=False,
            timeout=settings.timeout,
            verify=tls,
            follow_redirects=settings.follow_redirects,
            max_redirects=MAX_REDIRECTS,
        ) as client:
            request = client.build_request(
                settings.method,
                settings.url,
                headers=settings.headers,
                content=settings.body.encode() if settings.body else None,
                extensions={"trace": timings.trace},
            )
            timings.restart()
            response = await client.send(request, stream=True)
            try:
                encoding = response.headers.get("content-encoding", "identity")
                raw = response.aiter_raw()
                body = await read_bounded(raw, encoding, settings.body_size_limit)
            except (BodyTooLarge, BodyUnreadable) as cause:
                raise BodyProblem(response.status_code, cause) from None
            finally:
                await response.aclose()
            headers = tuple((k.lower(), v) for k, v in response.headers.items())
            return Answer(response.status_code, headers, body)

    def _classify(self, answer: Answer) -> tuple[str, str]:
        """The outcome and its detail: the status first, then the matchers."""
        status = answer.status
        if not self._settings.is_valid_status(status):
            return ("server_error" if status >= 500 else "unexpected_status"), ""
        failed = self._matchers.failure(answer) if self._matchers.configured else None
        return ("success", "") if failed is None else failed

    @staticmethod
    def _result(
        outcome: str, timings: Timings, status: int | None = None, detail: str = ""
    ) -> ProbeResult:
        return ProbeResult(outcome, timings.elapsed(), status, timings.phases(), detail)
