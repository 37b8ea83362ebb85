"""Floods of the HTTP endpoint (issue 22, findings 1, 2 and 11, and the accept errors): clients
that pipeline requests and never read the answers, TLS connections that never start their
handshake, a request head far over the limit in one write, and a flood past the open-files
limit. Real clients on 127.0.0.1 (sockets, the ssl module, httpx) against the real exporter;
the floods that are measured (memory, file descriptors, the log) hit an exporter in a process
of its own (tests/served.py). Each flood is bounded in size and time and a scrape must be
answered within 1 s while it lasts."""

from __future__ import annotations

import contextlib
import errno
import resource
import selectors
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pki import make_ca, make_leaf
from prometheus_client import CollectorRegistry
from served import HOST, Served, registry

from monitor.http import guard
from monitor.http.exporter import Exporter
from monitor.http.webconfig import load_web_config

PIPELINED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 100


@pytest.fixture
def big() -> CollectorRegistry:
    return registry()


@pytest.fixture
def plain(big: CollectorRegistry) -> Iterator[Exporter]:
    served = Exporter(HOST, 0, big, lambda: True, changes=lambda: 0)
    served.start()
    yield served
    served.stop()


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The CA's certificate, the server's certificate and key."""
    ca = make_ca(tmp_path, "ca")
    cert, key = make_leaf(tmp_path, "server", ca, "subjectAltName=IP:127.0.0.1")
    return ca[0], cert, key


@pytest.fixture(autouse=True)
def open_files() -> None:
    """Room for the floods' sockets in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 12000):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 12000), hard))


def scrape(url: str, verify: ssl.SSLContext | bool = False) -> tuple[int, float, str]:
    """A fresh connection's scrape: status, seconds, body."""
    started = time.monotonic()
    with httpx.Client(trust_env=False, timeout=5.0, verify=verify) as http:
        response = http.get(url)
    return response.status_code, time.monotonic() - started, response.text


def pipeliner(port: int) -> socket.socket:
    """A client that sends 100 scrapes at once and never reads an answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((HOST, port))
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        sock.send(PIPELINED)
    return sock


def reset_by_server(sock: socket.socket) -> bool:
    """Whether the server aborted the connection (a reset, unread answers dropped)."""
    try:
        sock.getpeername()
    except OSError:  # ENOTCONN: reset (a connection closed by a FIN keeps its peer's name)
        return True
    return False


def test_clients_that_never_read_leave_room_for_a_scrape(plain: Exporter) -> None:
    """Finding 1: 140 connections pipelining scrapes without reading the answers were never
    idle, so the cap refused every new scrape (ConnectionResetError) for as long as they
    stayed."""
    flood = [pipeliner(plain.port) for _ in range(200)]
    try:
        time.sleep(5)  # the answers fill the buffers (11,000 of them): then each waits
        status, took, body = scrape(f"http://{HOST}:{plain.port}/metrics")
    finally:
        for sock in flood:
            sock.close()
    print(f"a scrape in {took * 1000:.0f} ms during 200 clients that never read")
    assert status == 200
    assert "rollout_test_answer 42.0" in body
    assert took < 1


def test_at_the_cap_idle_connections_go_before_stuck_writers(
    plain: Exporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing an idle connection loses nothing; a stuck writer may be a slow reader mid-answer:
    the idle ones make room first, the oldest first."""
    monkeypatch.setattr(guard, "MAX_CONNECTIONS", 30)
    writers = [pipeliner(plain.port) for _ in range(10)]
    try:
        time.sleep(3)  # their answers fill the buffers
        idle = [socket.create_connection((HOST, plain.port), timeout=5) for _ in range(20)]
        time.sleep(0.2)
        status, _, _ = scrape(f"http://{HOST}:{plain.port}/metrics")
        time.sleep(0.2)
        reset_writers = sum(reset_by_server(sock) for sock in writers)
        reset_idle = [reset_by_server(sock) for sock in idle]
    finally:
        for sock in writers + idle:
            sock.close()
    assert status == 200
    assert reset_writers == 0
    assert reset_idle[0]  # the oldest idle one made room
    assert not any(reset_idle[1:])


def test_an_answer_nobody_reads_is_cut_after_the_write_deadline(
    plain: Exporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 1: uvicorn waits for a paused write to drain forever."""
    monkeypatch.setattr(guard, "WRITE_TIMEOUT", 1.0, raising=False)
    with pipeliner(plain.port) as sock:
        time.sleep(3)
        assert reset_by_server(sock)


def test_tls_clients_that_never_read_leave_room_and_their_memory_goes(
    pki: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Finding 1 over TLS: the SSL layer's buffers make a stuck writer cost more (about 0.9 MB
    each here); the write deadline gives it back."""
    ca, cert, key = pki
    verify = ssl.create_default_context(cafile=str(ca))
    served = Served(tmp_path / "log", cert, key, write_timeout=4)
    url = f"https://{HOST}:{served.port}/metrics"
    flood: list[socket.socket] = []
    try:
        assert scrape(url, verify)[0] == 200
        before = served.rss_mb()
        for _ in range(200):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((HOST, served.port))
            wrapped = verify.wrap_socket(sock, server_hostname=HOST)
            wrapped.setblocking(False)
            with contextlib.suppress(ssl.SSLWantWriteError, BlockingIOError):
                wrapped.send(PIPELINED)
            flood.append(wrapped)
        time.sleep(2)
        status, took, _ = scrape(url, verify)
        during = served.rss_mb()
        time.sleep(5)  # past the write deadline: the server reset them all
        after, fds = served.rss_mb(), served.fds()
    finally:
        for sock in flood:
            sock.close()
        served.stop()
    print(f"TLS pipeliners: RSS {before:.1f} MB, {during:.1f} during, {after:.1f} after the")
    print(f"write deadline ({fds} fds); a scrape in {took * 1000:.0f} ms during")
    assert status == 200
    assert took < 1
    assert fds < 20
    assert after - before < 10


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


def test_a_tls_connection_that_never_sends_a_client_hello_is_closed(
    pki: tuple[Path, Path, Path],
    big: CollectorRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding 2: asyncio's handshake before the guard had its own 60 s timeout, outside the
    head's deadline; now the guarded protocol's handshake has HANDSHAKE_TIMEOUT."""
    monkeypatch.setattr(guard, "HANDSHAKE_TIMEOUT", 0.5, raising=False)
    _, cert, key = pki
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    served = Exporter(HOST, 0, big, lambda: True, load_web_config(web))
    served.start()
    try:
        with socket.create_connection((HOST, served.port), timeout=5) as sock:
            started = time.monotonic()
            sock.settimeout(5)
            try:
                closed = sock.recv(1) == b""
            except ConnectionResetError:
                closed = True
            took = time.monotonic() - started
    finally:
        served.stop()
    assert closed
    assert took < 3


def test_silent_tls_connections_are_capped_and_their_memory_comes_back(
    pki: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Finding 2: 4,000 connections that sent no ClientHello held 4,008 fds and grew the
    server from 70 MB to 1,264 MB (256 KiB of buffer each), still 1.3 GB after they left. Now
    a flood of 5,000 costs what the cap's 128 cost, and its memory goes back after it."""
    ca, cert, key = pki
    verify = ssl.create_default_context(cafile=str(ca))
    served = Served(tmp_path / "log", cert, key)
    url = f"https://{HOST}:{served.port}/metrics"
    flood: list[socket.socket] = []
    try:
        for _ in range(3):
            assert scrape(url, verify)[0] == 200
        before = served.rss_mb()
        flood += silent(served.port, guard.MAX_CONNECTIONS)
        capped = served.rss_mb()  # the cap's worth
        flood += silent(served.port, 5000)
        status, took, _ = scrape(url, verify)
        during, fds = served.rss_mb(), served.fds()
        for sock in flood:
            sock.close()
        flood.clear()
        left = time.monotonic()
        after = served.rss_mb()
        while after - before >= 10 and time.monotonic() - left < 15:
            time.sleep(0.5)  # the server sees them go; a second later it trims its heap
            after = served.rss_mb()
        back_in = time.monotonic() - left
        status_after = scrape(url, verify)[0]
    finally:
        for sock in flood:
            sock.close()
        served.stop()
    print(f"RSS {before:.1f} MB, {capped:.1f} at the cap, {during:.1f} during the flood,")
    print(f"{after:.1f} after, {back_in:.1f} s after they left; {fds} fds during;")
    print(f"a scrape in {took * 1000:.0f} ms during the flood")
    assert (status, status_after) == (200, 200)
    assert took < 1
    assert fds < guard.MAX_CONNECTIONS + 40
    assert during - capped < 10
    assert after - before < 10


def silent(port: int, count: int) -> list[socket.socket]:
    """Connections that never send a byte (no ClientHello), once the server took them in.
    Connected without blocking: the server's listen queue is the cap, and the kernel retries
    the SYNs it drops (a blocking connect would wait a second for each)."""
    flood, waiting = [], selectors.DefaultSelector()
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        assert sock.connect_ex((HOST, port)) in (0, errno.EINPROGRESS)
        waiting.register(sock, selectors.EVENT_WRITE)
        flood.append(sock)
    deadline = time.monotonic() + 20
    while waiting.get_map() and time.monotonic() < deadline:
        for key, _ in waiting.select(0.5):
            waiting.unregister(key.fileobj)
    assert not waiting.get_map(), f"{len(waiting.get_map())} connections still waiting"
    time.sleep(1)
    return flood


def test_accept_errors_past_the_open_files_limit_are_a_few_log_lines(tmp_path: Path) -> None:
    """The accept errors: at the open-files limit asyncio logged `socket.accept() out of system
    resource` with a traceback for every retry, 170,171 lines in 40 s."""
    served = Served(tmp_path / "log", prefix=("prlimit", "--nofile=64"))
    url = f"http://{HOST}:{served.port}/metrics"
    flood: list[socket.socket] = []
    try:
        for _ in range(400):
            sock = socket.socket()
            sock.setblocking(False)
            error = sock.connect_ex((HOST, served.port))
            assert error in (0, errno.EINPROGRESS)
            flood.append(sock)
        time.sleep(4)
        for sock in flood:
            sock.close()
        flood.clear()
        time.sleep(1.5)  # asyncio tries accept() again after a second
        status, took, _ = scrape(url)
    finally:
        for sock in flood:
            sock.close()
        lines = served.stop()
    print(f"{len(lines)} log lines; scrape after: {status} in {took:.3f} s")
    assert status == 200
    assert len(lines) <= 5, lines[:20]
    assert not any("Traceback" in line for line in lines)
