"""What rollout-monitor says of itself: the families it exports (monitor/config/names.py: a SQL check may
take none), its version and build (--version, rollout_monitor_build_info) and its process."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

from monitoring import make_config

from monitor.config.names import BUILTIN_FAMILIES, family_of, is_builtin
from monitor.daemon.service import Monitor
from monitor.observe.identity import revision, version
from monitor.output.redact import Redactor


def test_every_family_a_real_run_exports_is_listed(exported_names: set[str]) -> None:
    """A new metric not added to the list would let a SQL check take its name."""
    ours = {name for name in exported_names if name.startswith("rollout_")}
    assert ours
    assert {name for name in ours if family_of(name) not in BUILTIN_FAMILIES} == set()


def test_sample_names_of_a_family_are_its_own() -> None:
    assert is_builtin("rollout_auth_callback_duration_seconds_bucket")
    assert is_builtin("rollout_auth_callback_requests_total")
    assert is_builtin("rollout_db_connections")
    assert not is_builtin("rollout_tokens_expiring_within_1h")
    assert not is_builtin("rollout_db_connections_by_app")


def test_version_names_the_build_and_exits_0() -> None:
    """Issue 12: --version answered "the following arguments are required: command"."""
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == (
        f"rollout-monitor {version()} (revision {revision()}, Python {platform.python_version()})\n"
    )
    assert version() == metadata.version("rollout-monitor")


def test_the_registry_carries_build_info_and_the_process_and_platform_collectors() -> None:
    monitor = Monitor(make_config("postgresql://mon@127.0.0.1:1/app"), Redactor())
    labels = {
        "version": version(),
        "revision": revision(),
        "python_version": platform.python_version(),
    }
    assert monitor.registry.get_sample_value("rollout_monitor_build_info", labels) == 1
    assert monitor.registry.get_sample_value("process_resident_memory_bytes") is not None
    assert monitor.registry.get_sample_value("process_open_fds") is not None
    info = {"implementation": platform.python_implementation()}
    found = [s for f in monitor.registry.collect() for s in f.samples if s.name == "python_info"]
    assert [s.labels["implementation"] for s in found] == [info["implementation"]]
