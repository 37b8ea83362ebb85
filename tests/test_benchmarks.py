"""Every bench script, at its dry-run size, can fail (issue 18): its exit code follows its targets.

Each script runs as a user runs it (`python bench/<script>.py` with the dry-run flags of
bench/README.md), on a real PostgreSQL it builds itself and the real exporters, with
BENCH_TARGETS=impossible: every target is then judged unmet, so the script must print its targets
table with every row missed and measured (no "not measured": a bench that measures nothing is
caught too), the summary line, exit 1, and no traceback. A script that crashes, or that exits 0
whatever it measures, fails here. A missing tool is a failure, never a skip: the image needs root
and what `make test-deps` installs (buildah, podman, mmdebstrap); the scripts that compare with
the Go exporters install them with bench/setup when they are missing (as a user's run does), and
fail if they cannot.

The whole module takes about 3 minutes on the reference machine (2 vCPUs; 185 s measured), the
image's build the longest part (40-55 s).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

# bench/ is type-checked on its own (make lint), its scripts as top-level modules.
import targets  # type: ignore[import-not-found]  # noqa: E402

TIMEOUT = 300  # seconds any one dry run may take; they take 3-40 s here
SUMMARY = re.compile(r"^targets: (\d+) met, (\d+) missed$", re.MULTILINE)
HEADER = re.compile(r"^\| target +\| measured +\| limit +\| met +\|$")

# The dry runs of bench/README.md: small and fast, every code path of the full run.
DRY_RUNS: dict[str, list[str]] = {
    "check_costs": ["--rows", "20000", "--repeat", "1", "--modes", "default,estimated"],
    "exporters": [
        *("--rows", "10000", "--minutes", "0.25", "--scrape-interval", "5s"),
        *("--warmup", "2", "--scrapes", "10", "--probes", "5"),
    ],
    "flood": [
        *("--rows", "10000", "--idle", "50", "--wrong", "5", "--seconds", "3"),
        *("--rounds", "1", "--settle", "11", "--scrapes", "20"),
    ],
    "footprint": ["--rows", "10000", "--warmup", "5", "--seconds", "5", "--imports", "3"],
    "image": [],
    "judgement": ["--runs", "20"],
    "lock_plan": ["--rows", "10000", "--repeat", "1", "--rounds", "1"],
    "paging": ["--onsets", "100"],
    "password_flood": ["--logins", "1", "--warmup", "3", "--settle", "1"],
    "rare_drift": ["--rows", "120000", "--planted", "10", "--runs", "2"],
    "redactor": ["--size", "8000", "--repeat", "1"],
    "replicas": ["--rows", "10000", "--seconds", "10"],
    "soak": ["--rows", "10000", "--minutes", "0.25", "--warmup", "10", "--sample-every", "5"],
    "views": ["--repeat", "3"],
}
# What a script cannot get by itself (those with the exporters run bench/setup when needed).
TOOLS = {"image": ("buildah", "podman", "mmdebstrap")}


@dataclass(frozen=True)
class Row:
    """One row of a targets table."""

    target: str
    measured: str
    limit: str
    met: str


def targets_table(stdout: str) -> list[Row]:
    """The rows of the (last) targets table a script printed."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if HEADER.match(line)]
    assert starts, f"no targets table in:\n{stdout[-3000:]}"
    rows = []
    for line in lines[starts[-1] + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows.append(Row(*cells))
    return rows


def run_bench(script: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """python bench/<script>.py args, as a user runs it, every target made impossible."""
    env = {**os.environ, "BENCH_TARGETS": "impossible", "BENCH_RESULTS": str(tmp_path)}
    return subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def require(script: str) -> None:
    """Fail (never skip) when the machine lacks what the script needs."""
    missing = [tool for tool in TOOLS.get(script, ()) if shutil.which(tool) is None]
    if script == "image" and os.geteuid() != 0:
        missing.append("root")
    if missing:
        pytest.fail(f"{script} needs {', '.join(missing)} (make test-deps)")


def test_every_bench_script_has_a_dry_run() -> None:
    scripts = {path.stem for path in BENCH.glob("*.py")} - {"common", "targets", "make_db"}
    assert scripts == set(DRY_RUNS)


@pytest.mark.parametrize("script", sorted(DRY_RUNS))
def test_a_bench_exits_1_when_its_targets_are_missed(script: str, tmp_path: Path) -> None:
    require(script)
    done = run_bench(script, DRY_RUNS[script], tmp_path)
    output = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, output
    assert done.returncode == 1, output
    rows = targets_table(done.stdout)
    assert rows, output
    assert [row for row in rows if (row.limit, row.met) != ("impossible", "no")] == [], output
    assert [row.target for row in rows if row.measured == "not measured"] == [], output
    summaries = SUMMARY.findall(done.stdout)
    assert summaries == [("0", str(len(rows)))], output


def test_a_bad_bench_targets_value_is_bad_usage() -> None:
    env = {**os.environ, "BENCH_TARGETS": "lenient"}
    done = subprocess.run(
        [sys.executable, str(BENCH / "judgement.py"), "--runs", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == "BENCH_TARGETS='lenient': the only value is 'impossible'\n"
    assert "targets:" not in done.stdout


def test_the_exit_code_follows_the_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_TARGETS", raising=False)
    met = targets.Targets()
    met.at_most("database time a minute", 23.4, 60, "ms")
    met.at_least("regressions caught", 95.2, 95, "%")
    met.equal("leaders", 1, 1)
    assert (met.exit_code(), met.summary()) == (0, "targets: 3 met, 0 missed")
    met.at_most("import time", 398, 200, "ms")
    assert (met.exit_code(), met.summary()) == (1, "targets: 3 met, 1 missed")


def test_a_figure_not_measured_is_a_missed_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_TARGETS", raising=False)
    judged = targets.Targets()
    judged.at_most("a NaN", float("nan"), 1, shown="never shown")
    judged.at_least("nothing", None, 1)
    assert [t.row() for t in judged.judged] == [
        ["a NaN", "not measured", "at most 1", "no"],
        ["nothing", "not measured", "at least 1", "no"],
    ]
    assert judged.exit_code() == 1


def test_judging_nothing_is_no_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_TARGETS", raising=False)
    judged = targets.Targets()
    assert (judged.exit_code(), judged.summary()) == (1, "targets: 0 met, 1 missed")


def test_impossible_targets_are_all_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_TARGETS", "impossible")
    judged = targets.Targets()
    judged.equal("leaders", 1, 1)
    assert judged.judged[0].row() == ["leaders", "1", "impossible", "no"]
    assert judged.render().endswith("targets: 0 met, 1 missed")
