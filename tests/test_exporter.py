"""The HTTP endpoint, served for real on 127.0.0.1 and read with httpx."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge

from monitor.http.exporter import Exporter

HOST = "127.0.0.1"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@dataclass
class RunningExporter:
    """A started exporter, the switch its readiness reads, and a client pointed at it."""

    exporter: Exporter
    ready: threading.Event
    client: httpx.Client


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry holding one known gauge."""
    registry = CollectorRegistry()
    Gauge("rollout_test_answer", "A known value.", ["kind"], registry=registry).labels("known").set(
        42
    )
    return registry


@pytest.fixture
def running(registry: CollectorRegistry) -> Iterator[RunningExporter]:
    ready = threading.Event()
    exporter = Exporter(HOST, 0, registry, ready.is_set)
    exporter.start()
    base_url = f"http://{HOST}:{exporter.port}"
    try:
        with httpx.Client(base_url=base_url, timeout=5.0, trust_env=False) as client:
            yield RunningExporter(exporter, ready, client)
    finally:
        exporter.stop()


def test_metrics_serves_the_prometheus_text_format(running: RunningExporter) -> None:
    response = running.client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in response.headers
    lines = response.text.splitlines()
    assert "# TYPE rollout_test_answer gauge" in lines
    assert 'rollout_test_answer{kind="known"} 42.0' in lines
    assert "# EOF" not in lines


def test_metrics_serves_openmetrics_when_asked(running: RunningExporter) -> None:
    response = running.client.get(
        "/metrics", headers={"Accept": OPENMETRICS, "Accept-Encoding": "identity"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(OPENMETRICS + ";")
    assert 'rollout_test_answer{kind="known"} 42.0' in response.text.splitlines()
    assert response.text.endswith("# EOF\n")


def test_metrics_are_gzipped_when_asked(running: RunningExporter) -> None:
    plain = running.client.get("/metrics", headers={"Accept-Encoding": "identity"}).content
    with running.client.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
        encoding = r.headers.get("Content-Encoding")
        length = r.headers.get("Content-Length")
    assert encoding == "gzip"
    assert length == str(len(raw))
    assert gzip.decompress(raw) == plain


def test_healthz_is_ok(running: RunningExporter) -> None:
    response = running.client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")


def test_readyz_is_503_until_ready_then_200(running: RunningExporter) -> None:
    assert running.client.get("/readyz").status_code == 503
    assert running.client.get("/readyz").status_code == 503
    running.ready.set()
    response = running.client.get("/readyz")
    assert (response.status_code, response.text) == (200, "ready\n")


def test_landing_page_links_to_every_endpoint(running: RunningExporter) -> None:
    response = running.client.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    for path in ("/metrics", "/healthz", "/readyz"):
        assert f'href="{path}"' in response.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/metrics?debug=1", 200),
        ("/nope", 404),
        ("/metrics/", 404),
        ("/metricsz", 404),
        ("/index.html", 404),
    ],
)
def test_only_known_paths_are_served(running: RunningExporter, path: str, status: int) -> None:
    assert running.client.get(path).status_code == status


def test_port_is_the_one_actually_bound(registry: CollectorRegistry) -> None:
    exporter = Exporter(HOST, 0, registry, lambda: True)
    try:
        assert exporter.port != 0
        with pytest.raises(OSError, match="in use"):
            socket.create_server((HOST, exporter.port))
    finally:
        exporter.start()
        exporter.stop()


def test_stop_releases_the_port(registry: CollectorRegistry) -> None:
    exporter = Exporter(HOST, 0, registry, lambda: True)
    exporter.start()
    port = exporter.port
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        assert client.get(f"http://{HOST}:{port}/healthz").status_code == 200
        exporter.stop()
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://{HOST}:{port}/healthz")
    with socket.create_server((HOST, port)) as rebound:
        assert rebound.getsockname()[1] == port


def test_stop_without_start_releases_the_port_at_once(registry: CollectorRegistry) -> None:
    """What serve() does when opening the pool fails after the port was bound."""
    exporter = Exporter(HOST, 0, registry, lambda: True)
    port = exporter.port
    stopper = threading.Thread(target=exporter.stop)
    stopper.start()
    stopper.join(timeout=5)
    assert not stopper.is_alive()
    with socket.create_server((HOST, port)) as rebound:
        assert rebound.getsockname()[1] == port
