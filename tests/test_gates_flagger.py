"""deploy/flagger: the Canary and MetricTemplate validate against a JSON Schema of exactly the
fields they use (tests/kubernetes/flagger.schema.json, from Flagger's CRDs: no registry serves
them), by check-jsonschema; the webhooks reach the gates as Flagger reads them; the metric's
query, asked of a real Prometheus holding the rollout_verdict gauge, fails a check only on a fail.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
from gate_documents import (
    AFTER,
    GAUGE_AT,
    GAUGE_CASES,
    PASSWORD,
    SCENARIOS,
    STATES,
    USER,
    gate_daemon,
    gauge_series,
)
from kustomize import render
from prometheus_blocks import LoadedPrometheus, openmetrics, serving

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "flagger"
SCHEMA = ROOT / "tests" / "kubernetes" / "flagger.schema.json"
KUBERNETES_VERSION = "1.33.0"


def tool(name: str) -> str:
    """A command from the test's virtualenv (check-jsonschema), else from PATH (kubectl)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (make test installs it)")
    return found


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(BASE)


def one(rendered: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in rendered if doc["kind"] == kind]
    assert len(found) == 1, [doc["kind"] for doc in rendered]
    return found[0]


def schema_validation(objects: list[dict[str, Any]], workdir: Path) -> tuple[int, str]:
    """check-jsonschema's exit status and report for the objects, against the Flagger schema."""
    files = []
    for index, document in enumerate(objects):
        path = workdir / f"{index}-{document['kind']}.json"
        path.write_text(json.dumps(document))
        files.append(str(path))
    result = subprocess.run(
        [tool("check-jsonschema"), "--schemafile", str(SCHEMA), *files],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_the_base_renders_every_object(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == ["Canary", "MetricTemplate", "NetworkPolicy", "Service"]


def test_the_flagger_objects_validate(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    flagger = [doc for doc in rendered if doc["apiVersion"] == "flagger.app/v1beta1"]
    assert len(flagger) == 2
    code, report = schema_validation(flagger, tmp_path)
    assert (code, report.strip()) == (0, "ok -- validation done")


BROKEN = [
    # (kind, path, value, what check-jsonschema reports)
    ("Canary", ["analysis", "webhooks", 0, "typ"], "rollback", "Additional properties"),
    ("Canary", ["analysis", "threshold"], "2", "'2' is not of type 'number'"),
    ("Canary", ["analysis", "webhooks", 1, "type"], "on-rollback", "is not one of"),
    ("Canary", ["analysis", "webhooks", 0, "timeout"], "30 seconds", "does not match"),
    ("MetricTemplate", ["provider", "type"], "prom", "is not one of"),
    ("MetricTemplate", ["query"], None, "'query' is a required property"),
]


@pytest.mark.parametrize("case", BROKEN, ids=lambda case: f"{case[0]}.{case[1][-1]}")
def test_a_wrong_field_or_type_fails_the_flagger_schema(
    rendered: list[dict[str, Any]], tmp_path: Path, case: tuple[str, list[Any], object, str]
) -> None:
    kind, path, value, message = case
    broken = copy.deepcopy(one(rendered, kind))
    place = broken["spec"]
    for key in path[:-1]:
        place = place[key]
    if value is None:
        del place[path[-1]]
    else:
        place[path[-1]] = value
    code, report = schema_validation([broken], tmp_path)
    assert code == 1
    assert message in report


def test_the_service_and_network_policy_validate_strictly(rendered: list[dict[str, Any]]) -> None:
    core = [doc for doc in rendered if doc["apiVersion"] in ("v1", "networking.k8s.io/v1")]
    assert len(core) == 2
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_webhooks_ask_the_gates_on_the_monitors_service(
    rendered: list[dict[str, Any]],
) -> None:
    """confirm-promotion waits for /gate/promote's 200 (a final pass); the rollback webhook rolls
    back on /gate/rollback's 2xx, which the monitor gives only on a fail."""
    webhooks = {w["type"]: w for w in one(rendered, "Canary")["spec"]["analysis"]["webhooks"]}
    service = one(rendered, "Service")
    port = service["spec"]["ports"][0]
    assert port["targetPort"] == "metrics"
    base = f"http://{service['metadata']['name']}:{port['port']}"
    assert webhooks["confirm-promotion"]["url"] == f"{base}/gate/promote?window=1h"
    assert webhooks["rollback"]["url"] == f"{base}/gate/rollback?window=1h"
    assert set(webhooks) == {"confirm-promotion", "rollback"}


def test_only_the_flagger_controller_is_let_in(rendered: list[dict[str, Any]]) -> None:
    (rule,) = one(rendered, "NetworkPolicy")["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flagger-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "flagger"}},
        }
    ]


@pytest.fixture(scope="module")
def gauges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    yield from serving(gauge_series(), tmp_path_factory.mktemp("gauges"))


def query_value(prometheus: LoadedPrometheus, query: str) -> list[float]:
    """The instant vector's values at GAUGE_AT."""
    params = {"query": query, "time": str(GAUGE_AT)}
    answer = httpx.get(f"{prometheus.url}/api/v1/query", params=params, timeout=10).json()
    assert answer["data"]["resultType"] == "vector"
    return [float(sample["value"][1]) for sample in answer["data"]["result"]]


@pytest.mark.parametrize(
    ("namespace", "fails"),
    [(job, job in ("one_fails", "both_fail")) for job in GAUGE_CASES] + [("absent", False)],
)
def test_the_metric_fails_a_check_only_on_a_fail(
    rendered: list[dict[str, Any]], gauges: LoadedPrometheus, namespace: str, fails: bool
) -> None:
    """Flagger fails a check when the value is outside thresholdRange, and when the query has no
    value: no series (absent) must read as 0, inconclusive, not as a failed check."""
    query = one(rendered, "MetricTemplate")["spec"]["query"]
    values = query_value(gauges, query.replace("{{ namespace }}", namespace))
    assert len(values) == 1
    (metric,) = one(rendered, "Canary")["spec"]["analysis"]["metrics"]
    assert metric["templateRef"]["name"] == one(rendered, "MetricTemplate")["metadata"]["name"]
    assert (values[0] > metric["thresholdRange"]["max"]) is fails
    if namespace == "absent":
        assert values == [0.0]


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    """A real Prometheus holding a healthy and a broken rollout (tests/gate_documents.py)."""
    yield from serving(openmetrics(SCENARIOS), tmp_path_factory.mktemp("rollouts"))


def flagger_acts(url: str) -> bool:
    """Whether Flagger acts on the webhook: it POSTs a JSON payload and reads only the status,
    200-202 meaning go (promote, or roll back). Credentials ride in the URL (httpx, like Go's
    client, sends them as basic auth)."""
    payload = {"name": "threads-app", "namespace": "app", "phase": "Progressing", "metadata": {}}
    response = httpx.post(url, json=payload, timeout=30)
    assert response.status_code in (200, 409), response.text
    return 200 <= response.status_code <= 202


@pytest.mark.parametrize(
    "case",
    [
        ("pass", True, False),
        ("fail", False, True),
        ("inconclusive", False, False),
        ("unavailable", False, False),
    ],
    ids=lambda case: case[0],
)
def test_flagger_promotes_only_on_a_pass_and_rolls_back_only_on_a_fail(
    rendered: list[dict[str, Any]],
    rollouts: LoadedPrometheus,
    tmp_path: Path,
    case: tuple[str, bool, bool],
) -> None:
    """The Canary's own webhook URLs, pointed at the daemon's gates deciding from Prometheus."""
    state, promotes, rolls_back = case
    job, now = STATES.get(state, ("healthy", AFTER))
    prometheus = None if state == "unavailable" else rollouts.url
    webhooks = {
        w["type"]: w["url"] for w in one(rendered, "Canary")["spec"]["analysis"]["webhooks"]
    }
    with gate_daemon(prometheus, job, now, tmp_path) as daemon:
        host = daemon.url.removeprefix("http://")
        at = {
            kind: url.replace("rollout-monitor:9838", f"{USER}:{PASSWORD}@{host}")
            for kind, url in webhooks.items()
        }
        assert flagger_acts(at["confirm-promotion"]) is promotes
        assert flagger_acts(at["rollback"]) is rolls_back
