"""The command line of CONTRACT.md, run as a real process: exit codes, output, and the daemon."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import fixtures
import httpx
import pytest
from callback_servers import answering_server, refused_url
from databases import FreshDatabase

from monitor.cli import parser
from monitor.demo.postgres import free_port

COMMAND = [sys.executable, "-m", "monitor"]
PASSWORD = "Sup3r-s3cret-pw"


def rollout(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run rollout-monitor with a clean environment plus env."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    return subprocess.run(
        [*COMMAND, *args],
        check=False,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def promtool() -> str:
    """The real promtool; the test command installs it, so its absence is a failure."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (scripts/install-system-deps installs it)")
    return path


def test_check_config_accepts_defaults_and_masks_the_password() -> None:
    result = rollout("check-config", "--database-url", f"postgresql://mon:{PASSWORD}@db:5432/app")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration OK: database postgresql://mon:***@db:5432/app,")
    assert PASSWORD not in result.stdout + result.stderr


def test_check_config_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("checks:\n  drift:\n    interval: soon\nunknown: 1\n")
    result = rollout("check-config", "--config", str(config))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{config}: checks.drift.interval: invalid duration 'soon': expected a number with a unit ms, s, m, h, d or w, e.g. 15s or 1h30m",
        f"{config}: unknown: unknown key",
        "database.url: required: set --database-url, DATABASE_URL or database.url in the config file",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["frobnicate"],
            "rollout-monitor: argument command: invalid choice: 'frobnicate' (choose from 'run', 'once', 'check-config', 'assets', 'preflight', 'plan', 'verdict', 'demo') (see --help)",
        ),
        (["once", "--bogus"], "rollout-monitor: unrecognized arguments: --bogus (see --help)"),
        ([], "rollout-monitor: the following arguments are required: command (see --help)"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = rollout(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [expected]


def test_once_against_a_healthy_rollout_exits_0_and_passes_promtool(
    fresh_db: FreshDatabase,
) -> None:
    fixtures.apply(fresh_db.conn(), "migration_001")
    with answering_server(401) as app:
        result = rollout("once", "--database-url", fresh_db.url, "--callback-url", app.url)
    assert result.returncode == 0, result.stderr
    assert "rollout_postgres_up 1.0" in result.stdout
    assert 'rollout_migration_state{state="applied"} 1.0' in result.stdout
    assert 'rollout_auth_callback_requests_total{outcome="success"} 1.0' in result.stdout
    assert not re.search(r"^\w+_created[{ ]", result.stdout, re.MULTILINE)
    lint = subprocess.run(
        [promtool(), "check", "metrics"],
        check=False,
        input=result.stdout,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout + lint.stderr == ""


def test_once_with_the_database_down_exits_1_and_still_reports_the_callback() -> None:
    url = f"postgresql://mon:{PASSWORD}@127.0.0.1:{free_port()}/app"
    with answering_server(200) as app:
        started = time.monotonic()
        result = rollout("once", "--database-url", url, "--callback-url", app.url)
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "rollout_postgres_up 0.0" in result.stdout
    assert 'rollout_check_success{check="schema"} 0.0' in result.stdout
    assert 'rollout_auth_callback_requests_total{outcome="success"} 1.0' in result.stdout
    assert "rollout_auth_callback_duration_seconds_count 1.0" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    failed = [json.loads(line) for line in result.stderr.splitlines() if '"check_failed"' in line]
    assert {event["check"] for event in failed} >= {"schema", "drift", "backfill", "connections"}
    assert elapsed < 30  # acquire_timeout (5 s) bounds each wave of checks


def test_once_with_a_failing_callback_exits_1(fresh_db: FreshDatabase) -> None:
    result = rollout("once", "--database-url", fresh_db.url, "--callback-url", refused_url())
    assert result.returncode == 1
    assert 'rollout_auth_callback_requests_total{outcome="connection_error"} 1.0' in result.stdout
    assert "rollout_postgres_up 1.0" in result.stdout


def test_run_serves_until_sigterm_then_stops_cleanly(fresh_db: FreshDatabase) -> None:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    env = {**base, "DATABASE_URL": fresh_db.url, "ROLLOUT_LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    with answering_server(400) as app:
        env["ROLLOUT_CALLBACK_URL"] = app.url
        daemon = subprocess.Popen(
            [*COMMAND, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}")
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            assert 'rollout_migration_state{state="pending"} 1.0' in metrics
            assert "rollout_postgres_up 1.0" in metrics
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            daemon.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            _, stderr = daemon.communicate(timeout=15)
        finally:
            daemon.kill()
    assert daemon.returncode == 0
    assert time.monotonic() - stopped_at < 10
    events = [json.loads(line)["event"] for line in stderr.splitlines()]
    assert events[0] == "started"
    assert events[-2:] == ["stopping", "stopped"]


def test_run_reports_a_taken_listen_address_and_exits_2(fresh_db: FreshDatabase) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = rollout(
            "run", "--database-url", fresh_db.url, "--listen-address", f"127.0.0.1:{port}"
        )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"listen_address: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def wait_until_ready(base_url: str, timeout: float = 20) -> None:
    """Poll /readyz until it answers 200 (every check has run once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{base_url} never became ready")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def test_every_command_explains_itself_and_its_exit_codes() -> None:
    """Issue 13: --help of run, once, check-config and preflight had no description, defaults or
    exit codes; several demo flags had no help."""
    for name, command in _subparsers().items():
        assert command.description, name
        assert "Exit" in command.description, name
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.option_strings or action.dest)


def test_options_appear_only_where_they_act() -> None:
    """preflight and once never listen: --listen-address and --web-config-file were offered."""
    options = {
        name: {s for a in command._actions for s in a.option_strings}
        for name, command in _subparsers().items()
    }
    serving = {"--listen-address", "--web-config-file"}
    assert serving <= options["run"]
    assert serving <= options["check-config"]
    assert not serving & options["once"]
    assert not serving & options["preflight"]
    assert "--callback-url" in options["once"]
    assert "--callback-url" in options["preflight"]
    result = rollout("preflight", "--web-config-file", "/nowhere")
    assert result.returncode == 2
    assert result.stderr == (
        "rollout-monitor: unrecognized arguments: --web-config-file /nowhere (see --help)\n"
    )
