"""The Grafana dashboard: importable, laid out, and querying only series that exist.

Every query is also run through a real Prometheus's query API: a PromQL syntax error, an unknown
function or a bad duration is a 400 there.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_queries import all_panels, concrete, dashboard_queries
from promql import PROMETHEUS_SERIES, ROOT, metric_names, recorded_names

from monitor.demo.postgres import free_port

DASHBOARD_PATH = ROOT / "monitor" / "assets" / "dashboards" / "rollout-overview.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24
# The deployment plan's six success criteria, as `rollout:success_criterion:ok{criterion}`.
CRITERIA = {
    "migration_completed",
    "users_can_authenticate",
    "new_fields_populated",
    "token_validity_tracking",
    "latency_within_10pct",
    "error_rate_within_baseline",
}
# Series without the target labels: a recorded constant. (ALERTS is filtered too: `=~".*"` also
# matches the label-less absent() alert, so "All" still counts it.)
UNFILTERED = frozenset({"rollout:auth_callback_success:objective_ratio"})
# `by (...)` and `without (...)` clauses of aggregations.
_GROUPING = re.compile(r"\b(by|without)\s*\(([^)]*)\)")
TARGET_FILTER = ('job=~"$job"', 'instance=~"$instance"')
PROMETHEUS_START_SECONDS = 30.0


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana imports it."""
    loaded: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
    return loaded


@pytest.fixture(scope="module")
def prometheus() -> Iterator[httpx.Client]:
    """A real, empty Prometheus on 127.0.0.1, and a client for its HTTP API."""
    with tempfile.TemporaryDirectory(prefix="dashboard-prometheus-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text("scrape_configs: []\n")
        address = f"127.0.0.1:{free_port()}"
        log = (Path(tmp) / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={Path(tmp) / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with httpx.Client(base_url=f"http://{address}", timeout=5.0, trust_env=False) as client:
                wait_ready(client, process, Path(tmp) / "prometheus.log")
                yield client
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            log.close()


def wait_ready(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once Prometheus answers /-/ready; fail with its log if it exits or never does."""
    deadline = time.monotonic() + PROMETHEUS_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            if client.get("/-/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"prometheus not ready after {PROMETHEUS_START_SECONDS}s:\n{log.read_text()}")


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that runs queries (rows only group them)."""
    return [panel for panel in all_panels(dashboard) if panel["type"] != "row"]


def selected_names(query: str) -> set[str]:
    """The metric names a dashboard query refers to."""
    return metric_names(query)


def test_dashboard_is_importable_with_a_fixed_uid_and_no_id(dashboard: dict[str, Any]) -> None:
    assert "id" not in dashboard
    assert dashboard["uid"] == "rollout-overview"
    assert dashboard["title"]
    assert dashboard["schemaVersion"] == 39
    assert dashboard["time"] == {"from": "now-6h", "to": "now"}
    assert dashboard["refresh"] == "30s"


def test_dashboard_file_is_pretty_printed_with_two_spaces(dashboard: dict[str, Any]) -> None:
    """Reviewable diffs: the committed file is exactly what json.dumps(indent=2) writes."""
    expected = json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"
    assert DASHBOARD_PATH.read_text() == expected


def test_datasource_is_a_prometheus_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_job_and_instance_variables_list_the_monitors_with_all(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["job"]["definition"] == "label_values(rollout_postgres_up, job)"
    assert (
        variables["instance"]["definition"]
        == 'label_values(rollout_postgres_up{job=~"$job"}, instance)'
    )
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == DATASOURCE
        assert variables[name]["includeAll"] is True
        assert variables[name]["allValue"] == ".*", "All must also match series without the label"


def test_every_panel_and_target_queries_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in query_panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_every_panel_says_what_it_shows_and_what_bad_looks_like(dashboard: dict[str, Any]) -> None:
    for panel in query_panels(dashboard):
        assert len(panel.get("description", "")) > 40, panel["title"]


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in all_panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_ref_ids_are_unique_within_each_panel(dashboard: dict[str, Any]) -> None:
    for panel in query_panels(dashboard):
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0, panel["title"]
        assert grid["h"] > 0, panel["title"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_six_success_criteria_are_pass_fail_stat_panels(dashboard: dict[str, Any]) -> None:
    found: set[str] = set()
    for panel in query_panels(dashboard):
        exprs = [target["expr"] for target in panel["targets"]]
        if not any("rollout:success_criterion:ok" in expr for expr in exprs):
            continue
        (expr,) = exprs
        found |= set(re.findall(r'criterion="([^"]+)"', expr))
        assert panel["type"] == "stat", panel["title"]
        defaults = panel["fieldConfig"]["defaults"]
        (mapping,) = defaults["mappings"]
        assert mapping["options"]["1"]["text"] == "PASS"
        assert mapping["options"]["1"]["color"] == "green"
        assert mapping["options"]["0"]["text"] == "FAIL"
        assert mapping["options"]["0"]["color"] == "red"
        assert defaults["noValue"] == "NO DATA"
    assert found == CRITERIA


def test_the_daemons_own_verdict_is_six_stat_panels_with_inconclusive(
    dashboard: dict[str, Any],
) -> None:
    """rollout_success_criterion is absent while inconclusive: each panel maps pass to 2, an
    inconclusive instance to 1 and fail to 0, so that min() over instances shows the worst."""
    found: set[str] = set()
    for panel in query_panels(dashboard):
        (target, *others) = panel["targets"]
        if "rollout_success_criterion{" not in target["expr"]:
            continue
        assert not others, panel["title"]
        (criterion,) = set(re.findall(r'criterion="([^"]+)"', target["expr"]))
        found.add(criterion)
        assert metric_names(target["expr"]) == {
            "rollout_success_criterion",
            "rollout_success_criterion_inconclusive",
        }
        (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
        texts = {value: option["text"] for value, option in mapping["options"].items()}
        assert texts == {"0": "FAIL", "1": "INCONCLUSIVE", "2": "PASS"}, panel["title"]
        assert panel["type"] == "stat"
    assert found == CRITERIA


def test_the_daemons_verdict_panel_shows_the_worst_instance(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    """Evaluated by promtool: fail over inconclusive over pass, and inconclusive (not empty)
    when no instance has decided."""
    (expr,) = [
        concrete(t["expr"])
        for p in query_panels(dashboard)
        for t in p["targets"]
        if 'rollout_success_criterion{criterion="latency_within_10pct"' in t["expr"]
    ]
    decided = {"a": "1", "b": None, "c": "0", "d": None, "e": "1"}  # None: inconclusive
    series = [
        f"""      - series: 'rollout_success_criterion{{criterion="latency_within_10pct",job="{job}",instance="{job}"}}'
        values: '{value}'"""
        for job, value in decided.items()
        if value is not None
    ] + [
        f"""      - series: 'rollout_success_criterion_inconclusive{{criterion="latency_within_10pct",job="{job}",instance="{job}"}}'
        values: '{int(value is None)}'"""
        for job, value in decided.items()
    ]
    # a alone: pass; a and b: inconclusive; a, b and c: fail; d alone: inconclusive.
    cases = {"a": 2, "a|b": 1, "a|b|c": 0, "d": 1, "a|e": 2}
    tests = "\n".join(
        f"""      - expr: '{expr.replace('job=~".*"', f'job=~"{jobs}"').replace("'", "''")}'
        eval_time: 0m
        exp_samples:
          - labels: '{{}}'
            value: {value}"""
        for jobs, value in cases.items()
    )
    unit = tmp_path / "panel.test.yml"
    unit.write_text(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
        f"    input_series:\n{chr(10).join(series)}\n    promql_expr_test:\n{tests}\n"
    )
    result = subprocess.run(
        ["promtool", "test", "rules", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_migration_time_is_an_annotation(dashboard: dict[str, Any]) -> None:
    annotations = dashboard["annotations"]["list"]
    assert any(a.get("builtIn") == 1 for a in annotations)
    (migration,) = [a for a in annotations if "expr" in a]
    assert migration["datasource"] == DATASOURCE
    assert migration["enable"] is True
    assert metric_names(migration["expr"]) == {"rollout_migration_applied_timestamp_seconds"}
    # Grafana reads the value as the event's time in milliseconds.
    assert migration["useValueForTime"] is True
    assert migration["expr"].endswith("* 1000")


def test_queries_select_the_chosen_job_and_instance(dashboard: dict[str, Any]) -> None:
    exprs = [t["expr"] for p in query_panels(dashboard) for t in p["targets"]]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    for expr in exprs:
        for name in metric_names(expr) - UNFILTERED:
            selectors = re.findall(rf"(?<![\w:]){re.escape(name)}(?![\w:])(\{{[^}}]*\}})?", expr)
            for matchers in selectors:
                assert all(m in matchers for m in TARGET_FILTER), f"{name} in {expr!r}"


def test_aggregations_keep_instances_apart(dashboard: dict[str, Any]) -> None:
    """A `by` grouping keeps `instance` (and `without` never drops it): a value in a legend
    must say which database it comes from. Plain min/count/sum over everything are summaries."""
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            for kind, labels in _GROUPING.findall(target["expr"]):
                names = {label.strip() for label in labels.split(",")}
                if kind == "by":
                    assert "instance" in names, f"{panel['title']}: {target['expr']!r}"
                    assert "{{instance}}" in target["legendFormat"], panel["title"]
                else:
                    assert "instance" not in names, f"{panel['title']}: {target['expr']!r}"


def test_time_since_a_timestamp_is_not_counted_from_1970(dashboard: dict[str, Any]) -> None:
    """A check that never succeeded exports 0: `time() - 0` would read as 56 years. The
    subtraction is kept for positive timestamps, and 0 is shown as "never succeeded"."""
    name = "rollout_check_last_success_timestamp_seconds"
    found = False
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            if name not in expr:
                continue
            found = True
            selector = rf"{name}\{{[^}}]*\}}"
            assert re.search(rf"and\s+{selector}\s*>\s*0\b", expr), expr
            assert re.search(rf"\(\s*{selector}\s*==\s*0\s*\)\s*-\s*1", expr), expr
            mappings = panel["fieldConfig"]["defaults"]["mappings"]
            texts = [m["options"]["-1"]["text"] for m in mappings if "-1" in m["options"]]
            assert texts == ["never succeeded"], panel["title"]
    assert found


def test_queries_use_only_exported_or_recorded_series(
    dashboard: dict[str, Any], exported_names: set[str]
) -> None:
    """Names the daemon exports, the rules in alerts/ record, or Prometheus makes itself."""
    known = exported_names | recorded_names() | PROMETHEUS_SERIES
    unknown = {
        name: query
        for query in dashboard_queries(dashboard)
        for name in selected_names(query)
        if name not in known
    }
    assert unknown == {}


def test_dashboard_queries_include_variables_and_annotations(dashboard: dict[str, Any]) -> None:
    queries = dashboard_queries(dashboard)
    assert "rollout_postgres_up" in queries
    assert 'rollout_postgres_up{job=~"$job"}' in queries
    assert any("rollout_migration_applied_timestamp_seconds" in q for q in queries)
    assert len(queries) == 1 + 2 + sum(len(p["targets"]) for p in query_panels(dashboard))


def test_concrete_replaces_template_and_interval_variables() -> None:
    expr = 'rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval]) / $__range_s'
    assert concrete(expr) == 'rate(x{job=~".*", instance=~".*"}[1m]) / 21600'


def test_concrete_rejects_an_unknown_builtin_variable() -> None:
    with pytest.raises(ValueError, match=r"\$__unknown"):
        concrete("rate(x[$__unknown])")


def test_every_query_is_valid_promql_for_prometheus(
    dashboard: dict[str, Any], prometheus: httpx.Client
) -> None:
    for query in dashboard_queries(dashboard):
        response = prometheus.get("/api/v1/query", params={"query": concrete(query)})
        assert response.status_code == 200, f"{query!r}: {response.text}"
        assert response.json()["status"] == "success"


def test_prometheus_rejects_invalid_promql(prometheus: httpx.Client) -> None:
    """The check above can fail: a syntax error is a 400."""
    response = prometheus.get("/api/v1/query", params={"query": "sum(rate(x[1m])"})
    assert response.status_code == 400
