"""Issue 21, findings 3: the probe against an https callback on 127.0.0.1 (a CA and a certificate
made by the real openssl): its certificate's expiry, the TLS version and cipher, the resolve
phase, the HTTP version, and the trust it is told to have."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pki import make_ca, make_leaf
from prometheus_client import CollectorRegistry

from monitor.checks.base import CheckFailed
from monitor.checks.callback import CallbackCheck, last_probe_families
from monitor.config.checks import CallbackSettings
from monitor.observe.metrics import Metrics
from monitor.observe.probe import CallbackProbe, ProbeResult
from monitor.observe.probelog import ProbeLog
from monitor.observe.readings import Readings

HOST = "127.0.0.1"


class Refusing(http.server.BaseHTTPRequestHandler):
    """The app refusing the test code, over TLS."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"error":"invalid_grant"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        """Quiet."""


@dataclass(frozen=True)
class Served:
    port: int
    ca: Path
    expires_at: float


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("tls")
    ca = make_ca(folder, "ca")
    cert, key = make_leaf(
        folder,
        "callback",
        ca,
        "subjectAltName=DNS:localhost,DNS:callback.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    )
    end = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-enddate"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer((HOST, 0), Refusing)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Served(
        server.server_address[1], ca[0], ssl.cert_time_to_seconds(end.removeprefix("notAfter="))
    )
    server.shutdown()
    server.server_close()


def probe(url: str, **settings: Any) -> ProbeResult:
    config = CallbackSettings.model_validate({"url": url, "timeout": "2s", **settings})
    return CallbackProbe(config).probe()


def test_an_https_callback_reports_its_tls_and_the_resolve_phase(https: Served) -> None:
    url = f"https://localhost:{https.port}/api/auth/callback/threads"
    result = probe(url, tls_config={"ca_file": str(https.ca)})
    assert (result.outcome, result.status, result.http_version) == ("success", 400, "HTTP/1.1")
    assert result.tls is not None
    assert result.tls.version in ("TLSv1.2", "TLSv1.3")
    assert result.tls.cipher
    assert result.tls.expires_at == https.expires_at
    assert result.phases["resolve"] > 0
    assert result.phases["tls"] > 0
    families = {f.name: f for f in last_probe_families(result)}
    expiry = families["rollout_auth_callback_ssl_earliest_cert_expiry_timestamp_seconds"]
    assert [s.value for s in expiry.samples] == [https.expires_at]
    [info] = families["rollout_auth_callback_tls_info"].samples
    assert info.labels == {"version": result.tls.version, "cipher": result.tls.cipher}
    assert [s.value for s in families["rollout_auth_callback_http_version"].samples] == [1.1]


def test_a_certificate_not_trusted_is_a_connection_error(https: Served) -> None:
    """certifi's bundle does not hold the test CA: the probe refuses the answer."""
    result = probe(f"https://{HOST}:{https.port}/cb")
    assert result.outcome == "connection_error"
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert result.tls is None


def test_insecure_skip_verify_reads_the_answer_but_no_expiry(https: Served) -> None:
    result = probe(f"https://{HOST}:{https.port}/cb", tls_config={"insecure_skip_verify": True})
    assert (result.outcome, result.status) == ("success", 400)
    assert result.tls is not None
    assert result.tls.expires_at is None
    names = {f.name for f in last_probe_families(result)}
    assert "rollout_auth_callback_tls_info" in names
    assert "rollout_auth_callback_ssl_earliest_cert_expiry_timestamp_seconds" not in names


def test_plain_http_has_no_tls_families_and_no_resolve_for_an_address() -> None:
    with socket.create_server((HOST, 0)) as listener:
        port = listener.getsockname()[1]
        threading.Thread(target=answer_once, args=(listener,), daemon=True).start()
        result = probe(f"http://{HOST}:{port}/cb")
    assert (result.outcome, result.phases["resolve"], result.tls) == ("success", 0.0, None)
    names = {f.name for f in last_probe_families(result)}
    assert not any("tls" in n or "ssl" in n for n in names)


def answer_once(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 401 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_a_name_with_several_addresses_is_tried_address_by_address(
    https: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """callback.test resolves to 127.0.0.3 (nothing listens) then 127.0.0.1: the probe connects
    to the second, as a client connecting by name would, and keeps the name for TLS."""
    real = socket.getaddrinfo

    def two_addresses(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "callback.test":
            stream = (socket.AF_INET, socket.SOCK_STREAM, 6, "")
            return [(*stream, ("127.0.0.3", port)), (*stream, ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    result = probe(f"https://callback.test:{https.port}/cb", tls_config={"ca_file": str(https.ca)})
    assert (result.outcome, result.status) == ("success", 400)


def test_a_ca_file_that_is_not_one_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="holds no certificate ssl can read"):
        CallbackSettings.model_validate({"tls_config": {"ca_file": str(bad)}})
    with pytest.raises(ValueError, match="not a regular file"):
        CallbackSettings.model_validate({"tls_config": {"ca_file": "/dev/zero"}})


def test_the_check_exports_the_tls_families(https: Served) -> None:
    registry = CollectorRegistry()
    settings = CallbackSettings.model_validate(
        {"url": f"https://{HOST}:{https.port}/cb", "tls_config": {"ca_file": str(https.ca)}}
    )
    check = CallbackCheck(CallbackProbe(settings), Metrics(registry), 4.0, ProbeLog(Readings()))
    try:
        families = check.run()
    except CheckFailed as failed:  # pragma: no cover - it answers 400: success
        families = failed.families
    names = {f.name for f in families}
    assert "rollout_auth_callback_ssl_earliest_cert_expiry_timestamp_seconds" in names
