"""tests/argo_analysis/measure.go built offline with Debian's Go and expr, and run per measurement.

`go build` runs with GOPATH=/usr/share/gocode (golang-github-antonmedv-expr-dev puts expr there),
GO111MODULE=off and a cache in the test's temporary directory: no module proxy, no network. A
missing `go` or expr fails the test (scripts/install-system-deps --tests installs both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SOURCE = Path(__file__).parent / "argo_analysis" / "measure.go"
GOPATH = Path("/usr/share/gocode")
EXPR = GOPATH / "src" / "github.com" / "antonmedv" / "expr"


def build_measure(workdir: Path) -> Path:
    """The measure binary, built in workdir."""
    go = shutil.which("go")
    if go is None or not EXPR.is_dir():
        pytest.fail("go or expr missing: scripts/install-system-deps --tests installs golang-go "
                    "and golang-github-antonmedv-expr-dev")  # fmt: skip
    binary = workdir / "measure"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "GOPATH": str(GOPATH),
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOPROXY": "off",
        "GOCACHE": str(workdir / "gocache"),
        "CGO_ENABLED": "0",
    }
    result = subprocess.run(
        [go, "build", "-o", str(binary), str(SOURCE)],
        env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return binary


def measure(binary: Path, request: dict[str, Any]) -> dict[str, Any]:
    """One measurement: {"phase", "value", "error"} as the Argo controller would record it."""
    result = subprocess.run(
        [str(binary)], input=json.dumps(request), capture_output=True, text=True, check=True,
        timeout=60,
    )  # fmt: skip
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer
