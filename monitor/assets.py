"""The files that ship with the monitor for the rest of the stack: Prometheus rules, the
Alertmanager example, the Grafana dashboard, the runbook and the database role script.

They are package data of an installed wheel (pyproject.toml maps alerts/, dashboards/ and docs/
into the package), so an installed monitor has them too: `rollout-monitor assets DIR` writes them
out, and the demo loads its Prometheus with them.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

# What is written, where (relative to DIR), from which package.
ASSETS: dict[str, tuple[str, str]] = {
    "alerts/alerting.rules.yml": ("monitor.alerts", "alerting.rules.yml"),
    "alerts/recording.rules.yml": ("monitor.alerts", "recording.rules.yml"),
    "alerts/alertmanager.example.yml": ("monitor.alerts", "alertmanager.example.yml"),
    "dashboards/rollout-overview.json": ("monitor.dashboards", "rollout-overview.json"),
    "docs/runbook.md": ("monitor.docs", "runbook.md"),
    "docs/monitoring-role.sql": ("monitor.docs", "monitoring-role.sql"),
}


class AssetsError(Exception):
    """Writing the assets would overwrite a file, or cannot be done; the message says which."""


def asset(name: str) -> Traversable:
    """One shipped file, by its path under DIR (e.g. alerts/alerting.rules.yml)."""
    package, resource = ASSETS[name]
    return files(package).joinpath(resource)


def alerts_dir() -> Path:
    """The folder holding the rule files (a real folder: the package is installed unzipped)."""
    return Path(str(files("monitor.alerts")))


def write_assets(folder: Path, overwrite: bool = False) -> list[Path]:
    """Write every asset under folder; existing files are kept unless overwrite."""
    targets = {name: folder / name for name in ASSETS}
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing and not overwrite:
        raise AssetsError(f"{existing[0]}: exists (--force replaces it)")
    written = []
    for name, path in targets.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(asset(name).read_bytes())
        except OSError as error:
            raise AssetsError(f"{path}: cannot write: {error.strerror}") from None
        written.append(path)
    return written
