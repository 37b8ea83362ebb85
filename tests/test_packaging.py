"""The package as pip installs it: every module the command imports is shipped."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from monitor.assets import EXAMPLE_RUNBOOK_URL, PROMETHEUS_RULE, prometheus_rule, shipped

ROOT = Path(__file__).resolve().parent.parent
SQL = ("schema_before", "migration_001", "rollback_001")
UV = (sys.executable, "-m", "uv")
EXPORT_PLAIN = ("--no-hashes", "--no-header", "--no-annotate", "--format", "requirements-txt")


def test_assets_writes_the_shipped_files_and_keeps_existing_ones(tmp_path: Path) -> None:
    """Issue 12: the rules, the dashboard and the runbook come out of the package."""
    command = [sys.executable, "-m", "monitor", "assets", str(tmp_path)]
    written = subprocess.run(command, capture_output=True, text=True, check=False)
    assert written.returncode == 0, written.stderr
    written_names = [*shipped(), PROMETHEUS_RULE]
    assert written.stdout.splitlines() == [str(tmp_path / name) for name in written_names]
    for name in shipped():
        assert (tmp_path / name).read_bytes() == (ROOT / "monitor/assets" / name).read_bytes()
    assert (tmp_path / PROMETHEUS_RULE).read_text() == prometheus_rule()
    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 2
    assert again.stderr == (
        f"rollout-monitor assets: {tmp_path / 'alerts/alerting.rules.yml'}: exists"
        " (--force replaces it)\n"
    )
    forced = subprocess.run([*command, "--force"], capture_output=True, text=True, check=False)
    assert forced.returncode == 0


def test_assets_writes_absolute_runbook_links_under_the_runbook_url(tmp_path: Path) -> None:
    """Issue 20, finding 8: a relative runbook_url is no link in a pager. With --runbook-url
    every alert's link is URL#its-section, in the rule file and the PrometheusRule alike, which
    is deploy/kubernetes/'s copy for the example URL."""
    command = [sys.executable, "-m", "monitor", "assets", str(tmp_path)]
    written = subprocess.run(
        [*command, "--runbook-url", EXAMPLE_RUNBOOK_URL],
        capture_output=True,
        text=True,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    groups = yaml.safe_load((tmp_path / "alerts/alerting.rules.yml").read_text())["groups"]
    links = [r["annotations"]["runbook_url"] for g in groups for r in g["rules"]]
    assert links
    assert all(link.startswith(f"{EXAMPLE_RUNBOOK_URL}#rollout") for link in links), links
    committed = ROOT / "deploy" / PROMETHEUS_RULE
    assert (tmp_path / PROMETHEUS_RULE).read_bytes() == committed.read_bytes()
    assert (tmp_path / "alerts/recording.rules.yml").read_bytes() == (
        ROOT / "monitor/assets/alerts/recording.rules.yml"
    ).read_bytes()


NOT_A_URL = (
    "expected the absolute http(s) URL of the runbook, without a #fragment"
    " (each alert adds its section's)"
)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("docs/runbook.md", f"--runbook-url 'docs/runbook.md': {NOT_A_URL}"),
        ("ftp://wiki/runbook", f"--runbook-url 'ftp://wiki/runbook': {NOT_A_URL}"),
        ("https://", f"--runbook-url 'https://': {NOT_A_URL}"),
        ("https://wiki/runbook#top", f"--runbook-url 'https://wiki/runbook#top': {NOT_A_URL}"),
        (
            "https://wiki/run book",
            "--runbook-url 'https://wiki/run book': spaces, quotes and <> are not allowed",
        ),
    ],
)
def test_a_bad_runbook_url_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, url: str, message: str
) -> None:
    folder = tmp_path / "out"
    command = [sys.executable, "-m", "monitor", "assets", str(folder), "--runbook-url", url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr, done.stdout) == (
        2,
        f"rollout-monitor assets: {message}\n",
        "",
    )
    assert not folder.exists()


def test_the_wheel_carries_the_rules_the_dashboard_and_the_runbook(tmp_path: Path) -> None:
    """Issue 12: after `pip install .` the demo started Prometheus with no rules. Built and
    installed (without dependencies) into a folder of its own, the package finds them there."""
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"monitor/assets/{name}" for name in shipped()} <= names
    assert {f"monitor/assets/sql/{name}.sql" for name in SQL} <= names
    assert not any(name.startswith("dashboards/") for name in names)  # the generator stays home
    packages = {str(Path(name).parent) for name in names if name.endswith("/__init__.py")}
    assert packages == {
        str(init.parent.relative_to(ROOT)) for init in (ROOT / "monitor").rglob("__init__.py")
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    found = subprocess.run(
        [sys.executable, "-c", "from monitor.assets import folder; print(folder('alerts'))"],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    rules = Path(found.stdout.strip())
    assert rules.is_relative_to(target)
    assert sorted(p.name for p in rules.glob("*.rules.yml")) == [
        "alerting.rules.yml",
        "recording.rules.yml",
    ]


def test_the_lock_is_current_and_installed() -> None:
    """uv.lock pins what pyproject.toml asks for (uv fails when pyproject changed since the last
    `make lock`), and the environment the tests run in holds exactly its versions."""
    locked = subprocess.run(
        [*UV, "lock", "--locked"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert locked.returncode == 0, locked.stderr
    exported = subprocess.run(
        [*UV, "export", "--frozen", "--extra", "dev", "--no-emit-project", *EXPORT_PLAIN],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    wanted = [Requirement(line) for line in exported.stdout.splitlines() if "==" in line]
    here = [r for r in wanted if r.marker is None or r.marker.evaluate()]
    assert {r.name: metadata.version(r.name) for r in here} == {
        r.name: str(r.specifier).removeprefix("==") for r in here
    }
