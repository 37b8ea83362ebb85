"""deploy/kubernetes: the Kustomize base renders (kubectl kustomize), every object validates
offline against the Kubernetes API schemas (kubernetes-validate, strict) and prometheus-operator's
(tests/kubernetes/validate.mjs), and the sidecar is deployed as the issue asks (issue 12, item 3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kustomize import render, tool

from monitor.assets import EXAMPLE_RUNBOOK_URL, RULE_FILES, asset, prometheus_rule
from monitor.config.loading import OVERRIDABLE

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "kubernetes"
VALIDATOR = ROOT / "tests" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"  # native sidecars and every field used here are GA by then
PORT = 9838


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(BASE)


def one(rendered: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in rendered if doc["kind"] == kind]
    assert len(found) == 1, [doc["kind"] for doc in rendered]
    return found[0]


def sidecar(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "rollout-monitor")


def test_the_base_renders_every_object(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PodMonitor",
        "PrometheusRule",
    ]


def test_core_objects_validate_strictly_against_the_api_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    core = [doc for doc in rendered if "monitoring.coreos.com" not in doc["apiVersion"]]
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_wrong_field_fails_the_api_schema_validation(rendered: list[dict[str, Any]]) -> None:
    """The validation can fail: an unknown field in the container is caught."""
    broken = json.loads(json.dumps(one(rendered, "Deployment")))
    broken["spec"]["template"]["spec"]["containers"][1]["readOnlyRootFilesystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def crd_validation(objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    if not (VALIDATOR / "node_modules").is_dir():
        pytest.fail("tests/kubernetes/node_modules is missing: make test runs npm ci there")
    return subprocess.run(
        [tool("node"), str(VALIDATOR / "validate.mjs")],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        check=False,
        cwd=VALIDATOR,
    )


def test_operator_objects_validate_against_prometheus_operators_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    result = crd_validation(rendered)
    assert (result.returncode, result.stdout.splitlines()) == (
        0,
        ["PodMonitor/rollout-monitor: valid", "PrometheusRule/rollout-monitor: valid"],
    ), result.stderr


def test_a_wrong_rule_fails_the_operator_schema_validation(
    rendered: list[dict[str, Any]],
) -> None:
    broken = json.loads(json.dumps(one(rendered, "PrometheusRule")))
    broken["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    result = crd_validation([broken])
    assert result.returncode == 1
    assert "rules/0/for must match pattern" in result.stdout


def test_the_prometheus_rule_holds_exactly_the_rule_files(rendered: list[dict[str, Any]]) -> None:
    """The rule files' rules, every runbook link absolute under the example's --runbook-url."""
    groups = [g for name in RULE_FILES for g in yaml.safe_load(asset(name).read_text())["groups"]]
    for rule in (r for g in groups for r in g["rules"] if "annotations" in r):
        section = rule["annotations"]["runbook_url"].removeprefix("docs/runbook.md#")
        rule["annotations"]["runbook_url"] = f"{EXAMPLE_RUNBOOK_URL}#{section}"
    assert one(rendered, "PrometheusRule")["spec"]["groups"] == groups
    assert (BASE / "prometheusrule.yaml").read_text() == prometheus_rule(EXAMPLE_RUNBOOK_URL), (
        "deploy/kubernetes/prometheusrule.yaml is stale: `rollout-monitor assets DIR --force"
        f" --runbook-url {EXAMPLE_RUNBOOK_URL}`, then copy DIR/kubernetes/prometheusrule.yaml there"
    )


def test_the_sidecar_is_locked_down(rendered: list[dict[str, Any]]) -> None:
    container = sidecar(rendered)
    assert container["securityContext"] == {
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": PORT}]
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"memory"}  # no CPU limit: throttling shows as latency


def test_the_sidecar_reads_its_secret_config_and_state_as_the_image_expects(
    rendered: list[dict[str, Any]],
) -> None:
    container = sidecar(rendered)
    env = {e["name"]: e for e in container["env"]}
    assert set(env) <= {variable for _, variable in OVERRIDABLE.values()}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "rollout-monitor-db",
        "key": "url",
    }
    assert env["ROLLOUT_CALLBACK_URL"]["value"].startswith("http://127.0.0.1:3000/")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    password = Path(env["DATABASE_PASSWORD_FILE"]["value"])
    assert mounts[str(password.parent)]["name"] == "db-secret"
    volumes = {
        v["name"]: v for v in one(rendered, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["db-secret"]["secret"]["items"] == [{"key": "password", "path": password.name}]
    assert "emptyDir" in volumes[mounts["/var/lib/rollout-monitor"]["name"]]
    config_map = one(rendered, "ConfigMap")
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert Path(config["baseline"]["state_file"]).parent == Path("/var/lib/rollout-monitor")


def test_the_config_map_passes_check_config(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(one(rendered, "ConfigMap")["data"]["config.yaml"])
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", "--config", str(config)],
        env={**base, "DATABASE_URL": "postgresql://rollout_monitor@db.internal/app"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_only_prometheus_reaches_the_metrics_port(rendered: list[dict[str, Any]]) -> None:
    policy = one(rendered, "NetworkPolicy")["spec"]
    pods = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pods.items()
    to_metrics = [
        rule
        for rule in policy["ingress"]
        if {"port": "metrics", "protocol": "TCP"} in rule.get("ports", [])
    ]
    assert len(to_metrics) == 1
    sources = to_metrics[0]["from"]
    assert sources == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    # No other rule opens the metrics port (a rule without ports would open every port).
    others = [rule for rule in policy["ingress"] if rule is not to_metrics[0]]
    assert all(
        rule.get("ports") and {"port": "metrics", "protocol": "TCP"} not in rule["ports"]
        for rule in others
    )


def test_the_pod_monitor_scrapes_the_sidecars_port(rendered: list[dict[str, Any]]) -> None:
    monitor = one(rendered, "PodMonitor")["spec"]
    pods = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= pods.items()
    assert monitor["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
