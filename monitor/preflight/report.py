"""The pre-flight results as a table for people and as stable JSON for pipelines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from monitor.preflight.result import CheckResult

SCHEMA_VERSION = 1
EXIT_PASS = 0
EXIT_FAIL = 1


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 when every check passed, 1 otherwise."""
    return EXIT_PASS if all(r.passed for r in results) else EXIT_FAIL


def table(results: Sequence[CheckResult]) -> str:
    """Aligned columns check / result / detail, then a one-line summary."""
    width = max(len("CHECK"), *(len(r.check) for r in results))
    rows = [f"{'CHECK':<{width}}  RESULT  DETAIL"]
    rows += [f"{r.check:<{width}}  {r.result:<6}  {r.detail}" for r in results]
    failures = [r.check for r in results if not r.passed]
    summary = (
        f"preflight: fail ({len(failures)} of {len(results)} checks failed: {', '.join(failures)})"
        if failures
        else f"preflight: pass (all {len(results)} checks passed)"
    )
    return "\n".join([*rows, "", summary]) + "\n"


def as_json(results: Sequence[CheckResult], checked_at: float) -> str:
    """The JSON document docs/preflight.md describes (schema_version 1)."""
    code = exit_code(results)
    document = {
        "schema_version": SCHEMA_VERSION,
        "result": "pass" if code == EXIT_PASS else "fail",
        "exit_code": code,
        "checked_at": datetime.fromtimestamp(checked_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "checks": [
            {"check": r.check, "result": r.result, "detail": r.detail, "observed": r.observed}
            for r in results
        ],
    }
    return json.dumps(document, indent=2) + "\n"
