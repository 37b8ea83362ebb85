"""deploy/argo-rollouts: the AnalysisTemplates validate against Argo Rollouts' schemas, and their
conditions, evaluated by expr as the controller evaluates them (tests/argo_analysis/measure.go),
turn the monitor's real answers into the measurement each should be: /verdict's documents for
the web template, the rollout_verdict gauge in a real Prometheus for the Prometheus one.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from argo_measure import build_measure, measure
from gate_documents import (
    AFTER,
    GAUGE_AT,
    PASSWORD,
    SCENARIOS,
    STATES,
    USER,
    gate_daemon,
    gauge_series,
)
from kustomize import render, tool
from prometheus_blocks import LoadedPrometheus, openmetrics, serving

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "argo-rollouts"
VALIDATOR = ROOT / "tests" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(BASE)


def template(rendered: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(doc for doc in rendered if doc["metadata"]["name"] == name)


def metric(rendered: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The template's one metric."""
    metrics = template(rendered, name)["spec"]["metrics"]
    assert len(metrics) == 1
    found: dict[str, Any] = metrics[0]
    return found


@pytest.fixture(scope="module")
def measure_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_measure(tmp_path_factory.mktemp("measure"))


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    """A real Prometheus holding a healthy and a broken rollout (tests/gate_documents.py)."""
    yield from serving(openmetrics(SCENARIOS), tmp_path_factory.mktemp("rollouts"))


@pytest.fixture(scope="module")
def gauges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    yield from serving(gauge_series(), tmp_path_factory.mktemp("gauges"))


def crd_validation(objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    if not (VALIDATOR / "node_modules").is_dir():
        pytest.fail("tests/kubernetes/node_modules is missing: make test runs npm ci there")
    return subprocess.run(
        [tool("node"), str(VALIDATOR / "validate.mjs")],
        input=json.dumps(objects), capture_output=True, text=True, check=False, cwd=VALIDATOR,
    )  # fmt: skip


def test_the_templates_validate_against_argo_rollouts_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    result = crd_validation(rendered)
    assert (result.returncode, result.stdout.splitlines()) == (
        0,
        [
            "AnalysisTemplate/rollout-monitor-verdict: valid",
            "AnalysisTemplate/rollout-monitor-verdict-prometheus: valid",
        ],
    ), result.stderr


BROKEN = [
    (
        "rollout-monitor-verdict",
        ["provider", "web", "timeoutSeconds"],
        "30",
        "/provider/web/timeoutSeconds must be integer",
    ),
    (
        "rollout-monitor-verdict",
        ["provider", "web", "headers"],
        [{"key": "Authorization"}],
        "/provider/web/headers/0 must have required property value",
    ),
    (
        "rollout-monitor-verdict-prometheus",
        ["successCondition"],
        True,
        "/successCondition must be string",
    ),
]


@pytest.mark.parametrize(("name", "path", "value", "message"), BROKEN)
def test_a_wrong_field_fails_the_argo_rollouts_schema_validation(
    rendered: list[dict[str, Any]], name: str, path: list[str], value: object, message: str
) -> None:
    broken = copy.deepcopy(template(rendered, name))
    place = broken["spec"]["metrics"][0]
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = value
    result = crd_validation([broken])
    assert result.returncode == 1
    assert f"{name}: data/spec/metrics/0{message}" in result.stdout


def test_the_service_and_network_policy_validate_strictly(rendered: list[dict[str, Any]]) -> None:
    core = [doc for doc in rendered if doc["apiVersion"] in ("v1", "networking.k8s.io/v1")]
    assert sorted(doc["kind"] for doc in core) == ["NetworkPolicy", "Service"]
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_limits_let_the_hour_finish_and_stop_at_the_first_decision(
    rendered: list[dict[str, Any]],
) -> None:
    """18 looks 5 minutes apart span 85 minutes: the 1h window ends inside them; the first pass
    or fail decides; 17 inconclusive looks are allowed, the 18th makes the run Inconclusive; 3
    errors in a row (503, unreachable) end it in Error."""
    for name in ("rollout-monitor-verdict", "rollout-monitor-verdict-prometheus"):
        found = metric(rendered, name)
        assert (found["interval"], found["count"]) == ("5m", 18)
        assert (found["count"] - 1) * 5 >= 60 + 15  # the hour, and a quarter for the last scrape
        assert found["consecutiveSuccessLimit"] == 1
        assert found["failureLimit"] == 0
        assert found["inconclusiveLimit"] == found["count"] - 1
        assert found["consecutiveErrorLimit"] == 2


def web_request(rendered: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """The web metric as the controller would run it, its arguments resolved."""
    found = metric(rendered, "rollout-monitor-verdict")
    web = found["provider"]["web"]
    args = {a["name"]: a for a in template(rendered, "rollout-monitor-verdict")["spec"]["args"]}
    assert args["authorization"]["valueFrom"]["secretKeyRef"] == {
        "name": "rollout-monitor-gate",
        "key": "authorization",
    }
    resolved = {"monitor-url": url, "authorization": AUTHORIZATION}
    headers = {h["key"]: resolve(h["value"], resolved) for h in web["headers"]}
    return {
        "provider": "web",
        "url": resolve(web["url"], resolved),
        "headers": headers,
        "jsonPath": web["jsonPath"],
        "successCondition": found["successCondition"],
        "failureCondition": found["failureCondition"],
    }


def resolve(text: str, args: dict[str, str]) -> str:
    """Argo's {{args.NAME}} substitution."""
    for name, value in args.items():
        text = text.replace(f"{{{{args.{name}}}}}", value)
    assert "{{" not in text, text
    return text


@pytest.mark.parametrize(
    "case",
    [
        ("pass", "Successful"),
        ("fail", "Failed"),
        ("inconclusive", "Inconclusive"),
        ("unavailable", "Error"),
    ],
    ids=lambda case: case[0],
)
def test_the_web_template_measures_each_verdict_of_the_daemon(
    rendered: list[dict[str, Any]],
    measure_binary: Path,
    rollouts: LoadedPrometheus,
    tmp_path: Path,
    case: tuple[str, str],
) -> None:
    """The daemon's /verdict, decided from Prometheus: pass, fail, inconclusive while the hour
    runs, and 503 when Prometheus cannot be asked, which the web provider takes as an Error."""
    state, phase = case
    job, now = STATES.get(state, ("healthy", AFTER))
    prometheus = None if state == "unavailable" else rollouts.url
    with gate_daemon(prometheus, job, now, tmp_path) as daemon:
        result = measure(measure_binary, web_request(rendered, daemon.url))
    assert result["phase"] == phase, result
    if phase == "Error":
        assert result["error"] == "received non 2xx response code: 503"
    else:
        assert result["value"] == state


def test_wrong_credentials_are_an_error_measurement(
    rendered: list[dict[str, Any]], measure_binary: Path, rollouts: LoadedPrometheus, tmp_path: Path
) -> None:
    with gate_daemon(rollouts.url, "healthy", AFTER, tmp_path) as daemon:
        request = web_request(rendered, daemon.url)
        request["headers"]["Authorization"] = "Basic " + base64.b64encode(b"gate:wrong").decode()
        result = measure(measure_binary, request)
    assert (result["phase"], result["error"]) == ("Error", "received non 2xx response code: 401")


def prometheus_request(
    rendered: list[dict[str, Any]], address: str, job: str, query: str | None = None
) -> dict[str, Any]:
    """The Prometheus metric as the controller would run it, for one case's series."""
    found = metric(rendered, "rollout-monitor-verdict-prometheus")
    provider = found["provider"]["prometheus"]
    spec = template(rendered, "rollout-monitor-verdict-prometheus")["spec"]
    args = {a["name"]: a["value"] for a in spec["args"]}
    assert args["selector"] == 'container="rollout-monitor"'
    resolved = {"selector": f'{args["selector"]}, job="{job}"', "prometheus-address": address}
    return {
        "provider": "prometheus",
        "address": resolve(provider["address"], resolved),
        "query": resolve(query or provider["query"], resolved),
        "time": str(GAUGE_AT),
        "successCondition": found["successCondition"],
        "failureCondition": found["failureCondition"],
    }


@pytest.mark.parametrize(
    "case",
    [
        ("all_pass", [1.0], "Successful"),
        ("one_fails", [2.0], "Failed"),
        ("both_fail", [2.0], "Failed"),
        ("split", [0.0], "Inconclusive"),
        ("undecided", [0.0], "Inconclusive"),
        ("absent", [], "Inconclusive"),
    ],
    ids=lambda case: case[0],
)
def test_the_prometheus_template_measures_the_gauge(
    rendered: list[dict[str, Any]],
    measure_binary: Path,
    gauges: LoadedPrometheus,
    case: tuple[str, list[float], str],
) -> None:
    """Every replica passing is a pass, any replica failing a fail (the 24h series, which say
    otherwise, are not read), and no series at all neither."""
    job, value, phase = case
    result = measure(measure_binary, prometheus_request(rendered, gauges.url, job))
    assert (result["value"], result["phase"]) == (value, phase), result


def test_an_unguarded_condition_errors_on_an_empty_vector(
    rendered: list[dict[str, Any]], measure_binary: Path, gauges: LoadedPrometheus
) -> None:
    """What argo-rollouts#1466 hit, reproduced: without `len(result) > 0` an empty vector is an
    Error measurement (errors in a row abort the rollout); the shipped guard is what avoids it."""
    request = prometheus_request(rendered, gauges.url, "absent")
    request["successCondition"] = request["successCondition"].removeprefix("len(result) > 0 && ")
    assert request["successCondition"] == "result[0] == 1"
    result = measure(measure_binary, request)
    assert result["phase"] == "Error"
    assert "successCondition" in result["error"]
