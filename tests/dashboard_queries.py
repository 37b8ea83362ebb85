"""The PromQL a Grafana dashboard runs, and the same made runnable against a plain Prometheus.

``dashboard_queries`` collects every expression: panel targets (panels nested in collapsed rows
too), annotation queries, and query variables with Grafana's ``label_values(selector, label)`` and
``query_result(expr)`` unwrapped to the PromQL inside. ``concrete`` replaces Grafana's variables
so that Prometheus itself can run the result: template variables (``$job``, ``${instance}``) become
``.*`` (the dashboard only uses them in ``=~`` matchers, where that means "All"), and the built-in
interval variables become fixed durations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

# What Grafana's built-in variables stand for when a query runs outside Grafana. The rate interval
# covers several scrapes at any interval up to 15s, so rate() has the two samples it needs.
BUILTIN_VALUES: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__rate_interval_ms": "60000",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "6h",
    "__range_s": "21600",
    "__range_ms": "21600000",
}
ALL_VALUE = ".*"

_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?P<selector>.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$", re.DOTALL
)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.+)\)\s*$", re.DOTALL)
# Variable queries that list names rather than run PromQL: nothing to check or run.
_NO_PROMQL = re.compile(
    r"^\s*(?:label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)|label_names\(.*\)|metrics\(.*\))\s*$",
    re.DOTALL,
)
_VARIABLE = re.compile(
    r"\$\{(?P<braced>[a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}"
    r"|\[\[(?P<old>[a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\]\]"
    r"|\$(?P<bare>[a-zA-Z_][a-zA-Z0-9_]*)"
)


def all_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels a collapsed row holds."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variable_query(variable: Mapping[str, Any]) -> str | None:
    """The PromQL a query variable runs, or None when it only lists label or metric names."""
    query = variable.get("query", "")
    text: str = query.get("query", "") if isinstance(query, Mapping) else query
    if _NO_PROMQL.match(text):
        return None
    for pattern in (_LABEL_VALUES, _QUERY_RESULT):
        found = pattern.match(text)
        if found:
            return found.group(found.lastgroup or 0).strip()
    raise ValueError(
        f"variable {variable.get('name')!r}: not a Prometheus variable query: {text!r}"
    )


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[str]:
    """Every PromQL expression in panels, annotations and query variables, in that order."""
    queries = [
        target["expr"]
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    queries += [
        annotation["expr"]
        for annotation in dashboard.get("annotations", {}).get("list", [])
        if annotation.get("expr")
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable_query(variable)
            if query is not None:
                queries.append(query)
    return queries


def concrete(expr: str, builtins: Mapping[str, str] = BUILTIN_VALUES) -> str:
    """The expression with Grafana's variables replaced, ready for Prometheus's query API."""

    def value(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("old") or match.group("bare")
        if name.startswith("__"):
            if name not in builtins:
                raise ValueError(f"no value for Grafana's built-in variable ${name} in {expr!r}")
            return builtins[name]
        return ALL_VALUE

    return _VARIABLE.sub(value, expr)
