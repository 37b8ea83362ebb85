"""The OAuth callback probe: the plan's curl, with a hard deadline and blackbox-style phases."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from monitor.config.checks import CallbackSettings, trusted_context
from monitor.observe.answers import answer_shape
from monitor.observe.body import BodyTooLarge, BodyUnreadable, read_bounded
from monitor.observe.matchers import Answer, Matchers

PHASES = ("resolve", "connect", "tls", "processing", "transfer")
MAX_REDIRECTS = 10  # with follow_redirects, as Go's http client (blackbox_exporter's)
# Each phase: from the first event that has happened to the event that ends it.
_PHASE_SPANS = {
    "resolve": (("start",), "resolved"),
    "connect": (("resolved", "start"), "connect_tcp.complete"),
    "tls": (("start_tls.started",), "start_tls.complete"),
    "processing": (
        ("send_request_body.complete", "send_request_headers.complete"),
        "receive_response_headers.complete",
    ),
    "transfer": (("receive_response_headers.complete",), "receive_response_body.complete"),
}


@dataclass(frozen=True)
class TLSSeen:
    """The TLS of the last answer: version, cipher, and when the certificate expires (None
    when it was not verified, so not read)."""

    version: str
    cipher: str
    expires_at: float | None


@dataclass(frozen=True)
class Exchanged:
    """The answer, and how it came: the HTTP version, the redirects followed, the TLS."""

    answer: Answer
    http_version: str
    redirects: int
    tls: TLSSeen | None


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw."""

    outcome: str
    duration: float
    status: int | None = None
    phases: dict[str, float] = field(default_factory=dict)
    detail: str = ""
    http_version: str | None = None  # "HTTP/1.1", of the answer
    redirects: int = 0  # followed on the way to the answer
    tls: TLSSeen | None = None
    answer: str | None = None  # its shape (monitor.observe.answers), when an answer came

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

    def mark(self, event: str) -> None:
        """Note an event of our own (the name resolved)."""
        self.marks.setdefault(event, time.perf_counter())

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's trace extension callback; drops the protocol prefix (http11., connection.)."""
        self.marks.setdefault(event.split(".", 1)[-1], time.perf_counter())

    def elapsed(self) -> float:
        """Seconds from the probe's start to its answer read (or now, without one)."""
        return self.marks.get("read", time.perf_counter()) - self.marks["start"]

    def phases(self) -> dict[str, float]:
        """Seconds spent in each phase that happened; 0 for those that did not."""
        result = dict.fromkeys(PHASES, 0.0)
        for phase, (starts, end) in _PHASE_SPANS.items():
            start = next((self.marks[s] for s in starts if s in self.marks), None)
            if start is not None and end in self.marks:
                result[phase] = self.marks[end] - start
        return result


def tls_context(settings: CallbackSettings) -> ssl.SSLContext:
    """The probe's TLS context, made once at the first probe (not at start: the first scrape
    needs none of it). Loading the CA bundle took 18 ms of CPU per probe when each new client
    made its own, and holds 2.6 MiB: an http:// callback (a sidecar's localhost) gets a bare
    context it never uses. Each probe still opens a fresh connection (and TLS session).
    tls_config.ca_file trusts that CA instead of certifi's bundle; insecure_skip_verify checks
    nothing."""
    if not settings.url.lower().startswith("https://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls = settings.tls_config
    if tls.insecure_skip_verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if tls.ca_file is not None:
        return trusted_context(tls.ca_file)
    import certifi  # noqa: PLC0415

    return ssl.create_default_context(cafile=certifi.where())


Target = tuple[str, dict[str, str], dict[str, str]]  # URL, headers, httpcore extensions
MAX_ADDRESSES = 4  # of a name, tried in the resolver's order while connecting is refused


async def resolved(url: str, timings: Timings) -> list[Target]:
    """The URL with its host resolved, one per address in the resolver's order (each tried
    until one connects, as a client connecting by name would), with the Host header and the
    TLS server name that keep the request as written; the resolve phase marked. An address in
    the URL is used as it is."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [(url, {}, {})]  # no resolve phase
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    timings.mark("resolved")
    addresses = list(dict.fromkeys(str(entry[4][0]) for entry in found))[:MAX_ADDRESSES]
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    userinfo, at, host_header = parts.netloc.rpartition("@")
    targets = []
    for address in addresses:
        literal = f"[{address}]" if ":" in address else address
        netloc = userinfo + at + (f"{literal}:{parts.port}" if parts.port else literal)
        target = urlunsplit(parts._replace(netloc=netloc))
        targets.append((target, {"Host": host_header}, {"sni_hostname": host}))
    return targets


def tls_seen(stream: Any) -> TLSSeen | None:
    """The answer's TLS, from httpcore's network stream; None over plain HTTP."""
    tls = None if stream is None else stream.get_extra_info("ssl_object")
    if tls is None:
        return None
    cipher = tls.cipher()
    certificate = tls.getpeercert() or {}
    expiry = certificate.get("notAfter")
    return TLSSeen(
        str(tls.version() or ""),
        str(cipher[0]) if cipher else "",
        None if not isinstance(expiry, str) else float(ssl.cert_time_to_seconds(expiry)),
    )


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
            self._tls = tls_context(self._settings)
        return asyncio.run(self._probe(self._tls))

    async def _probe(self, tls: ssl.SSLContext) -> ProbeResult:
        # httpx (and the click it imports for its command line) is imported at the first probe:
        # 35 ms that starting to serve /metrics does not need.
        import httpx  # noqa: PLC0415

        timings = Timings()
        try:
            got = await asyncio.wait_for(self._exchange(timings, tls), self._settings.timeout)
        except BodyProblem as problem:
            outcome = "body_too_large" if isinstance(problem.cause, BodyTooLarge) else "bad_body"
            return self._result(outcome, timings, problem.status, str(problem.cause))
        except (TimeoutError, httpx.TimeoutException):
            waited = self._result("timeout", timings, detail="no answer by the deadline")
            # Its latency counts as at least the deadline (the clock started a moment late).
            return replace(waited, duration=max(waited.duration, self._settings.timeout))
        except (httpx.HTTPError, OSError) as error:  # OSError: the name does not resolve
            return self._result("connection_error", timings, detail=describe(error))
        outcome, detail = self._classify(got.answer)
        result = self._result(outcome, timings, got.answer.status, detail)
        shape = answer_shape(got.answer.status, dict(got.answer.headers), got.answer.body)
        return replace(
            result,
            http_version=got.http_version,
            redirects=got.redirects,
            tls=got.tls,
            answer=shape,
        )

    async def _exchange(self, timings: Timings, tls: ssl.SSLContext) -> Exchanged:
        import httpx  # noqa: PLC0415  # imported by _probe already

        settings = self._settings
        from monitor.observe.network import transport  # noqa: PLC0415  # httpx: see _probe

        async with httpx.AsyncClient(
            trust_env=False,
            timeout=settings.timeout,
            transport=transport(tls),
            follow_redirects=settings.follow_redirects,
            max_redirects=MAX_REDIRECTS,
        ) as client:
            timings.restart()
            targets = await resolved(settings.url, timings)
            requests = [
                client.build_request(
                    settings.method,
                    url,
                    headers={**headers, **settings.headers},
                    content=settings.body.encode() if settings.body else None,
                    extensions={"trace": timings.trace, **extensions},
                )
                for url, headers, extensions in targets
            ]
            if "resolved" not in timings.marks:  # an address: the clock starts at the send
                timings.restart()
            for number, request in enumerate(requests, 1):
                try:
                    response = await client.send(request, stream=True)
                    break
                except httpx.ConnectError:  # nothing sent: the next address, as a connect would
                    if number == len(requests):
                        raise
            try:
                encoding = response.headers.get("content-encoding", "identity")
                raw = response.aiter_raw()
                body = await read_bounded(raw, encoding, settings.body_size_limit)
                timings.mark("read")  # the wall time ends here: what follows is ours
            except (BodyTooLarge, BodyUnreadable) as cause:
                await response.aclose()
                raise BodyProblem(response.status_code, cause) from None
            try:
                seen_tls = tls_seen(response.extensions.get("network_stream"))
            finally:
                await response.aclose()
            answered = tuple((k.lower(), v) for k, v in response.headers.items())
            answer = Answer(response.status_code, answered, body)
            return Exchanged(answer, response.http_version, len(response.history), seen_tls)

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
