"""The verdict as a gate on the daemon's HTTP endpoint: /verdict, /gate/promote, /gate/rollback
and rollout_verdict, from the replica's own view of a rollout over a settable clock, or from a
Prometheus that cannot be asked; the real exporter (uvicorn) on 127.0.0.1, asked with httpx.

That the gate decides as `rollout-monitor verdict` on the same data is in test_verdict.py (it
holds the Prometheus with the generated rollouts)."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from prometheus_api import answer_by_query, hostile_prometheus, vector_body
from prometheus_client import CollectorRegistry
from worlds import Watching

from monitor.config.schema import BaselineSettings
from monitor.demo.postgres import free_port
from monitor.http.exporter import Exporter
from monitor.http.gates import MAX_BODY_BYTES
from monitor.http.webconfig import load_web_config
from monitor.judge.gate import FRESH_SECONDS, Gate
from monitor.judge.observation import Thresholds
from monitor.judge.rollout import CRITICAL_SECONDS, WINDOW_SECONDS
from monitor.observe.readings import Drift, Logins, SchemaHealth
from monitor.output.redact import Redactor

HOST = "127.0.0.1"
CRITERIA = 6


def rollout(*, failing: bool = False, minutes: int = 61) -> Watching:
    """A migration applied at the clock's start, every check healthy, a probe a minute for
    `minutes` minutes (every fifth failing with `failing`): at 61 the 1h window is behind."""
    world = Watching(
        thresholds=Thresholds(min_probes=20), fixed={"success_ratio": 1.0, "p95": "20ms"}
    )
    world.readings.publish("schema", SchemaHealth(True, True, trigger_missing=False))
    world.readings.publish("drift", Drift(0.0, 0.0))
    world.readings.publish("activity", Logins(5.0, 0.0))
    world.publish("applied", world.clock.now)
    for minute in range(minutes):
        world.probe(0.012, "server_error" if failing and minute % 5 == 0 else "success", after=60)
    return world


class Served:
    """A gate served by the real exporter, and a client for it."""

    def __init__(self, gate: Gate, web: Path | None = None) -> None:
        self.exporter = Exporter(
            HOST, 0, CollectorRegistry(), lambda: True, load_web_config(web), gate=gate
        )
        self.exporter.start()
        self.client = httpx.Client(base_url=f"http://{HOST}:{self.exporter.port}", timeout=30)

    def ask(self, path: str, method: str = "GET", **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """Status and JSON document."""
        response = self.client.request(method, path, **kwargs)
        assert response.headers["content-type"] == "application/json", response.text
        return response.status_code, response.json()

    def close(self) -> None:
        self.client.close()
        self.exporter.stop()


@pytest.fixture
def serve() -> Iterator[Any]:
    served: list[Served] = []

    def start(gate: Gate, web: Path | None = None) -> Served:
        served.append(Served(gate, web))
        return served[-1]

    yield start
    for one in served:
        one.close()


def own_gate(world: Watching) -> Gate:
    """The gate of a daemon without Prometheus: its own view."""
    return Gate(world.judgement, BaselineSettings(), Redactor())


def test_a_healthy_hour_behind_promotes_and_does_not_roll_back(serve: Any) -> None:
    served = serve(own_gate(rollout()))
    status, document = served.ask("/verdict?window=1h")
    assert (status, document["verdict"], document["source"]) == (200, "pass", "replica")
    assert document["exit_code"] == 0
    assert document["window"]["complete"] is True
    assert [c["result"] for c in document["criteria"]] == ["pass"] * CRITERIA
    status, document = served.ask("/gate/promote?window=1h")
    assert (status, document["gate"], document["allowed"]) == (200, "promote", True)
    assert document["reason"] == "pass: every criterion passed over the whole 1h window"
    status, document = served.ask("/gate/rollback?window=1h")
    assert (status, document["allowed"], document["verdict"]) == (409, False, "pass")


def test_a_pass_not_yet_final_neither_promotes_nor_rolls_back(serve: Any) -> None:
    """The same healthy hour asked about the 24h window (the default): not over, inconclusive."""
    served = serve(own_gate(rollout()))
    status, document = served.ask("/verdict")
    assert (status, document["verdict"], document["exit_code"]) == (200, "inconclusive", 3)
    assert document["window"] == {
        "name": "24h",
        "seconds": WINDOW_SECONDS,
        "start": document["window"]["start"],
        "end": document["window"]["end"],
        "complete": False,
    }
    for path in ("/gate/promote", "/gate/rollback"):
        status, document = served.ask(path)
        assert (status, document["allowed"]) == (409, False)
        why = document["reason"].split("; ")
        assert why[0] == "inconclusive over the 24h window: migration_completed: passing so far"
        assert why[1].startswith("the window is not over (applied")
        assert document["reason"].count("passing so far; the window is not over") == CRITERIA


def test_a_failing_rollout_rolls_back_before_its_window_is_over(serve: Any) -> None:
    served = serve(own_gate(rollout(failing=True, minutes=30)))
    status, document = served.ask("/gate/rollback?window=1h")
    assert (status, document["allowed"], document["verdict"]) == (200, True, "fail")
    assert document["window"]["complete"] is False
    assert document["reason"] == (
        "fail over the 1h window: users_can_authenticate: callback success 80.00% of 30"
        " probes, below the 99.00% objective; error_rate_within_baseline: errors 20.00% of 30"
        " probes, limit 1.00%"
    )
    status, document = served.ask("/gate/promote?window=1h")
    assert (status, document["allowed"]) == (409, False)


def test_post_answers_as_get_and_its_body_is_bounded(serve: Any) -> None:
    """Flagger POSTs its webhooks with a JSON payload; a body past the bound is refused."""
    served = serve(own_gate(rollout()))
    payload = {"name": "app", "namespace": "prod", "phase": "Promoting", "metadata": {}}
    assert served.ask("/gate/promote?window=1h", "POST", json=payload)[0] == 200
    assert served.ask("/gate/rollback?window=1h", "POST", json=payload)[0] == 409
    too_big = served.client.post("/gate/promote?window=1h", content=b"x" * (MAX_BODY_BYTES + 1))
    assert too_big.status_code == 413
    assert served.client.put("/gate/promote").status_code == 405
    assert served.client.put("/gate/promote").headers["allow"] == "GET, HEAD, POST"
    assert served.client.post("/metrics").status_code == 405


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("window=2h", "window must be one of 1h, 24h, not '2h'"),
        ("window=1h&window=24h", "window given more than once"),
        ("windw=1h", "unknown parameter 'windw': only window is known"),
    ],
)
def test_a_window_not_known_is_a_bad_request(serve: Any, query: str, error: str) -> None:
    served = serve(own_gate(rollout()))
    for path in ("/verdict", "/gate/promote", "/gate/rollback"):
        assert served.ask(f"{path}?{query}") == (400, {"error": error})


def test_the_gate_paths_are_behind_basic_auth(serve: Any, tmp_path: Path) -> None:
    password = "c0rrect-h0rse-battery"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  flagger: {hashed}\n")
    served = serve(own_gate(rollout()), web)
    for method in ("GET", "POST"):
        assert served.client.request(method, "/gate/promote?window=1h").status_code == 401
        answer = served.client.request(
            method, "/gate/promote?window=1h", auth=("flagger", password)
        )
        assert answer.status_code == 200


class SlowPrometheus(http.server.BaseHTTPRequestHandler):
    """Prometheus's query API answering every query with an empty vector, `delay` late."""

    delay = 0.0
    queries: list[str] = []  # noqa: RUF012  # one server per test, reset by it

    def do_GET(self) -> None:  # http.server's name
        self.queries.append(self.path)
        time.sleep(self.delay)
        body = json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": []}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *_: Any) -> None:
        """Quiet."""


@pytest.fixture
def slow_prometheus() -> Iterator[str]:
    SlowPrometheus.queries = []
    SlowPrometheus.delay = 0.3
    server = socketserver.ThreadingTCPServer((HOST, 0), SlowPrometheus)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_prometheus_unreachable_is_503_with_the_same_shape_and_both_gates_closed(
    serve: Any,
) -> None:
    url = f"http://gate:s3cret-pass@{HOST}:{free_port()}"  # nothing listens there
    settings = BaselineSettings(prometheus_url=url, prometheus_selector='job="app"')
    served = serve(Gate(rollout().judgement, settings, Redactor()))
    status, document = served.ask("/verdict?window=1h")
    assert status == 503
    assert set(document) == {
        "schema_version", "verdict", "exit_code", "window", "evaluated_at", "applied_at",
        "started_at", "baseline", "thresholds", "criteria", "source", "error",
    }  # fmt: skip
    assert (document["verdict"], document["exit_code"], document["source"]) == (
        "inconclusive",
        4,
        "prometheus",
    )
    assert document["criteria"] == []
    assert document["error"].startswith("could not ask Prometheus: Prometheus at http://gate:")
    assert "s3cret-pass" not in json.dumps(document)
    for path in ("/gate/promote?window=1h", "/gate/rollback?window=1h"):
        status, document = served.ask(path)
        assert (status, document["allowed"]) == (409, False)
        assert document["reason"] == document["error"]
        assert "s3cret-pass" not in json.dumps(document)


def test_a_flood_of_gate_requests_costs_prometheus_one_evaluation(
    serve: Any, slow_prometheus: str
) -> None:
    """Forty requests at once for the same window, Prometheus answering each query 0.3 s late:
    one evaluation (its queries asked one after another) answers them all, and /metrics is
    served meanwhile."""
    settings = BaselineSettings(prometheus_url=slow_prometheus)
    served = serve(Gate(rollout().judgement, settings, Redactor()))
    answers: list[int] = []

    def ask() -> None:
        with httpx.Client(base_url=str(served.client.base_url), timeout=60) as client:
            answers.append(client.get("/verdict?window=1h").status_code)

    threads = [threading.Thread(target=ask) for _ in range(40)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    scrape = served.client.get("/metrics")
    assert scrape.status_code == 200
    scraped_in = time.monotonic() - started
    for thread in threads:
        thread.join(60)
    assert answers == [200] * 40
    evaluations = [q for q in SlowPrometheus.queries if "applied_timestamp" in q]
    elapsed = time.monotonic() - started
    assert len(evaluations) <= 1 + int(elapsed // FRESH_SECONDS)
    assert scraped_in < 5 * SlowPrometheus.delay  # not queued behind the evaluation


def test_rollout_verdict_is_always_present() -> None:
    """Before anything is known, both windows inconclusive; after a healthy hour, 1h passes."""
    for world, expected in ((Watching(), "inconclusive"), (rollout(), "pass")):
        registry = CollectorRegistry()
        registry.register(world.judgement)
        found = {
            (s.labels["window"], s.labels["result"]): s.value
            for family in registry.collect()
            for s in family.samples
            if s.name == "rollout_verdict"
        }
        assert found == {
            (window, result): float(result == (expected if window == "1h" else "inconclusive"))
            for window in ("1h", "24h")
            for result in ("pass", "fail", "inconclusive")
        }


def test_the_replicas_window_ends_an_hour_after_the_applied_time() -> None:
    """Probes after the 1h window do not count in it: a failure at +61 min leaves 1h passing."""
    world = rollout()
    world.probe(0.012, "server_error", after=60)
    verdict = world.judgement.verdict("1h", CRITICAL_SECONDS)
    assert verdict.result == "pass"
    assert verdict.window.complete
    assert world.judgement.verdict("24h", WINDOW_SECONDS).result == "inconclusive"


def test_a_window_is_judged_on_what_was_seen_by_its_end() -> None:
    """Rolled back and a user missing a field two hours after the migration: the 1h window,
    over by then, still passes on the state and readings of its end (as the verdict reads the
    gauges at the window's end); the 24h window fails."""
    world = rollout()
    world.clock.now += 3600
    world.readings.publish("activity", Logins(9.0, 1.0))
    world.publish("rolled_back")
    world.probe(0.012)
    assert world.judgement.verdict("1h", CRITICAL_SECONDS).result == "pass"
    failed = {
        d.criterion
        for d in world.judgement.verdict("24h", WINDOW_SECONDS).decisions
        if d.result == "fail"
    }
    assert failed == {"migration_completed", "new_fields_populated"}


def test_a_migration_time_no_report_can_print_is_503_not_a_crash(serve: Any) -> None:
    """A started time in the year 160413 (5e12 s) passed the client's checks and crashed the
    report drawn from it; the daemon's gate now refuses it as `verdict` does."""
    started = vector_body((1793494800.0, "5000000000000"))
    applied = vector_body((1793494800.0, "1793494807"))
    empty = b'{"status": "success", "data": {"resultType": "vector", "result": []}}'
    answers = {
        "rollout_migration_applied_timestamp_seconds": applied,
        "rollout_migration_started_timestamp_seconds": started,
    }
    with hostile_prometheus(answer_by_query(answers, empty)) as prometheus:
        settings = BaselineSettings(prometheus_url=prometheus.url, prometheus_selector='job="a"')
        served = serve(Gate(rollout().judgement, settings, Redactor()))
        status, document = served.ask("/verdict?window=1h")
    assert (status, document["exit_code"]) == (503, 4)
    assert document["error"].endswith("the migration's started time is out of range (5e+12)")
