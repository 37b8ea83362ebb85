"""What one pre-flight check found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """One row of the table: the check, pass or fail, a one-line detail and what was observed."""

    check: str
    passed: bool
    detail: str
    observed: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        """'pass' or 'fail'."""
        return "pass" if self.passed else "fail"


def passed(check: str, detail: str, **observed: Any) -> CheckResult:
    """A passing result."""
    return CheckResult(check, True, detail, observed)


def failed(check: str, detail: str, **observed: Any) -> CheckResult:
    """A failing result."""
    return CheckResult(check, False, detail, observed)
