"""TLS and basic auth from a web-config file: real certificates, a real server, read with httpx."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
from databases import FreshDatabase
from pki import make_ca, make_leaf, openssl
from prometheus_client import CollectorRegistry, Gauge

from monitor.config.loading import ConfigError
from monitor.demo.postgres import free_port
from monitor.http.exporter import Exporter
from monitor.http.webconfig import WebConfig, load_web_config
from monitor.output.logs import configure_logging
from monitor.output.redact import Redactor

HOST = "127.0.0.1"
USER = "prometheus"
PASSWORD = "c0rrect-h0rse-battery"
# Cost 4, the lowest: the tests check behaviour, not bcrypt's slowness.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for 127.0.0.1 it signed, and a client certificate it signed."""

    folder: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "ca")
    server = make_leaf(
        folder, "server", ca, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"
    )
    client = make_leaf(folder, "client", ca, "extendedKeyUsage=clientAuth")
    other_ca, _ = make_ca(folder, "other-ca")
    return Pki(folder, ca[0], *server, *client, other_ca)


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("rollout_test_answer", "A known value.", registry=registry).set(42)
    return registry


Serve = Callable[[str], str]


@pytest.fixture
def serve(tmp_path: Path, registry: CollectorRegistry) -> Iterator[Serve]:
    """Start the real exporter with a web-config file of this YAML; its base URL."""
    exporters: list[Exporter] = []

    def start(yaml_text: str) -> str:
        path = tmp_path / f"web-{len(exporters)}.yml"
        path.write_text(yaml_text)
        web = load_web_config(path)
        exporter = Exporter(HOST, 0, registry, lambda: True, web)
        exporters.append(exporter)
        exporter.start()
        scheme = "https" if web is not None and web.tls_server_config else "http"
        return f"{scheme}://{HOST}:{exporter.port}"

    yield start
    for exporter in exporters:
        exporter.stop()


def trusting(ca: Path, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A client context that trusts ca and, if given, presents a client certificate."""
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def get(url: str, verify: ssl.SSLContext | bool = False, **kwargs: object) -> httpx.Response:
    with httpx.Client(verify=verify, trust_env=False, timeout=5.0) as client:
        return client.get(url, **kwargs)  # type: ignore[arg-type]


def tls_yaml(pki: Pki, extra: str = "") -> str:
    return (
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        + extra
    )


def test_https_serves_metrics_to_a_client_trusting_the_ca(pki: Pki, serve: Serve) -> None:
    url = serve(tls_yaml(pki))
    response = get(f"{url}/metrics", verify=trusting(pki.ca))
    assert response.status_code == 200
    assert "rollout_test_answer 42.0" in response.text.splitlines()
    assert response.http_version == "HTTP/1.1"
    assert url.startswith("https://")


def test_plain_http_to_the_tls_port_gets_no_answer(pki: Pki, serve: Serve) -> None:
    url = serve(tls_yaml(pki)).replace("https://", "http://")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        get(f"{url}/metrics")


def test_a_client_not_trusting_the_ca_refuses_the_server(pki: Pki, serve: Serve) -> None:
    url = serve(tls_yaml(pki))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get(f"{url}/metrics", verify=trusting(pki.other_ca))


def test_server_still_answers_after_failed_handshakes(pki: Pki, serve: Serve) -> None:
    """A bad client costs its own connection only, never the server."""
    url = serve(tls_yaml(pki))
    for _ in range(3):
        with pytest.raises(httpx.HTTPError):
            get(url.replace("https://", "http://"))
    assert get(f"{url}/healthz", verify=trusting(pki.ca)).status_code == 200


def test_clients_that_break_off_cost_one_json_event_at_most_never_a_traceback(
    pki: Pki, serve: Serve, capfd: pytest.CaptureFixture[str]
) -> None:
    """Finding 7: a client gone mid-handshake (SSLEOFError) printed ~30 raw traceback lines."""
    stream = io.StringIO()
    configure_logging("info", "json", Redactor(), stream=stream)
    url = serve(tls_yaml(pki))
    port = int(url.rsplit(":", 1)[1])
    for payload in (
        b"",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET / HTTP/1.1\r\n\r\n",
    ):
        with socket.create_connection((HOST, port), timeout=5) as sock:
            sock.sendall(payload)
    with (  # gone in the middle of its request
        socket.create_connection((HOST, port), timeout=5) as raw,
        trusting(pki.ca).wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.sendall(b"GET /metr")  # then gone without a TLS close_notify: SSLEOFError
    time.sleep(0.5)
    assert get(f"{url}/healthz", verify=trusting(pki.ca)).status_code == 200
    for line in stream.getvalue().splitlines():
        json.loads(line)  # every line one event
    assert "Traceback" not in capfd.readouterr().err  # and nothing raw on stderr


def test_min_version_tls13_refuses_a_tls12_client(pki: Pki, serve: Serve) -> None:
    url = serve(tls_yaml(pki, "  min_version: TLS13\n"))
    old = trusting(pki.ca)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.ConnectError):
        get(f"{url}/metrics", verify=old)
    assert get(f"{url}/metrics", verify=trusting(pki.ca)).status_code == 200


CLIENT_CERT_REQUIRED = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"


def test_client_certificate_required_refuses_a_client_without_one(
    pki: Pki, tmp_path: Path, serve: Serve
) -> None:
    shutil.copy(pki.ca, tmp_path / "ca.crt")  # relative to the web-config file, as the toolkit
    url = serve(tls_yaml(pki, CLIENT_CERT_REQUIRED))
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        get(f"{url}/metrics", verify=trusting(pki.ca))
    with_cert = trusting(pki.ca, (pki.client_cert, pki.client_key))
    assert get(f"{url}/metrics", verify=with_cert).status_code == 200


def test_client_certificate_from_another_ca_is_refused(pki: Pki, serve: Serve) -> None:
    url = serve(
        tls_yaml(
            pki,
            f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.other_ca}\n",
        )
    )
    with_cert = trusting(pki.ca, (pki.client_cert, pki.client_key))
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        get(f"{url}/metrics", verify=with_cert)


AUTH_YAML = f"basic_auth_users:\n  {USER}: {HASH}\n"


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/", "/nope"])
def test_basic_auth_without_credentials_is_401_with_a_challenge(serve: Serve, path: str) -> None:
    response = get(serve(AUTH_YAML) + path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="rollout-monitor", charset="UTF-8"'
    assert "rollout_test_answer" not in response.text


@pytest.mark.parametrize(
    "auth",
    [
        (USER, "wrong"),
        (USER, PASSWORD + "x"),
        (USER, PASSWORD[:-1]),
        ("nobody", PASSWORD),
        (USER.upper(), PASSWORD),
        (USER, ""),
        (USER, "x" * 100),
    ],
)
def test_basic_auth_wrong_credentials_are_401(serve: Serve, auth: tuple[str, str]) -> None:
    response = get(serve(AUTH_YAML) + "/metrics", auth=auth)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize(
    "header", ["Bearer abc", "Basic", "Basic !!!", "Basic cHJvbWV0aGV1cw==", "Digest x"]
)
def test_basic_auth_malformed_headers_are_401(serve: Serve, header: str) -> None:
    """Another scheme, no payload, bad base64, no colon."""
    response = get(serve(AUTH_YAML) + "/metrics", headers={"Authorization": header})
    assert response.status_code == 401


def test_basic_auth_right_password_is_200(serve: Serve) -> None:
    url = serve(AUTH_YAML)
    response = get(f"{url}/metrics", auth=(USER, PASSWORD))
    assert response.status_code == 200
    assert "rollout_test_answer 42.0" in response.text.splitlines()
    assert get(f"{url}/readyz", auth=(USER, PASSWORD)).status_code == 200


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every hash bcrypt.checkpw is asked about from now on (the real check still runs)."""
    calls: list[bytes] = []
    checkpw = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def test_a_password_costs_one_bcrypt_whether_verified_or_refused(
    serve: Serve, bcrypt_calls: list[bytes]
) -> None:
    """Like exporter-toolkit: a scrape every few seconds must not cost a bcrypt each time; and
    (issue 22) neither must a client repeating a wrong password, for users known or not."""
    url = serve(AUTH_YAML)
    for _ in range(5):
        assert get(f"{url}/metrics", auth=(USER, PASSWORD)).status_code == 200
    assert bcrypt_calls == [HASH.encode()]
    for _ in range(2):
        assert get(f"{url}/metrics", auth=("nobody", "wrong")).status_code == 401
    assert len(bcrypt_calls) == 2
    assert get(f"{url}/metrics", auth=("nobody", "wrong again")).status_code == 401
    assert len(bcrypt_calls) == 3
    assert get(f"{url}/metrics", auth=(USER, PASSWORD)).status_code == 200
    assert len(bcrypt_calls) == 3


def test_a_guess_at_a_user_whose_password_was_verified_costs_no_bcrypt(
    serve: Serve, bcrypt_calls: list[bytes]
) -> None:
    """A user has one password that passes (bcrypt is deterministic, and a password over 72
    bytes is refused): once it was verified, any other is wrong without asking bcrypt. So an
    attacker guessing Prometheus's password, varying it every time, costs nothing (issue 22,
    finding 6); the price is that a 401's timing tells a user who logged in from one who did
    not (docs/configuration.md)."""
    url = serve(AUTH_YAML)
    assert get(f"{url}/metrics", auth=(USER, "guess-1")).status_code == 401
    assert len(bcrypt_calls) == 1  # not verified yet: only bcrypt can tell
    assert get(f"{url}/metrics", auth=(USER, PASSWORD)).status_code == 200
    assert len(bcrypt_calls) == 2
    for number in range(2, 12):
        assert get(f"{url}/metrics", auth=(USER, f"guess-{number}")).status_code == 401
    assert get(f"{url}/metrics", auth=(USER, PASSWORD[:-1])).status_code == 401
    assert get(f"{url}/metrics", auth=(USER, PASSWORD + "x")).status_code == 401
    assert len(bcrypt_calls) == 2
    assert get(f"{url}/metrics", auth=(USER, PASSWORD)).status_code == 200


def test_an_unknown_user_still_costs_a_bcrypt(serve: Serve, bcrypt_calls: list[bytes]) -> None:
    """So the time of a 401 does not tell which users exist."""
    url = serve(AUTH_YAML)
    assert get(f"{url}/metrics", auth=("nobody", PASSWORD)).status_code == 401
    assert len(bcrypt_calls) == 1
    assert bcrypt_calls[0] != HASH.encode()


def test_htpasswd_2y_hashes_are_accepted(serve: Serve) -> None:
    url = serve(f"basic_auth_users:\n  {USER}: {HASH.replace('$2b$', '$2y$', 1)}\n")
    assert get(f"{url}/metrics", auth=(USER, PASSWORD)).status_code == 200


def test_tls_and_basic_auth_together(pki: Pki, serve: Serve) -> None:
    url = serve(tls_yaml(pki) + AUTH_YAML)
    assert get(f"{url}/metrics", verify=trusting(pki.ca)).status_code == 401
    response = get(f"{url}/metrics", verify=trusting(pki.ca), auth=(USER, PASSWORD))
    assert response.status_code == 200


def test_configured_headers_are_on_every_response(serve: Serve) -> None:
    url = serve(
        "http_server_config:\n  http2: false\n  headers:\n"
        "    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n"
        "    Content-Security-Policy: default-src 'none'\n"
        "    Strict-Transport-Security: ''\n" + AUTH_YAML
    )
    for response in (get(f"{url}/metrics", auth=(USER, PASSWORD)), get(f"{url}/metrics")):
        assert response.headers["X-Frame-Options"] == "deny"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'"
        assert "Strict-Transport-Security" not in response.headers


def test_an_empty_web_config_file_serves_plain_http(serve: Serve) -> None:
    assert get(serve("") + "/metrics").status_code == 200


def test_no_web_config_file_means_no_web_config() -> None:
    assert load_web_config(None) is None


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_web_config(path)
    return [line.replace(str(tmp_path), "TMP") for line in raised.value.problems]


def tls(cert: str = "server.crt", key: str = "server.key", extra: str = "") -> str:
    return f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n{extra}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a list\n", "TMP/web.yml: expected a mapping of settings at the top level"),
        ("tls_server_config: [\n", "TMP/web.yml:2:1: invalid YAML: expected the node content, but found '<stream end>'"),
        ("unknown: 1\n", "TMP/web.yml: unknown: unknown key"),
        ("rate_limit: {interval: 1s, burst: 2}\n", "TMP/web.yml: rate_limit: not supported by rollout-monitor"),
        ("tls_server_config:\n  key_file: server.key\n", "TMP/web.yml: tls_server_config.cert_file: required"),
        ("tls_server_config:\n  cert_file: server.crt\n", "TMP/web.yml: tls_server_config.key_file: required"),
        (tls("missing.crt"), "TMP/web.yml: tls_server_config.cert_file: TMP/missing.crt: cannot read PEM file: No such file or directory"),
        (tls(key="keys"), "TMP/web.yml: tls_server_config.key_file: TMP/keys: not a regular file: cannot be the PEM file"),
        (tls(key="other.key"), "TMP/web.yml: tls_server_config.key_file: cannot use TMP/other.key with cert_file TMP/server.crt: key values mismatch"),
        (tls(key="server.crt"), "TMP/web.yml: tls_server_config.key_file: cannot use TMP/server.crt with cert_file TMP/server.crt: no PEM private key"),
        (tls(key="encrypted.key"), "TMP/web.yml: tls_server_config.key_file: TMP/encrypted.key is encrypted; give the key without a passphrase"),
        (tls(cert="server.key"), "TMP/web.yml: tls_server_config.cert_file: no certificate in TMP/server.key: no certificate or crl found"),
        (tls(cert="web.yml"), "TMP/web.yml: tls_server_config.cert_file: no certificate in TMP/web.yml: no certificate or crl found"),
        (tls(extra="  cert: inline\n"), "TMP/web.yml: tls_server_config.cert: not supported by rollout-monitor (use the *_file keys)"),
        (tls(extra="  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"), "TMP/web.yml: tls_server_config.cipher_suites: not supported by rollout-monitor (use the *_file keys)"),
        (tls(extra="  client_auth_type: RequireAndVerifyClientCert\n"), "TMP/web.yml: tls_server_config.client_ca_file: required with client_auth_type RequireAndVerifyClientCert"),
        (tls(extra="  client_auth_type: RequireAnyClientCert\n"), "TMP/web.yml: tls_server_config.client_auth_type: RequireAnyClientCert accepts unverified client certificates; use RequireAndVerifyClientCert"),
        (tls(extra="  client_auth_type: Sometimes\n"), "TMP/web.yml: tls_server_config.client_auth_type: expected one of 'NoClientCert', 'VerifyClientCertIfGiven' or 'RequireAndVerifyClientCert', got 'Sometimes'"),
        (tls(extra="  client_ca_file: ca.crt\n"), "TMP/web.yml: tls_server_config.client_auth_type: client_ca_file is set but NoClientCert ignores it; use RequireAndVerifyClientCert"),
        (tls(extra="  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.key\n"), "TMP/web.yml: tls_server_config.client_ca_file: no certificate in TMP/server.key: no certificate or crl found"),
        (tls(extra="  min_version: TLS10\n"), "TMP/web.yml: tls_server_config.min_version: expected one of 'TLS12' or 'TLS13', got 'TLS10'"),
        (tls(extra="  min_version: TLS13\n  max_version: TLS12\n"), "TMP/web.yml: tls_server_config.min_version: must not be above max_version"),
        ("basic_auth_users:\n  alice: hunter2\n", "TMP/web.yml: basic_auth_users.alice: not a bcrypt hash (expected $2y$ or $2b$...; see docs/configuration.md on making one)"),
        ("basic_auth_users:\n  alice: $2b$10$short\n", "TMP/web.yml: basic_auth_users.alice: not a bcrypt hash (expected $2y$ or $2b$...; see docs/configuration.md on making one)"),
        ("basic_auth_users: [alice]\n", "TMP/web.yml: basic_auth_users: expected a mapping"),
        ("http_server_config:\n  headers:\n    Server: nginx\n", "TMP/web.yml: http_server_config.headers.Server: unknown key"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "TMP/web.yml: http_server_config.headers.X-Frame-Options: expected one of 'deny' or 'sameorigin', got 'allow'"),
    ],
)  # fmt: skip
def test_malformed_web_config_is_one_line_naming_file_and_key(
    pki: Pki, tmp_path: Path, text: str, expected: str
) -> None:
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(pki.folder / name, tmp_path / name)
    shutil.copy(pki.client_key, tmp_path / "other.key")
    openssl(
        "pkey",
        "-in",
        pki.server_key,
        "-aes256",
        "-passout",
        "pass:x",
        "-out",
        tmp_path / "encrypted.key",
    )
    (tmp_path / "keys").mkdir()  # unreadable as a file even to root, who reads mode 000 files
    assert problems(tmp_path, text) == [expected]


def test_a_bad_hash_is_never_echoed(tmp_path: Path) -> None:
    (message,) = problems(tmp_path, "basic_auth_users:\n  alice: hunter2-plain\n")
    assert "hunter2" not in message


def test_every_problem_is_listed(tmp_path: Path) -> None:
    found = problems(tmp_path, "basic_auth_users:\n  a: x\n  b: y\nfoo: 1\n")
    assert [line.split(": ", 2)[1] for line in found] == [
        "basic_auth_users.a",
        "basic_auth_users.b",
        "foo",
    ]


def test_a_valid_file_loads(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(tls_yaml(pki, CLIENT_CERT_REQUIRED.replace("ca.crt", str(pki.ca))) + AUTH_YAML)
    web = load_web_config(path)
    assert isinstance(web, WebConfig)
    assert web.tls_server_config is not None
    assert web.tls_server_config.client_auth_type == "RequireAndVerifyClientCert"
    assert web.basic_auth_users == {USER: HASH}


def rollout(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


DB_URL = "postgresql://mon@db:5432/app"


def test_check_config_with_a_bad_web_config_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("basic_auth_users:\n  alice: hunter2\n")
    result = rollout("check-config", "--database-url", DB_URL, "--web-config-file", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"{bad}: basic_auth_users.alice: not a bcrypt hash"
        " (expected $2y$ or $2b$...; see docs/configuration.md on making one)\n"
    )


def test_check_config_with_a_missing_web_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    result = rollout("check-config", "--database-url", DB_URL, "--web-config-file", str(missing))
    assert (result.returncode, result.stderr) == (
        2,
        f"{missing}: cannot read config file: No such file or directory\n",
    )


def test_check_config_accepts_a_good_web_config_file(pki: Pki, tmp_path: Path) -> None:
    good = tmp_path / "web.yml"
    good.write_text(tls_yaml(pki) + AUTH_YAML)
    result = rollout("check-config", "--database-url", DB_URL, "--web-config-file", str(good))
    assert result.returncode == 0, result.stderr
    assert HASH not in result.stdout + result.stderr


def test_the_readme_example_loads(pki: Pki, tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    section = readme.split("### TLS and basic auth\n", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    for source, name in (
        (pki.server_cert, "server.crt"),
        (pki.server_key, "server.key"),
        (pki.ca, "clients-ca.crt"),
    ):
        shutil.copy(source, tmp_path / name)
    path = tmp_path / "web.yml"
    path.write_text(example)
    web = load_web_config(path)
    assert web is not None
    assert web.tls_server_config is not None
    assert web.tls_server_config.client_ca_file == tmp_path / "clients-ca.crt"
    assert list(web.basic_auth_users) == ["prometheus"]


def test_the_daemon_serves_tls_and_basic_auth_from_its_web_config_file(
    pki: Pki, tmp_path: Path, fresh_db: FreshDatabase
) -> None:
    """rollout-monitor run --web-config-file: https with the password, nothing without."""
    web = tmp_path / "web.yml"
    web.write_text(tls_yaml(pki) + AUTH_YAML)
    port = free_port()
    url = f"https://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    args = ["--database-url", fresh_db.url, "--listen-address", f"{HOST}:{port}"]
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", *args, "--web-config-file", str(web)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = get(f"{url}/metrics", verify=trusting(pki.ca), auth=(USER, PASSWORD))
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the daemon never listened"
                time.sleep(0.1)
        assert response.status_code == 200
        assert "rollout_postgres_up" in response.text
        assert get(f"{url}/metrics", verify=trusting(pki.ca)).status_code == 401
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            get(url.replace("https://", "http://") + "/metrics")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=15)
    finally:
        daemon.kill()
    assert daemon.returncode == 0
    for secret in (PASSWORD, HASH):
        assert secret not in stderr
