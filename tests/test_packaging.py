"""The package as pip installs it: every module the command imports is shipped."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_of_monitor_is_listed_for_setuptools() -> None:
    """An editable install hides a missing entry; a wheel without it fails on import."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "monitor").rglob("__init__.py")
    }
    listed = set(settings["packages"]) - set(settings["package-dir"])
    assert found <= listed, f"not shipped: {sorted(found - listed)}"
