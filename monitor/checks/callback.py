"""Callback check: probes the OAuth callback and records the outcome and latency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prometheus_client.metrics_core import Metric

from monitor.checks.base import CheckFailed
from monitor.checks.registry import Parts, register
from monitor.config.checks import CallbackSettings
from monitor.observe.answers import Expected, ExpectedAnswers
from monitor.observe.metrics import Metrics, gauge, labelled_gauge
from monitor.observe.probe import CallbackProbe, ProbeResult, TLSSeen
from monitor.observe.probelog import ProbeLog


class CallbackCheck:
    """One synthetic probe per run; the check fails when the app's answer is not a healthy one."""

    name = "callback"

    def __init__(
        self,
        probe: CallbackProbe,
        metrics: Metrics,
        interval: float,
        log: ProbeLog,
        expected: ExpectedAnswers | None = None,
    ) -> None:
        self._probe = probe
        self._metrics = metrics
        self._log = log
        self._expected = expected or ExpectedAnswers()
        self.interval = interval

    def run(self) -> Sequence[Metric]:
        """Probe, count the outcome, observe the latency (of an answer, or the wait of a probe
        that timed out: at least the deadline, so that the slowest are not left out of p95),
        log the probe."""
        expected = self._expected.current()
        result = judged(self._probe.probe(), expected)
        self._metrics.callback_requests.labels(result.outcome).inc()
        if (latency := result.latency) is not None:
            self._metrics.callback_duration.observe(latency)
        self._log.record(result)
        families = [*last_probe_families(result), *expected_families(expected)]
        if result.outcome != "success":
            detail = f" {result.status}" if result.status is not None else f": {result.detail}"
            raise CheckFailed(f"callback probe {result.outcome}{detail}", families)
        return families


def judged(result: ProbeResult, expected: Expected) -> ProbeResult:
    """The probe, an answer healthy by its status but not one of the app's own (as learned
    before the migration, or configured) made unexpected_answer, saying what changed."""
    if result.outcome != "success" or not expected.answers or result.answer in expected.answers:
        return result
    was = " | ".join(sorted(expected.answers))
    return replace(result, outcome="unexpected_answer", detail=f"was {was}, now {result.answer}")


def expected_families(expected: Expected) -> list[Metric]:
    """What the app's healthy answer is taken to be, and whether it is known at all."""
    return [
        gauge(
            "rollout_auth_callback_answer_known",
            "1 when the app's own answer is known (learned before the migration, or configured):"
            " another answer is unexpected_answer; 0 while only the status codes judge.",
            float(bool(expected.answers)),
        ),
        labelled_gauge(
            "rollout_auth_callback_expected_answer_info",
            "1 for each answer of the app's own: its status, media type and body shape, and"
            " where that comes from (learned, configuration).",
            ["answer", "source"],
            {(answer, expected.source): 1.0 for answer in sorted(expected.answers)},
        ),
    ]


def last_probe_families(result: ProbeResult) -> list[Metric]:
    """Gauges describing the last probe, like blackbox_exporter's probe_* series."""
    return [
        gauge(
            "rollout_auth_callback_last_success",
            "1 when the last probe got the healthy app's answer.",
            float(result.outcome == "success"),
        ),
        gauge(
            "rollout_auth_callback_last_status_code",
            "HTTP status of the last probe; 0 when it got no answer.",
            result.status or 0,
        ),
        gauge(
            "rollout_auth_callback_last_duration_seconds",
            "Wall time of the last probe, whatever its outcome.",
            result.duration,
        ),
        labelled_gauge(
            "rollout_auth_callback_phase_seconds",
            "Seconds the last probe spent in each phase (resolve, connect, tls, processing,"
            " transfer).",
            ["phase"],
            {(phase,): seconds for phase, seconds in result.phases.items()},
        ),
        gauge(
            "rollout_auth_callback_http_version",
            "HTTP version of the last probe's answer (1.1, 2); 0 when it got none.",
            http_version(result.http_version),
        ),
        gauge(
            "rollout_auth_callback_redirects",
            "Redirects the last probe followed (checks.callback.follow_redirects).",
            result.redirects,
        ),
        *tls_families(result.tls),
    ]


def http_version(text: str | None) -> float:
    """'HTTP/1.1' -> 1.1; 0 without an answer (or a version that is not a number)."""
    try:
        return float((text or "").removeprefix("HTTP/"))
    except ValueError:
        return 0.0


def tls_families(tls: TLSSeen | None) -> list[Metric]:
    """The last answer's TLS, as blackbox_exporter's probe_tls_* and probe_ssl_*: absent over
    plain HTTP; the expiry absent when the certificate was not verified."""
    if tls is None:
        return []
    found: list[Metric] = [
        labelled_gauge(
            "rollout_auth_callback_tls_info",
            "1, labelled with the TLS version and cipher of the last probe's answer.",
            ["version", "cipher"],
            {(tls.version, tls.cipher): 1.0},
        )
    ]
    if tls.expires_at is not None:
        found.append(
            gauge(
                "rollout_auth_callback_ssl_earliest_cert_expiry_timestamp_seconds",
                "When the callback's certificate expires (the leaf's notAfter: Python 3.11 does"
                " not hand out the verified chain), Unix seconds.",
                tls.expires_at,
            )
        )
    return found


@register("callback", order=7)
def _build(settings: CallbackSettings, parts: Parts) -> CallbackCheck:
    return CallbackCheck(
        CallbackProbe(settings),
        parts.metrics,
        settings.interval,
        parts.log,
        parts.expected_answers,
    )
