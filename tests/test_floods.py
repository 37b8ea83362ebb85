"""Floods of the HTTP endpoint (issue 22, findings 1, 2 and 11, and the accept errors): clients
that pipeline requests and never read the answers, TLS connections that never start their
handshake, a request head far over the limit in one write, and a flood past the open-files
limit. Real clients on 127.0.0.1 (sockets, the ssl module, httpx) against the real exporter;
the floods that are measured (memory, file descriptors, the log) hit an exporter in a process
of its own (tests/served.py). Each flood is bounded in size and time and a scrape must be
answered within 1 s while it lasts."""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from served import HOST, registry

from monitor.http.exporter import Exporter


@pytest.fixture
def big() -> CollectorRegistry:
    return registry()


@pytest.fixture
def plain(big: CollectorRegistry) -> Iterator[Exporter]:
    served = Exporter(HOST, 0, big, lambda: True, changes=lambda: 0)
    served.start()
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def open_files() -> None:
    """Room for the floods' sockets in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 12000):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 12000), hard))


def test_a_request_head_over_16_kib_in_one_write_is_refused(plain: Exporter) -> None:
    """Finding 11: 10,000 headers (90 KB) in one write were answered 200; h11's size limit
    bounds only a head still incomplete."""
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
    head += b"".join(b"X-%d: v\r\n" % n for n in range(10_000)) + b"\r\n"
    assert len(head) > 90_000
    with socket.create_connection((HOST, plain.port), timeout=5) as sock:
        sock.sendall(head)
        answer = sock.recv(65536)
        assert answer.split(b" ")[1] == b"431", answer[:100]
        while chunk := sock.recv(65536):  # then the server closes the connection
            answer += chunk
