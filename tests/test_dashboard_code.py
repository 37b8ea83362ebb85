"""The dashboard as code (issue 13): dashboards/ builds rollout-overview.json with
grafana-foundation-sdk from the project's own names, and the committed file is exactly its output.

tests/test_dashboard.py checks what the built dashboard holds; these check that it is built.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from promql import ROOT

COMMITTED = ROOT / "monitor/assets/dashboards/rollout-overview.json"


def build(*arguments: str, before: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m dashboards`, after `before` (Python run first in the same process)."""
    program = f"{before}\nfrom dashboards.__main__ import main\nraise SystemExit(main())"
    return subprocess.run(
        [sys.executable, "-c", program, *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_committed_dashboard_is_what_the_generator_builds() -> None:
    result = build("--check")
    assert (result.returncode, result.stderr) == (0, "")


def test_the_generator_writes_the_committed_file_byte_for_byte(tmp_path: Path) -> None:
    written = tmp_path / "overview.json"
    assert build("--output", str(written)).returncode == 0
    assert written.read_bytes() == COMMITTED.read_bytes()


def test_check_finds_a_hand_edit(tmp_path: Path) -> None:
    """The comparison can fail: one changed title is out of date, and nothing is rewritten."""
    edited = tmp_path / "overview.json"
    edited.write_text(COMMITTED.read_text().replace('"PostgreSQL"', '"Postgres"', 1))
    result = build("--check", "--output", str(edited))
    assert result.returncode == 1
    assert result.stderr == f"{edited} is out of date: run python -m dashboards\n"
    assert '"Postgres"' in edited.read_text()


def test_a_criterion_without_a_panel_stops_the_build(tmp_path: Path) -> None:
    """A seventh criterion in monitor.judge.criteria has no panel yet: one line, exit 2, no file."""
    output = tmp_path / "overview.json"
    result = build(
        "--output",
        str(output),
        before="import monitor.judge.observation as c\n"
        "c.CRITERIA += (('rollback_possible', 'Rollback possible'),)",
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("python -m dashboards: success criteria: ")
    assert "rollback_possible" in result.stderr
    assert not output.exists()


def test_an_alert_the_rules_do_not_have_stops_the_build(tmp_path: Path) -> None:
    """A description names alerts of alerts/alerting.rules.yml: one renamed there is caught."""
    result = build(
        "--output",
        str(tmp_path / "overview.json"),
        before="import dashboards.names as n\n"
        "n.alert_names = lambda: frozenset({'RolloutMonitorAbsent'})",
    )
    assert result.returncode == 2
    assert result.stderr == (
        "python -m dashboards: alert 'RolloutSessionsBlockedByDDL' "
        "is not in alerts/alerting.rules.yml\n"
    )


def test_an_unwritable_output_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "overview.json"
    result = build("--output", str(missing))
    assert result.returncode == 2
    assert result.stderr == (f"python -m dashboards: {missing}: No such file or directory\n")


def test_panels_are_numbered_in_reading_order() -> None:
    """Ids come from the generator, not by hand: 1, 2, 3... top to bottom, left to right."""
    panels = json.loads(COMMITTED.read_text())["panels"]
    assert [panel["id"] for panel in panels] == list(range(1, len(panels) + 1))
    positions = [(panel["gridPos"]["y"], panel["gridPos"]["x"]) for panel in panels]
    assert positions == sorted(positions)
