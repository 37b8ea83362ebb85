"""The OAuth callback probe and its check, against real HTTP and TCP servers on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import pytest
from callback_servers import (
    CALLBACK_PATH,
    RunningServer,
    answering_server,
    closing_server,
    delayed_server,
    garbage_server,
    hanging_server,
    refused_url,
    trickling_server,
)
from prometheus_client import CollectorRegistry

from monitor.checks.base import CheckRunner
from monitor.checks.callback import CallbackCheck
from monitor.config.checks import CallbackSettings
from monitor.observe.matchers import MATCHER_OUTCOMES
from monitor.observe.metrics import PROBE_OUTCOMES, Metrics
from monitor.observe.probe import PHASES, CallbackProbe, ProbeResult
from monitor.observe.probelog import ProbeLog
from monitor.output.redact import Redactor

DEADLINE = 1.0  # seconds: the probe's timeout in these tests
MARGIN = 1.0  # seconds a probe may overrun its deadline on a busy machine
EARLY = 0.05  # seconds a timer may fire early relative to perf_counter

ServerFactory = Callable[[], AbstractContextManager[RunningServer]]


def callback_settings(url: str, **overrides: object) -> CallbackSettings:
    """The plan's probe of this URL, with a one-second deadline unless overridden."""
    return CallbackSettings.model_validate({"url": url, "timeout": "1s", **overrides})


def probe_once(settings: CallbackSettings) -> tuple[ProbeResult, float]:
    """One probe and the wall time the caller waited for it."""
    started = time.perf_counter()
    result = CallbackProbe(settings).probe()
    return result, time.perf_counter() - started


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def callback_runner(settings: CallbackSettings, metrics: Metrics) -> CheckRunner:
    """The callback check wrapped in the bookkeeping every check gets."""
    check = CallbackCheck(CallbackProbe(settings), metrics, settings.interval, ProbeLog())
    return CheckRunner(check, metrics, Redactor())


def requests_total(registry: CollectorRegistry, outcome: str) -> float | None:
    return registry.get_sample_value("rollout_auth_callback_requests_total", {"outcome": outcome})


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample that must be exported."""
    value = registry.get_sample_value(name, labels or {})
    assert value is not None, f"{name}{labels or ''} is not exported"
    return value


# --- classification of answers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "success"),
        (204, "success"),
        (302, "success"),
        (401, "success"),
        (404, "success"),
        (500, "server_error"),
        (503, "server_error"),
    ],
)
def test_answer_is_classified_by_default_valid_codes(status: int, outcome: str) -> None:
    """With the default valid codes (2xx, 3xx, 4xx) only a 5xx is not the healthy app's answer."""
    with answering_server(status) as server:
        result, _ = probe_once(callback_settings(server.url))
    assert result.outcome == outcome
    assert result.status == status
    assert result.detail == ""


@pytest.mark.parametrize(
    ("valid", "status", "outcome"),
    [
        ([200], 200, "success"),
        ([200], 404, "unexpected_status"),
        ([200], 201, "unexpected_status"),
        ([200], 302, "unexpected_status"),
        ([200], 503, "server_error"),
        (["2xx"], 301, "unexpected_status"),
        (["2xx", 401], 401, "success"),
        (["5xx"], 503, "success"),
    ],
)
def test_answer_is_classified_by_configured_valid_codes(
    valid: list[int | str], status: int, outcome: str
) -> None:
    with answering_server(status) as server:
        result, _ = probe_once(callback_settings(server.url, valid_status_codes=valid))
    assert result.outcome == outcome
    assert result.status == status


def test_refused_port_is_a_connection_error() -> None:
    result, waited = probe_once(callback_settings(refused_url()))
    assert result.outcome == "connection_error"
    assert result.status is None
    assert result.detail.startswith("ConnectError")
    assert waited < DEADLINE


def test_non_http_answer_is_a_connection_error() -> None:
    """Bytes that are not an HTTP status line fail at once, not at the deadline."""
    with garbage_server() as server:
        result, waited = probe_once(callback_settings(server.url))
    assert result.outcome == "connection_error"
    assert result.status is None
    assert result.detail.startswith("RemoteProtocolError")
    assert len(server.requests) == 1
    assert waited < DEADLINE


def test_connection_closed_on_accept_is_a_connection_error() -> None:
    with closing_server() as server:
        result, waited = probe_once(callback_settings(server.url))
    assert result.outcome == "connection_error"
    assert result.status is None
    assert result.detail != ""
    assert server.connections == 1
    assert waited < DEADLINE


@pytest.mark.parametrize(
    "server_factory",
    [
        pytest.param(hanging_server, id="hanging"),
        pytest.param(lambda: delayed_server(200, delay=3 * DEADLINE), id="answering-too-late"),
    ],
)
def test_hanging_callback_times_out_by_the_deadline(server_factory: ServerFactory) -> None:
    with server_factory() as server:
        result, waited = probe_once(callback_settings(server.url))
    assert result.outcome == "timeout"
    assert result.status is None
    assert len(server.requests) == 1
    assert DEADLINE - EARLY <= waited < DEADLINE + MARGIN
    assert DEADLINE <= result.duration <= waited + EARLY  # at least the deadline (issue 20)


def test_trickling_body_times_out_by_the_deadline() -> None:
    """A body that keeps arriving a byte at a time never resets the deadline."""
    with trickling_server() as server:
        result, waited = probe_once(callback_settings(server.url))
        trickled = server.bytes_trickled
    assert result.outcome == "timeout"
    assert result.status is None
    assert trickled >= 2
    assert DEADLINE - EARLY <= waited < DEADLINE + MARGIN
    assert DEADLINE <= result.duration <= waited + EARLY  # at least the deadline (issue 20)


def test_answer_after_a_delay_within_the_deadline_is_a_success() -> None:
    delay = 0.3
    with delayed_server(200, delay=delay) as server:
        result, waited = probe_once(callback_settings(server.url, timeout="2s"))
    assert result.outcome == "success"
    assert result.status == 200
    assert delay <= result.duration <= waited
    assert result.phases["processing"] >= delay - EARLY


# --- the request sent ----------------------------------------------------------------------


def test_probe_sends_the_plans_request() -> None:
    """curl -X POST $URL -H 'Content-Type: application/json' -d '{"code":"test"}'."""
    with answering_server(401) as server:
        probe_once(callback_settings(server.url))
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == CALLBACK_PATH
    assert request.header("Content-Type") == "application/json"
    assert request.body == b'{"code":"test"}'
    assert json.loads(request.body) == {"code": "test"}
    assert request.header("Content-Length") == "15"


def test_probe_sends_configured_method_headers_and_body() -> None:
    with answering_server(200, path="/oauth/callback?source=monitor") as server:
        settings = callback_settings(
            server.url,
            method="PUT",
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Probe": "rollout"},
            body="code=abc&state=xyz",
        )
        probe_once(settings)
    [request] = server.requests
    assert request.method == "PUT"
    assert request.path == "/oauth/callback?source=monitor"
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert request.header("X-Probe") == "rollout"
    assert request.body == b"code=abc&state=xyz"


def test_probe_without_body_sends_none() -> None:
    with answering_server(200) as server:
        probe_once(callback_settings(server.url, method="GET", body="", headers={}))
    [request] = server.requests
    assert request.method == "GET"
    assert request.body == b""
    assert request.header("Content-Type") is None


def test_every_probe_opens_a_fresh_connection() -> None:
    with answering_server(200) as server:
        probe = CallbackProbe(callback_settings(server.url))
        outcomes = [probe.probe().outcome for _ in range(3)]
    assert outcomes == ["success"] * 3
    assert server.connections == 3
    assert len(server.requests) == 3


# --- the check and its metrics -------------------------------------------------------------


def test_every_probe_outcome_is_exported_as_zero_before_the_first_probe(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assert {o: requests_total(registry, o) for o in PROBE_OUTCOMES} == dict.fromkeys(
        PROBE_OUTCOMES, 0.0
    )
    assert sample(registry, "rollout_auth_callback_duration_seconds_count") == 0.0


def test_outcome_counts_after_several_probes(registry: CollectorRegistry, metrics: Metrics) -> None:
    """Each probe counts once under its outcome; answered probes are timed, and the one that
    timed out at its wait, at least the deadline (issue 20: a refused connection has none)."""
    with answering_server(200) as ok, answering_server(503) as sick:
        healthy = callback_runner(callback_settings(ok.url), metrics)
        failing = callback_runner(callback_settings(sick.url), metrics)
        assert [healthy(), healthy(), failing()] == ["success", "success", "failure"]
    refused = callback_runner(callback_settings(refused_url()), metrics)
    assert [refused(), refused()] == ["failure", "failure"]
    with hanging_server() as server:
        assert callback_runner(callback_settings(server.url, timeout="500ms"), metrics)() == (
            "failure"
        )

    assert {o: requests_total(registry, o) for o in PROBE_OUTCOMES} == {
        "success": 2.0,
        "server_error": 1.0,
        "unexpected_status": 0.0,
        "timeout": 1.0,
        "connection_error": 2.0,
        "body_too_large": 0.0,
        "bad_body": 0.0,
        **dict.fromkeys(MATCHER_OUTCOMES, 0.0),
        "unexpected_answer": 0.0,
    }
    assert sample(registry, "rollout_auth_callback_duration_seconds_count") == 4.0
    # The timeout's 0.5 s is in (0.4, 0.5] or, late, (0.5, 0.75]; the answers far below.
    assert sample(registry, "rollout_auth_callback_duration_seconds_bucket", {"le": "0.4"}) == 3.0
    runs = {"check": "callback"}
    assert sample(registry, "rollout_check_runs_total", {**runs, "outcome": "success"}) == 2.0
    assert sample(registry, "rollout_check_runs_total", {**runs, "outcome": "failure"}) == 4.0


def test_unexpected_status_is_counted_and_fails_the_check(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    with answering_server(404) as server:
        run = callback_runner(callback_settings(server.url, valid_status_codes=[200]), metrics)
        assert run() == "failure"
    assert requests_total(registry, "unexpected_status") == 1.0
    assert requests_total(registry, "success") == 0.0
    assert sample(registry, "rollout_check_success", {"check": "callback"}) == 0.0
    assert sample(registry, "rollout_auth_callback_last_status_code") == 404.0
    assert sample(registry, "rollout_auth_callback_duration_seconds_count") == 1.0


def test_check_success_follows_the_last_answer(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    """rollout_check_success and the last_* gauges describe the latest probe only."""
    check = {"check": "callback"}
    with answering_server(200) as ok, answering_server(503) as sick:
        healthy = callback_runner(callback_settings(ok.url), metrics)
        failing = callback_runner(callback_settings(sick.url), metrics)

        assert healthy() == "success"
        assert sample(registry, "rollout_check_success", check) == 1.0
        assert sample(registry, "rollout_auth_callback_last_success") == 1.0
        assert sample(registry, "rollout_auth_callback_last_status_code") == 200.0

        assert failing() == "failure"
        assert sample(registry, "rollout_check_success", check) == 0.0
        assert sample(registry, "rollout_auth_callback_last_success") == 0.0
        assert sample(registry, "rollout_auth_callback_last_status_code") == 503.0

        assert healthy() == "success"
        assert sample(registry, "rollout_check_success", check) == 1.0


def test_last_status_code_is_zero_when_nothing_answered(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    run = callback_runner(callback_settings(refused_url()), metrics)
    assert run() == "failure"
    assert sample(registry, "rollout_check_success", {"check": "callback"}) == 0.0
    assert sample(registry, "rollout_auth_callback_last_status_code") == 0.0
    assert sample(registry, "rollout_auth_callback_last_success") == 0.0
    assert sample(registry, "rollout_auth_callback_duration_seconds_count") == 0.0
    assert requests_total(registry, "connection_error") == 1.0


def test_phase_gauges_of_a_successful_probe_add_up_within_its_duration(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    with answering_server(200) as server:
        run = callback_runner(callback_settings(server.url), metrics)
        started = time.perf_counter()
        assert run() == "success"
        waited = time.perf_counter() - started
    phases = {
        phase: sample(registry, "rollout_auth_callback_phase_seconds", {"phase": phase})
        for phase in PHASES
    }
    duration = sample(registry, "rollout_auth_callback_last_duration_seconds")
    assert phases["tls"] == 0.0  # plain http
    assert all(phases[p] > 0 for p in ("connect", "processing", "transfer")), phases
    assert sum(phases.values()) <= duration <= waited
    assert sample(registry, "rollout_auth_callback_duration_seconds_sum") == duration


def test_slow_answer_lands_in_the_matching_latency_bucket(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    delay = 0.3
    with delayed_server(200, delay=delay) as server:
        assert callback_runner(callback_settings(server.url, timeout="2s"), metrics)() == (
            "success"
        )
    bucket = "rollout_auth_callback_duration_seconds_bucket"
    assert sample(registry, bucket, {"le": "0.25"}) == 0.0
    assert sample(registry, bucket, {"le": "+Inf"}) == 1.0
    assert sample(registry, "rollout_auth_callback_duration_seconds_sum") >= delay


def client_setup_seconds() -> float:
    """How long building an httpx client (and its TLS context) takes on this machine."""
    httpx.AsyncClient(trust_env=False)  # the first one also pays for imports
    started = time.perf_counter()
    httpx.AsyncClient(trust_env=False)
    return time.perf_counter() - started


def test_probe_duration_excludes_building_the_http_client() -> None:
    """Request sent to response read: the client and its CA bundle are built before the clock runs.

    On loopback a TCP connect takes well under a millisecond, building the client 10-30 ms; the
    best of three probes keeps a scheduling hiccup from deciding the result.
    """
    with answering_server(200) as server:
        probe = CallbackProbe(callback_settings(server.url))
        results = [probe.probe() for _ in range(3)]
    assert [r.outcome for r in results] == ["success"] * 3
    setup = client_setup_seconds()
    assert min(r.phases["connect"] for r in results) < setup / 2
    assert min(r.duration for r in results) < setup / 2
