"""scripts/rollout-gate, the CI gate, and the GitHub Action that runs it: every exit status
against the daemon's own /verdict (its exporter and gate on 127.0.0.1, behind basic auth,
deciding from a real Prometheus over a settable clock), the deadline kept against a monitor that
never answers, one-line usage errors, and credentials never printed. The action validates
against the GitHub Actions schema check-jsonschema vendors, and its one step is run as a runner
would run it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gate_documents import AFTER, DURING, PASSWORD, SCENARIOS, STATES, USER, gate_daemon
from prometheus_blocks import LoadedPrometheus, openmetrics, serving

from monitor.demo.postgres import free_port
from monitor.judge.gate import FRESH_SECONDS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "rollout-gate"
ACTION = ROOT / "deploy" / "github-action" / "action.yml"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_GATE_")}
AUTH = {"ROLLOUT_GATE_USERNAME": USER, "ROLLOUT_GATE_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    """A real Prometheus holding the rollouts of tests/gate_documents.py."""
    yield from serving(openmetrics(SCENARIOS), tmp_path_factory.mktemp("rollouts"))


@contextlib.contextmanager
def daemon_in(
    state: str, rollouts: LoadedPrometheus, workdir: Path
) -> Iterator[Any]:  # a GateDaemon
    """The daemon's gate paths in one state: pass, fail, inconclusive, undecidable (inconclusive
    over a complete window) or unavailable (Prometheus not there: 503)."""
    job, now = STATES.get(state, ("healthy", AFTER))
    prometheus = None if state == "unavailable" else rollouts.url
    with gate_daemon(prometheus, job, now, workdir) as daemon:
        yield daemon


def gate(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    """Run the script: exit status, stdout, stderr, seconds taken."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**CLEAN_ENV, **(env if env is not None else AUTH)},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


FAST = ("--interval", "1s", "--timeout", "5s")


@pytest.mark.parametrize(
    "case",
    [
        ("pass", 0, ["1h: pass (window complete: true)"]),
        (
            "fail",
            1,
            [
                "1h: fail (window complete: true)",
                "  fail users_can_authenticate: callback success 0.00% of 480 probes, below the "
                "99.00% objective",
                "  inconclusive latency_within_10pct: 0 probes answered after the migration, "
                "fewer than 20",
                "  fail error_rate_within_baseline: errors 100.00% of 480 probes, limit 1.00%",
            ],
        ),
        (
            "undecidable",
            3,
            [
                "1h: inconclusive (window complete: true)",
                "  inconclusive latency_within_10pct: baseline unusable (no baseline)",
                "inconclusive over a complete window: not enough data, a person decides",
            ],
        ),
    ],
    ids=lambda case: case[0],
)
def test_a_decided_verdict_ends_the_wait_at_once(
    rollouts: LoadedPrometheus, tmp_path: Path, case: tuple[str, int, list[str]]
) -> None:
    state, code, lines = case
    with daemon_in(state, rollouts, tmp_path) as daemon:
        result = gate("--url", daemon.url, "--deadline", "60s", *FAST)
    assert result[:3] == (code, "\n".join(lines) + "\n", "")
    assert result[3] < 10


def test_it_waits_while_inconclusive_and_passes_when_the_hour_is_over(
    rollouts: LoadedPrometheus, tmp_path: Path
) -> None:
    """Asked at 01:30 the hour is not over; the daemon's clock then moves to 02:30 and the gate
    sees the pass (within the daemon's FRESH_SECONDS) before its deadline."""
    with daemon_in("inconclusive", rollouts, tmp_path) as daemon:
        mover = threading.Timer(2.0, lambda: setattr(daemon, "now", AFTER))
        mover.start()
        try:
            code, out, err, took = gate("--url", daemon.url, "--deadline", "30s", *FAST)
        finally:
            mover.cancel()
    lines = out.splitlines()
    assert (code, err, lines[-1]) == (0, "", "1h: pass (window complete: true)")
    assert lines[0] == "1h: inconclusive (window complete: false)"
    assert 2.0 <= took < 2.0 + FRESH_SECONDS + 5


def test_the_deadline_while_inconclusive_is_exit_3(
    rollouts: LoadedPrometheus, tmp_path: Path
) -> None:
    with daemon_in("inconclusive", rollouts, tmp_path) as daemon:
        assert daemon.now == DURING
        code, out, err, took = gate("--url", daemon.url, "--deadline", "3s", *FAST)
    lines = out.splitlines()
    assert (code, err) == (3, "")
    assert lines[0] == "1h: inconclusive (window complete: false)"
    assert len([line for line in lines if line.startswith("1h: ")]) >= 3  # asked every second
    assert lines[-1] == "deadline passed, still inconclusive"
    assert 3.0 <= took < 6.0


def test_a_monitor_that_cannot_ask_prometheus_is_exit_4_at_the_deadline(
    rollouts: LoadedPrometheus, tmp_path: Path
) -> None:
    with daemon_in("unavailable", rollouts, tmp_path) as daemon:
        code, out, err, took = gate("--url", daemon.url, "--deadline", "2s", *FAST)
    lines = out.splitlines()
    assert (code, err) == (4, "")
    assert lines[0].startswith(
        "1h: the monitor could not evaluate (503): could not ask Prometheus: Prometheus at "
    )
    assert lines[-1] == "deadline passed: the monitor could not evaluate"
    assert 2.0 <= took < 5.0


def test_an_unreachable_monitor_is_exit_4_at_the_deadline() -> None:
    port = free_port()
    code, out, err, took = gate("--url", f"http://127.0.0.1:{port}", "--deadline", "2s", *FAST)
    assert (code, err) == (4, "")
    assert out.splitlines()[0] == (
        f"1h: could not reach http://127.0.0.1:{port}/verdict?window=1h: "
        "[Errno 111] Connection refused"
    )
    assert 2.0 <= took < 5.0


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_the_deadline_holds_against_a_monitor_that_never_answers() -> None:
    """The request's own timeout (30 s by default) is cut to what is left of the deadline."""
    with silent_server() as url:
        code, out, err, took = gate("--url", url, "--deadline", "3s", "--interval", "1s")
    assert (code, err) == (4, "")
    assert "could not reach" in out
    assert 3.0 <= took < 6.0


@pytest.mark.parametrize(
    "case",
    [
        ([], "--url (or ROLLOUT_GATE_URL) is required"),
        (["--url", "ftp://monitor"], "--url must be an http:// or https:// URL of the monitor"),
        (
            ["--url", "http://monitor:port"],
            "--url must be an http:// or https:// URL of the monitor",
        ),
        (
            ["--url", "http://m", "--window", "2h"],
            "argument --window: invalid choice: '2h' (choose from '1h', '24h')",
        ),
        (
            ["--url", "http://m", "--deadline", "soon"],
            "argument --deadline: not a duration: 'soon' (90s, 5m, 2h)",
        ),
        (["--url", "http://m", "--interval", "0"], "--interval and --timeout must be more than 0"),
        (
            ["--url", "https://m", "--ca-file", "/nonexistent"],
            "--ca-file /nonexistent: No such file or directory",
        ),
        (["--url", "http://m", "--bogus"], "unrecognized arguments: --bogus"),
    ],
    ids=lambda case: " ".join(case[0]) or "nothing",
)
def test_bad_usage_is_one_line_and_exit_2(case: tuple[list[str], str]) -> None:
    args, message = case
    code, out, err, _ = gate(*args)
    assert (code, out, err) == (2, "", f"rollout-gate: error: {message}\n")


def test_answers_that_waiting_cannot_change_are_exit_2(
    rollouts: LoadedPrometheus, tmp_path: Path
) -> None:
    """Wrong credentials (401) and a URL that is not the monitor's (404) end it at once."""
    with daemon_in("pass", rollouts, tmp_path) as daemon:
        wrong = {"ROLLOUT_GATE_USERNAME": USER, "ROLLOUT_GATE_PASSWORD": "wrong"}
        unauthorized = gate("--url", daemon.url, "--deadline", "60s", env=wrong)
        elsewhere = gate("--url", f"{daemon.url}/somewhere", "--deadline", "60s")
    assert unauthorized[:3] == (
        2,
        "",
        "rollout-gate: error: the monitor answered 401 (unauthorized: check the credentials)\n",
    )
    assert elsewhere[:3] == (
        2,
        "",
        "rollout-gate: error: the monitor answered 404 (no /verdict there: is the URL the "
        "monitor's?)\n",
    )


@pytest.mark.parametrize("state", ["pass", "unavailable", "wrong"])
def test_credentials_are_used_and_never_printed(
    rollouts: LoadedPrometheus, tmp_path: Path, state: str
) -> None:
    """From the URL's userinfo or the environment: the password is in no line of output."""
    with daemon_in("pass" if state == "wrong" else state, rollouts, tmp_path) as daemon:
        password = "wrong-" + PASSWORD if state == "wrong" else PASSWORD
        in_url = daemon.url.replace("http://", f"http://{USER}:{password}@")
        from_url = gate("--url", in_url, "--deadline", "2s", *FAST, env={})
        from_env = gate(
            "--url", daemon.url, "--deadline", "2s", *FAST,
            env={"ROLLOUT_GATE_USERNAME": USER, "ROLLOUT_GATE_PASSWORD": password},
        )  # fmt: skip
    expected = {"pass": 0, "unavailable": 4, "wrong": 2}[state]
    for code, out, err, _ in (from_url, from_env):
        assert code == expected, (out, err)
        assert password not in out + err


def check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    found = found or shutil.which("check-jsonschema")
    if found is None:
        pytest.fail("check-jsonschema is not installed (the dev extra installs it)")
    return found


def action_validation(path: Path) -> tuple[int, str]:
    """check-jsonschema's exit status and report (every error) for an action file."""
    result = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.github-actions", "--verbose", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_the_action_validates_against_the_github_actions_schema() -> None:
    code, report = action_validation(ACTION)
    assert (code, report.splitlines()[0]) == (0, "ok -- validation done")


@pytest.mark.parametrize(
    "case",
    [
        (["runs", "steps", 0, "shell"], None, "$.runs.steps[0]: {"),
        (["runs", "using"], "python", "is not one of"),
        (["inputs", "url", "required"], "yes", "'yes' is not of type 'boolean'"),
    ],
    ids=lambda case: ".".join(map(str, case[0])),
)
def test_a_broken_action_fails_the_schema(
    tmp_path: Path, case: tuple[list[Any], object, str]
) -> None:
    path, value, message = case
    action = yaml.safe_load(ACTION.read_text())
    place = action
    for key in path[:-1]:
        place = place[key]
    if value is None:
        del place[path[-1]]
    else:
        place[path[-1]] = value
    broken = tmp_path / "action.yml"
    broken.write_text(yaml.safe_dump(action))
    code, report = action_validation(broken)
    assert code == 1
    assert message in report


def run_action_step(inputs: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The action's one step as a runner runs it: inputs (defaults filled) into its env, bash,
    GITHUB_ACTION_PATH the action's folder in a checkout of this repository."""
    action = yaml.safe_load(ACTION.read_text())
    (step,) = action["runs"]["steps"]
    assert (action["runs"]["using"], step["shell"]) == ("composite", "bash")
    given = {name: spec.get("default", "") for name, spec in action["inputs"].items()} | inputs
    env = {}
    for name, value in step["env"].items():
        expression = value.removeprefix("${{ inputs.").removesuffix(" }}")
        assert value == f"${{{{ inputs.{expression} }}}}", value
        env[name] = given[expression]
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        env={**CLEAN_ENV, **env, "GITHUB_ACTION_PATH": str(ACTION.parent)},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("case", [("pass", 0), ("fail", 1)], ids=lambda case: case[0])
def test_the_action_step_runs_the_gate_with_its_inputs(
    rollouts: LoadedPrometheus, tmp_path: Path, case: tuple[str, int]
) -> None:
    state, code = case
    with daemon_in(state, rollouts, tmp_path) as daemon:
        result = run_action_step(
            {"url": daemon.url, "username": USER, "password": PASSWORD, "interval": "1s"}
        )
    assert result.returncode == code, result.stderr
    assert result.stdout.splitlines()[0] == f"1h: {state} (window complete: true)"
    assert PASSWORD not in result.stdout + result.stderr
