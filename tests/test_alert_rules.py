"""The rules in alerts/: valid for promtool, unit-tested, documented, and built on real series.

promtool and amtool are the real binaries; the test command installs them, so a missing one is a
failure, never a skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from promql import ALERTS_DIR, PROMETHEUS_SERIES, ROOT, metric_names, recorded_names, rule_files
from promql import rules as all_rules

RUNBOOK = ROOT / "monitor/assets/docs/runbook.md"
UNIT_TESTS = sorted((ROOT / "tests" / "rules").glob("*.test.yml"))
ALERTMANAGER_EXAMPLE = ALERTS_DIR / "alertmanager.example.yml"
SEVERITIES = {"page", "ticket"}
TIMEOUT_SECONDS = 120
# The PromQL inside annotation templates: `query "..."` and `printf "..." ... | query`.
_TEMPLATE_QUERY = re.compile(r'(?:query|printf)\s+"((?:[^"\\]|\\.)*)"')


def binary(name: str) -> str:
    """The real binary; the test command installs it, so its absence is a failure."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/install-system-deps installs it)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root, time-boxed, capturing its output."""
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


def alerts() -> list[dict[str, Any]]:
    """Every alerting rule in alerts/."""
    return [rule for rule in all_rules() if "alert" in rule]


def alert_names() -> set[str]:
    """The names of every alerting rule."""
    return {rule["alert"] for rule in alerts()}


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, - for spaces."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    """The anchors of the runbook's headings (outside code blocks), numbered when repeated."""
    anchors: set[str] = set()
    in_code = False
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6}\s+(.*)", line)):
            anchor = github_anchor(heading.group(1))
            count = 0
            while (numbered := anchor if count == 0 else f"{anchor}-{count}") in anchors:
                count += 1
            anchors.add(numbered)
    return anchors


def unit_test_cases() -> list[tuple[str, bool]]:
    """(alertname, expects it to fire) for every alert_rule_test in tests/rules/."""
    cases: list[tuple[str, bool]] = []
    for path in UNIT_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test") or []:
                cases.append((case["alertname"], bool(case.get("exp_alerts"))))
    return cases


def rule_expressions() -> list[str]:
    """Every rule's expression, and every query inside an alert's annotations."""
    exprs = [rule["expr"] for rule in all_rules()]
    for rule in alerts():
        for template in rule.get("annotations", {}).values():
            exprs += [q.replace('\\"', '"') for q in _TEMPLATE_QUERY.findall(template)]
    return exprs


def test_rule_files_pass_promtool_check_without_warnings() -> None:
    files = [str(path.relative_to(ROOT)) for path in rule_files()]
    assert files, "no *.rules.yml in alerts/"
    result = run(binary("promtool"), "check", "rules", "--lint=all", "--lint-fatal", *files)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert output.count("SUCCESS") == len(files), output


def test_rule_unit_tests_pass() -> None:
    """promtool test rules runs every case in tests/rules/ against the real rule files."""
    assert UNIT_TESTS, "no *.test.yml in tests/rules/"
    result = run(
        binary("promtool"), "test", "rules", *(str(p.relative_to(ROOT)) for p in UNIT_TESTS)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


def test_alertmanager_example_passes_amtool() -> None:
    result = run(binary("amtool"), "check-config", str(ALERTMANAGER_EXAMPLE.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_alertmanager_example_inhibits_only_alerts_that_exist() -> None:
    """A renamed alert would silently escape its inhibition: every name matched must exist."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())
    matchers = [
        matcher
        for rule in config["inhibit_rules"]
        for matcher in rule["source_matchers"] + rule["target_matchers"]
    ]
    named = {
        name
        for matcher in matchers
        if (found := re.fullmatch(r'alertname\s*=~?\s*"?([^"]*)"?', matcher))
        for name in found.group(1).split("|")
    }
    assert "RolloutPostgresDown" in named
    assert named <= alert_names()


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_summary_description_and_runbook_section(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    path, _, anchor = annotations["runbook_url"].partition("#")
    assert path == "docs/runbook.md"
    assert anchor in runbook_anchors(), f"no heading with anchor #{anchor} in {RUNBOOK}"


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    cases = unit_test_cases()
    firing = {name for name, fires in cases if fires}
    silent = {name for name, fires in cases if not fires}
    names = alert_names()
    assert names - firing == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"
    assert {name for name, _ in cases} <= names, "unit tests of alerts that do not exist"


def test_rules_use_only_exported_recorded_and_prometheus_series(exported_names: set[str]) -> None:
    """Every name in an expression or annotation query is exported, recorded, or Prometheus's."""
    known = exported_names | recorded_names() | PROMETHEUS_SERIES
    used = set().union(*(metric_names(expr) for expr in rule_expressions()))
    assert "rollout_postgres_up" in used
    assert used - known == set()


def test_the_runbook_links_the_plans_rollback_procedure() -> None:
    assert "(deployment-plan.md#rollback-procedures)" in RUNBOOK.read_text()
    assert "rollback" in runbook_anchors()
