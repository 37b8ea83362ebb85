"""What the gates read, made by the real thing: verdict documents and the rollout_verdict gauge.

`verdict_documents` runs `rollout-monitor verdict --format json` (a subprocess, as a pipeline
would) against a real Prometheus loaded with generated rollouts (tests/prometheus_blocks.py) for
a pass, a fail and an inconclusive window; the daemon's /verdict answers the same document with
`"source"` added. `VerdictServer` serves such documents on 127.0.0.1 as the daemon's /verdict
does (200, or 503 when it cannot ask Prometheus), behind basic auth, for the states a live
daemon cannot reach in a test's time (a whole hour judged). `gauge_series` is the
rollout_verdict gauge of two replicas in the cases a gate must tell apart, as OpenMetrics for a
real Prometheus.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_blocks import APPLIED, INSTANCES, Families, Probe, Scenario, gauge, healthy_probe

AT = "2026-11-01T02:30:00Z"  # the 1h window (01:00:07..02:00:07) is over: pass and fail are final
DURING = "2026-11-01T01:30:00Z"  # half the window gone: inconclusive, ask again later
GAUGE_AT = 1_793_500_000  # 2026-11-01T03:06:40Z: when the gauge's cases are queried
USER, PASSWORD = "gate", "s3cret-Pa55"


def timing_out(instance: str, t: int) -> Probe | None:
    """After the migration every probe times out: users cannot authenticate."""
    return Probe("timeout", None) if t > APPLIED else healthy_probe(instance, t)


SCENARIOS = [Scenario("healthy"), Scenario("broken", probe=timing_out)]
ASKED = {"pass": ("healthy", AT), "fail": ("broken", AT), "inconclusive": ("healthy", DURING)}


def verdict_documents(prometheus_url: str) -> dict[str, dict[str, Any]]:
    """state -> the JSON `rollout-monitor verdict` prints, asked of the real Prometheus."""
    return {state: ask(prometheus_url, job, at) for state, (job, at) in ASKED.items()}


def ask(prometheus_url: str, job: str, at: str) -> dict[str, Any]:
    """One `rollout-monitor verdict --format json` over 1h, as the daemon's /verdict answers it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "verdict", "--prometheus-url", prometheus_url,
         "--selector", f'job="{job}"', "--window", "1h", "--at", at, "--format", "json"],
        capture_output=True, text=True, check=False, env=env, timeout=120,
    )  # fmt: skip
    document: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == document["exit_code"], result.stderr
    return {**document, "source": "prometheus"}


def unavailable(document: dict[str, Any]) -> dict[str, Any]:
    """The daemon's 503 body when Prometheus cannot be asked: the same shape, exit code 4."""
    return {
        **document,
        "verdict": "inconclusive",
        "exit_code": 4,
        "error": "Prometheus at http://prometheus:9090: ConnectError: [Errno 111] Connection refused",
    }


@dataclass
class VerdictServer:
    """/verdict on 127.0.0.1: each request takes the next answer, the last one repeats."""

    answers: list[tuple[int, dict[str, Any]]]
    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The answer to one request, after the daemon's checks of credentials and window."""
        with self.lock:
            self.requests.append({"path": path, **headers})
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if headers.get("authorization") != expected:
                return 401, {"error": "unauthorized"}
            parts = urlsplit(path)
            window = parse_qs(parts.query).get("window", ["24h"])
            if parts.path != "/verdict" or window not in (["1h"], ["24h"]):
                return (404 if parts.path != "/verdict" else 400), {"error": "no"}
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@contextlib.contextmanager
def verdict_server(*answers: tuple[int, dict[str, Any]]) -> Iterator[VerdictServer]:
    """A VerdictServer running in a thread for the block, stopped after."""
    server = VerdictServer(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, document = server.next_answer(self.path, headers)
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `requests`."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# job -> instance -> window -> the replica's current result; "absent": no series at all.
GAUGE_CASES: dict[str, dict[str, dict[str, str]]] = {
    "all_pass": {"a": {"1h": "pass", "24h": "inconclusive"}, "b": {"1h": "pass", "24h": "fail"}},
    "one_fails": {"a": {"1h": "fail", "24h": "pass"}, "b": {"1h": "inconclusive", "24h": "pass"}},
    "both_fail": {"a": {"1h": "fail", "24h": "fail"}, "b": {"1h": "fail", "24h": "fail"}},
    "split": {"a": {"1h": "pass", "24h": "pass"}, "b": {"1h": "inconclusive", "24h": "pass"}},
    "undecided": {i: {"1h": "inconclusive", "24h": "pass"} for i in INSTANCES},
}


def gauge_series() -> str:
    """rollout_verdict for every case, every 15 s for the 10 minutes up to GAUGE_AT."""
    out = Families()
    for job, replicas in GAUGE_CASES.items():
        for instance, windows in replicas.items():
            for window, current in windows.items():
                for result in ("pass", "fail", "inconclusive"):
                    labels = (
                        ("job", job),
                        ("namespace", job),
                        ("container", "rollout-monitor"),
                        ("instance", instance),
                        ("window", window),
                        ("result", result),
                    )
                    for t in range(GAUGE_AT - 600, GAUGE_AT + 1, 15):
                        gauge(out, "rollout_verdict", labels, t, float(result == current))
    return out.text()
