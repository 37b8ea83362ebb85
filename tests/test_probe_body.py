"""Issue 21, finding 2: the probe read the whole body into memory, with no limit (one `once` peaked
at 1.1-1.3 GB; `run` grew to 6.8 GB; a gzip bomb took 4.6 s against a 3 s deadline). Now the body
is read to checks.callback.body_size_limit, decompressed within it, and the probe ends by its
deadline: real servers on 127.0.0.1 sending what a broken or hostile callback would."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from callback_servers import RunningServer, ServerState, read_request, serve

from monitor.config.checks import CallbackSettings
from monitor.observe.probe import CallbackProbe, ProbeResult

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1 << 20
DEADLINE = 2.0
# 256 MiB of zeros, gzipped: 255 KiB on the wire.
BOMB = gzip.compress(b"\0" * (256 << 20), compresslevel=9)


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def endless_chunks(conn: socket.socket, state: ServerState) -> None:
    """A chunked body that never ends (64 KiB chunks until the client leaves)."""
    if read_request(conn, state) is None:
        return
    conn.sendall(head(200, {"Transfer-Encoding": "chunked"}))
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    while not state.stopping.is_set():
        conn.sendall(chunk)


def huge_length(conn: socket.socket, state: ServerState) -> None:
    """Content-Length of 10 GB, and data as fast as it is read."""
    if read_request(conn, state) is None:
        return
    conn.sendall(head(200, {"Content-Length": str(10 * 10**9)}))
    while not state.stopping.is_set():
        conn.sendall(b"y" * 0x10000)


def http10_until_close(conn: socket.socket, state: ServerState) -> None:
    """An HTTP/1.0 answer without a length: the body runs until the connection closes."""
    if read_request(conn, state) is None:
        return
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    while not state.stopping.is_set():
        conn.sendall(b"z" * 0x10000)


def gzip_bomb(conn: socket.socket, state: ServerState) -> None:
    """255 KiB of gzip that inflates to 256 MiB."""
    if read_request(conn, state) is None:
        return
    conn.sendall(head(400, {"Content-Encoding": "gzip", "Content-Length": str(len(BOMB))}))
    conn.sendall(BOMB)


def not_gzip(conn: socket.socket, state: ServerState) -> None:
    """Says gzip, sends something else."""
    if read_request(conn, state) is None:
        return
    conn.sendall(head(400, {"Content-Encoding": "gzip", "Content-Length": "9"}) + b"not gzip!")


def small_gzip(conn: socket.socket, state: ServerState) -> None:
    """A healthy app's refusal, gzipped."""
    if read_request(conn, state) is None:
        return
    body = zlib.compress(json.dumps({"error": "invalid_grant"}).encode())
    conn.sendall(head(400, {"Content-Encoding": "deflate", "Content-Length": str(len(body))}))
    conn.sendall(body)


def probe(behaviour: Callable[[socket.socket, ServerState], None]) -> tuple[ProbeResult, float]:
    with serve(behaviour) as server:
        return timed(server)


def timed(server: RunningServer) -> tuple[ProbeResult, float]:
    settings = CallbackSettings.model_validate({"url": server.url, "timeout": f"{DEADLINE}s"})
    started = time.perf_counter()
    result = CallbackProbe(settings).probe()
    return result, time.perf_counter() - started


@pytest.mark.parametrize(
    ("behaviour", "status", "detail"),
    [
        (endless_chunks, 200, f"the body passed {LIMIT} bytes as sent"),
        (huge_length, 200, f"the body passed {LIMIT} bytes as sent"),
        (http10_until_close, 200, f"the body passed {LIMIT} bytes as sent"),
        (gzip_bomb, 400, f"the body passed {LIMIT} bytes decompressed"),
    ],
)
def test_a_body_past_the_limit_is_cut_off_and_is_its_own_outcome(
    behaviour: Callable[[socket.socket, ServerState], None], status: int, detail: str
) -> None:
    result, waited = probe(behaviour)
    assert (result.outcome, result.status, result.detail) == ("body_too_large", status, detail)
    assert waited < DEADLINE  # cut off, not timed out


def test_a_body_that_does_not_decompress_is_its_own_outcome() -> None:
    result, _ = probe(not_gzip)
    assert (result.outcome, result.status) == ("bad_body", 400)
    assert result.detail == "the body is not valid gzip"


def test_a_small_compressed_body_is_read() -> None:
    result, _ = probe(small_gzip)
    assert (result.outcome, result.status) == ("success", 400)


def test_memory_stays_flat_whatever_the_callback_sends() -> None:
    """Twenty hostile probes in a fresh interpreter: its peak RSS grows by a few MiB, not by the
    gigabytes the old probe read (each of these bodies is 10 GB or endless, or 256 MiB inflated)."""
    probes = 5
    code = f"""
import resource, socket, sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from callback_servers import serve
from test_probe_body import endless_chunks, huge_length, http10_until_close, gzip_bomb, timed
for behaviour in (endless_chunks, huge_length, http10_until_close, gzip_bomb):
    with serve(behaviour) as server:
        timed(server)  # warm: imports, the TLS context, the first buffers
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcomes = {{timed(server)[0].outcome for _ in range({probes})}}
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(behaviour.__name__, ",".join(sorted(outcomes)), (after - before) // 1024)
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert [name for name, _, _ in lines] == [
        "endless_chunks", "huge_length", "http10_until_close", "gzip_bomb"
    ]  # fmt: skip
    for name, outcomes, grown in lines:
        assert outcomes == "body_too_large", name
        assert int(grown) <= 8, f"{name}: peak RSS grew {grown} MiB over {probes} probes"
