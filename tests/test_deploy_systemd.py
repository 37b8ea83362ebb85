"""deploy/systemd: the unit passes `systemd-analyze verify`, is hardened (`systemd-analyze
security --offline`), and its environment example is what the command reads (issue 12, item 4).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config.loading import OVERRIDABLE

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "rollout-monitor.service"
ENV_EXAMPLE = ROOT / "deploy" / "systemd" / "rollout-monitor.env.example"
INSTALLED = "/opt/rollout-monitor/bin/rollout-monitor"
MAX_EXPOSURE = 1.5  # systemd-analyze's scale: 0 (locked down) to 10; "OK" is below 2


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is not installed (scripts/install-system-deps installs it)")
    return path


def local_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's command (verify wants it to exist)."""
    unit = tmp_path / UNIT.name
    command = Path(sys.executable).parent / "rollout-monitor"
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(command)))
    return unit


def test_the_unit_verifies_clean(tmp_path: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "verify", str(local_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", str(local_unit(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found[1]) <= MAX_EXPOSURE, result.stdout


def test_the_environment_example_is_what_the_command_reads() -> None:
    settings = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    known = {variable for _, variable in OVERRIDABLE.values()}
    assert set(settings) <= known
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "check-config",
            "--config",
            str(ROOT / "rollout-monitor.example.yaml"),
        ],
        env={**base, **settings},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "listen 0.0.0.0:9838" in result.stdout
    assert "callback POST http://127.0.0.1:3000/api/auth/callback/threads" in result.stdout
