"""What this build of rollout-monitor is: its version, source revision and Python, for
`--version` and rollout_monitor_build_info (as every Prometheus exporter exports *_build_info)."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

from prometheus_client.metrics_core import Metric

from monitor.observe.metrics import labelled_gauge

PACKAGE = "rollout-monitor"
# Written at the package's root (monitor/REVISION) by an image or package build.
REVISION_FILE = Path(__file__).resolve().parent.parent / "REVISION"


@cache
def version() -> str:
    """The installed package's version (0+unknown when run from a tree never installed)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0+unknown"


@cache
def revision() -> str:
    """The source revision: the build's REVISION file, else the checkout's git commit, else
    unknown."""
    if REVISION_FILE.is_file():
        return REVISION_FILE.read_text(encoding="utf-8").strip() or "unknown"
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REVISION_FILE.parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else "unknown"


def describe() -> str:
    """One line for --version."""
    return (
        f"rollout-monitor {version()} (revision {revision()}, Python {platform.python_version()})"
    )


class BuildInfo:
    """A collector of rollout_monitor_build_info{version,revision,python_version} 1."""

    def collect(self) -> list[Metric]:
        """The one sample (prometheus_client's collector interface)."""
        return [
            labelled_gauge(
                "rollout_monitor_build_info",
                "1, labelled with the version, the source revision and the Python it runs on.",
                ["version", "revision", "python_version"],
                {(version(), revision(), platform.python_version()): 1.0},
            )
        ]
