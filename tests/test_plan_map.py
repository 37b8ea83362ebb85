"""docs/plan-map.md names real things: every metric is exported, every alert is a rule, every
runbook anchor a section, every test a test and every file a file (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.config.names import BUILTIN_FAMILIES, family_of

ROOT = Path(__file__).resolve().parent.parent
MAP = (ROOT / "docs" / "plan-map.md").read_text()


def test_every_metric_is_one_the_monitor_exports() -> None:
    named = set(re.findall(r"`(rollout_[a-z_]+)", MAP))
    assert len(named) > 20
    unknown = [
        m for m in sorted(named) if family_of(m.removesuffix("_total")) not in BUILTIN_FAMILIES
    ]
    assert unknown == []


def test_every_alert_is_a_rule_and_every_runbook_link_a_section() -> None:
    rules = (ROOT / "monitor/assets/alerts/alerting.rules.yml").read_text()
    alerts = set(re.findall(r"`(Rollout[A-Za-z]+)", MAP))
    assert alerts
    assert [a for a in sorted(alerts) if f"alert: {a}\n" not in rules] == []
    runbook = (ROOT / "monitor/assets/docs/runbook.md").read_text()
    sections = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    anchors = set(re.findall(r"runbook\.md#([a-z]+)", MAP))
    assert anchors
    assert sorted(anchors - sections) == []


def test_every_test_and_file_exists() -> None:
    named = re.findall(r"(test_[a-z_]+\.py)::(test_[a-z_0-9]+)", MAP)
    for file, tests in re.findall(r"`(test_[a-z_]+\.py)`: ([^|]+)\|", MAP):
        named += [(file, t) for t in re.findall(r"`(test_[a-z_0-9]+)`", tests)]
    assert len(named) > 20
    missing = [(f, t) for f, t in named if f"def {t}(" not in (ROOT / "tests" / f).read_text()]
    assert missing == []
    files = re.findall(r"`((?:[a-z]+)/[a-z_/0-9]*\.(?:py|sql|yml))`", MAP)
    assert files
    in_package = [f for f in files if not f.startswith("tests/")]
    assert [f for f in in_package if not (ROOT / "monitor" / f).exists()] == []
    assert [f for f in files if f.startswith("tests/") and not (ROOT / f).exists()] == []
