"""Kubernetes manifests as kubectl's kustomize renders them, for the tests of deploy/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml


def tool(name: str) -> str:
    """The command's path; its absence is a failure, not a skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/install-system-deps --tests installs it)")
    return path


def render(base: Path) -> list[dict[str, Any]]:
    """Every document `kubectl kustomize` renders from the folder."""
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(base)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]
