"""checks.alerts: the rollout's alerts firing, asked of a real Alertmanager (with an inhibition)
and a real Prometheus (a rule that always fires), and what a broken answer costs."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from callback_servers import ServerState, read_request, response_bytes, serve

from monitor.checks.alerts import MAX_BYTES, AlertsCheck
from monitor.checks.base import CheckFailed
from monitor.config.checks import AlertsSettings, ChecksConfig
from monitor.demo.postgres import free_port
from monitor.observe.readings import Alerts, FiredAlert, Readings

HOST = "127.0.0.1"
INHIBITING = {
    "route": {"receiver": "none"},
    "receivers": [{"name": "none"}],
    "inhibit_rules": [
        {
            "source_matchers": ['alertname="RolloutSessionsBlockedByDDL"'],
            "target_matchers": ['alertname="RolloutCallbackDown"'],
            "equal": ["job"],
        }
    ],
}


def binary(*names: str) -> str:
    found = next((path for name in names if (path := shutil.which(name))), None)
    assert found, f"{names[0]} is not installed (scripts/install-system-deps)"
    return found


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout} s")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(INHIBITING))
    address = f"{HOST}:{free_port()}"
    command = [
        binary("prometheus-alertmanager", "alertmanager"),
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
    ]
    with started(command, address):
        yield f"http://{address}"


@contextmanager
def started(command: list[str], address: str) -> Iterator[None]:
    """The server running, ready at address; terminated at the end."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://{address}/-/ready", process)
        yield
    finally:
        process.terminate()
        process.wait(10)


def ask(url: str, api: str = "alertmanager") -> tuple[Alerts | None, CheckFailed | None]:
    readings = Readings()
    check = AlertsCheck(AlertsSettings.model_validate({"url": url, "api": api}), readings)
    try:
        check.run()
    except CheckFailed as failure:
        return readings.current().get(Alerts), failure
    return readings.current().get(Alerts), None


def test_alertmanager_says_what_pages_and_what_is_inhibited(alertmanager: str) -> None:
    """The lock queue pages once: the callback's alert, on two replicas, is inhibited."""
    posted = [
        {"labels": {"alertname": "RolloutSessionsBlockedByDDL", "job": "app"}},
        {"labels": {"alertname": "RolloutCallbackDown", "job": "app", "pod": "a"}},
        {"labels": {"alertname": "RolloutCallbackDown", "job": "app", "pod": "b"}},
        {"labels": {"alertname": "SomeoneElsesAlert", "job": "app"}},
    ]
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=posted).status_code == 200
    alerts, failure = ask(alertmanager)
    assert failure is None
    assert alerts == Alerts(
        f"Alertmanager at {alertmanager}",
        (
            FiredAlert("RolloutCallbackDown", 2, paging=False),
            FiredAlert("RolloutSessionsBlockedByDDL", 1, paging=True),
        ),
    )


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "always",
                        "interval": "1s",
                        "rules": [
                            {"alert": "RolloutAlwaysFiring", "expr": "vector(1)"},
                            {"alert": "RolloutPending", "expr": "vector(1)", "for": "1h"},
                        ],
                    }
                ]
            }
        )
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"rule_files": [str(rules)]}))
    address = f"{HOST}:{free_port()}"
    command = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address={address}",
    ]
    with started(command, address):
        yield f"http://{address}"


def test_prometheus_says_which_of_its_rules_alerts_fire(prometheus: str) -> None:
    """Firing, not pending; Prometheus knows nothing of inhibition: each fires as paging."""
    deadline = time.monotonic() + 30
    alerts, failure = ask(prometheus, "prometheus")
    while (alerts is None or not alerts.firing) and time.monotonic() < deadline:
        time.sleep(0.5)
        alerts, failure = ask(prometheus, "prometheus")
    assert failure is None
    assert alerts == Alerts(
        f"Prometheus at {prometheus}", (FiredAlert("RolloutAlwaysFiring", 1, paging=True),)
    )


class Garbage(http.server.BaseHTTPRequestHandler):
    """Answers with `body`."""

    body = b""

    def do_GET(self) -> None:  # http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: object) -> None:
        """Quiet."""


@pytest.fixture
def garbage() -> Iterator[type[Garbage]]:
    server = socketserver.ThreadingTCPServer((HOST, 0), Garbage)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Garbage.url = f"http://{HOST}:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield Garbage
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"x" * (MAX_BYTES + 10), f"an answer over {MAX_BYTES} bytes"),
        (b"<html>", "an answer that is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "an answer that is not JSON"),  # RecursionError
        (json.dumps({"status": "success"}).encode(), "an answer without a list of alerts"),
    ],
)
def test_a_bad_answer_is_an_error_not_an_empty_list(
    garbage: type[Garbage], body: bytes, error: str
) -> None:
    garbage.body = body
    url = garbage.url  # type: ignore[attr-defined]
    alerts, failure = ask(url)
    assert alerts == Alerts(f"Alertmanager at {url}", (), error)
    assert failure is not None
    assert str(failure) == f"Alertmanager at {url}: {error}"


def test_nothing_listening_is_an_error_with_the_password_masked() -> None:
    url = f"http://pager:s3cret@{HOST}:{free_port()}"
    alerts, failure = ask(url)
    assert alerts is not None
    assert alerts.source == f"Alertmanager at http://pager:***@{HOST}:{url.rsplit(':', 1)[1]}"
    assert alerts.error is not None
    assert alerts.error.startswith("ConnectError")
    assert "s3cret" not in repr(alerts) + str(failure)


def test_the_check_is_built_only_with_a_url() -> None:
    assert not ChecksConfig().alerts.wanted
    assert ChecksConfig.model_validate({"alerts": {"url": "http://am:9093"}}).alerts.wanted


def test_an_answer_trickled_a_byte_at_a_time_is_cut_at_the_check_timeout() -> None:
    """httpx's timeout bounds each read: a server sending a byte every 0.1 s kept the check
    (and its thread) for as long as it went on. The whole answer now has the timeout."""
    body = json.dumps([{"labels": {"alertname": "X"}}]).encode() * 200

    def trickle(conn: socket.socket, state: ServerState) -> None:
        read_request(conn, state)
        conn.sendall(response_bytes(200, body)[: -len(body)])
        for byte in body:
            if state.stopping.wait(0.1):
                return
            conn.sendall(bytes([byte]))

    with serve(trickle, path="") as server:
        readings = Readings()
        settings = AlertsSettings.model_validate({"url": server.url, "timeout": "1s"})
        started = time.monotonic()
        with pytest.raises(CheckFailed) as failure:
            AlertsCheck(settings, readings).run()
        took = time.monotonic() - started
    assert str(failure.value) == f"Alertmanager at {server.url}: no whole answer within 1s"
    assert took < 3  # the timeout and one read's
