"""What PromQL in the shipped rules and dashboard may refer to, and the metric names an expression uses.

``metric_names`` is a small lexer, not a parser: it drops strings, label matchers, range and
offset durations, grouping clauses and function calls, and returns the identifiers left, which in
PromQL can only be metric names (or keywords, which it removes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS_DIR = ROOT / "monitor" / "assets" / "alerts"

# Series Prometheus itself makes from the shipped rules and from every scrape.
PROMETHEUS_SERIES = frozenset({"ALERTS", "ALERTS_FOR_STATE", "up"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+", re.IGNORECASE)
_FUNCTION = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(")
_IDENTIFIER = re.compile(r"(?<![0-9.a-zA-Z_:$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left"}
    | {"group_right", "offset", "inf", "nan", "atan2"}
)
_GRAFANA_VARIABLE = re.compile(r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*(?::[a-z]+)?\}?")


def metric_names(expr: str) -> set[str]:
    """The metric (or recorded series) names an expression selects."""
    text = _GRAFANA_VARIABLE.sub("1", expr)
    for pattern in (_STRING, _MATCHERS, _RANGE, _GROUPING, _OFFSET, _FUNCTION):
        text = pattern.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS} - {"e"}


def rule_files() -> list[Path]:
    """The shipped rule files (not the Alertmanager example)."""
    return sorted(ALERTS_DIR.glob("*.rules.yml"))


def rules() -> list[dict[str, Any]]:
    """Every rule of every group of every rule file."""
    found: list[dict[str, Any]] = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += group["rules"]
    return found


def recorded_names() -> set[str]:
    """The series the recording rules in alerts/ produce."""
    return {rule["record"] for rule in rules() if "record" in rule}


def exposed_names(exposition: str) -> set[str]:
    """The sample names in a Prometheus text exposition (with _bucket, _total and so on)."""
    names = set()
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names
