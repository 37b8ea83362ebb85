"""Planted secrets never reach an output surface (issue 11, finding 5): every command's stdout
and stderr, the daemon's log, /metrics and the status page, across faults.

The secrets are distinctive strings: the database password in the URL's userinfo and as a
`password` / `sslpassword` parameter, the password file's content, the callback URL's userinfo
and `access_token`, a bearer token in a header, e-mail addresses and tokens in the data.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fixtures
import httpx
import psycopg
from callback_servers import CALLBACK_PATH, RunningServer, ServerState, read_request, serve
from databases import FreshDatabase

from monitor.demo.postgres import free_port

DB_PASSWORD = "Canary-DbPw-7741"
PARAM_PASSWORD = "Canary-Param-5521"
SSL_PASSWORD = "Canary-SslPw-3310"
FILE_PASSWORD = "Canary-FilePw-9902"
CALLBACK_PASSWORD = "Canary-CbPw-6613"
ACCESS_TOKEN = "Canary-AccessToken-4417"
BEARER = "Canary-Bearer-8828"
EMAIL = "canary.leak+x@example.org"
DATA_TOKEN = "Canary-DataToken-2206"
SECRETS = (
    DB_PASSWORD,
    PARAM_PASSWORD,
    SSL_PASSWORD,
    FILE_PASSWORD,
    CALLBACK_PASSWORD,
    ACCESS_TOKEN,
    BEARER,
    EMAIL,
    EMAIL.replace("@", "%40"),
    DATA_TOKEN,
)
COMMAND = [sys.executable, "-m", "monitor"]


def assert_no_secret(surface: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked in {surface}: {text[:2000]}"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    return subprocess.run(
        [*COMMAND, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def echoing_server() -> Iterator[RunningServer]:
    """A callback that answers with the request it got as its status line: whatever the probe
    sends (the bearer token) comes back as garbage for the probe to report."""

    def echo(conn: socket.socket, state: ServerState) -> None:
        request = read_request(conn, state)
        if request is not None:
            headers = "".join(f"{k}: {v} " for k, v in request.headers.items())
            conn.sendall(f"HTTP/1.1 {headers}\r\n\r\n".encode())

    with serve(echo) as server:
        yield server


def planted_database(fresh_db: FreshDatabase) -> str:
    """The migrated database with secrets in its data, and a role whose password is a secret;
    its URL with the password in the userinfo."""
    conn = fresh_db.conn()
    for name in ("migration_001", "prisma_record_001", "seed_after"):
        fixtures.apply(conn, name)
    conn.execute(
        'INSERT INTO users (id, email, "threadsUserId", "updatedAt")'
        " VALUES ('canary', %s, 'canary-threads', now())",
        [EMAIL],
    )
    conn.execute(
        'INSERT INTO threads_tokens (id, "userId", "threadsUserId", "accessToken", "expiresAt",'
        " \"updatedAt\") VALUES ('canary-token', 'canary', 'canary-threads', %s,"
        " now() + interval '1 day', now())",
        [DATA_TOKEN],
    )
    role = f"{fresh_db.name}_canary"
    conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}'")
    return fresh_db.server.url(fresh_db.name, user=role, password=DB_PASSWORD)


def config_file(tmp_path: Path, callback_url: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "checks:\n"
        "  callback:\n"
        f"    url: {callback_url}\n"
        "    interval: 1s\n"
        "    timeout: 500ms\n"
        f"    headers: {{Authorization: 'Bearer {BEARER}', Content-Type: application/json}}\n"
        "log: {format: json}\n"
    )
    return path


def callback_url(server: RunningServer) -> str:
    host = server.url.split("://", 1)[1].split("/", 1)[0]
    return f"http://cb:{CALLBACK_PASSWORD}@{host}{CALLBACK_PATH}?access_token={ACCESS_TOKEN}"


def test_no_secret_on_any_output_surface(fresh_db: FreshDatabase, tmp_path: Path) -> None:
    url = planted_database(fresh_db)
    password_file = tmp_path / "pw"
    password_file.write_text(FILE_PASSWORD + "\n")
    with echoing_server() as app:
        config = config_file(tmp_path, callback_url(app))
        surfaces: dict[str, str] = {}

        checked = run("check-config", "--config", str(config), "--database-url", url)
        assert checked.returncode == 0, checked.stderr
        surfaces["check-config"] = checked.stdout + checked.stderr

        params = f"{url}?password={PARAM_PASSWORD}&sslpassword={SSL_PASSWORD}"
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"database:\n  {params}: 1\n  url: {params}\n")
        refused = run("check-config", "--config", str(bad))
        assert refused.returncode == 2
        surfaces["check-config, URL as a key"] = refused.stdout + refused.stderr

        once = run(
            "once",
            "--config",
            str(config),
            "--database-url",
            url,
            "--database-password-file",
            str(password_file),
        )
        surfaces["once (the echoing callback)"] = once.stdout + once.stderr

        verdict = run(
            "verdict",
            "--prometheus-url",
            f"http://prom:{CALLBACK_PASSWORD}@127.0.0.1:{free_port()}/?token={ACCESS_TOKEN}",
        )
        assert verdict.returncode != 0
        surfaces["verdict"] = verdict.stdout + verdict.stderr

        preflight = run("preflight", "--config", str(config), "--database-url", url)
        surfaces["preflight"] = preflight.stdout + preflight.stderr

        surfaces.update(daemon_surfaces(tmp_path, config, url))
    for surface, text in surfaces.items():
        assert_no_secret(surface, text)
    assert "Traceback" not in "".join(surfaces.values())


def daemon_surfaces(tmp_path: Path, config: Path, url: str) -> dict[str, str]:
    """The daemon's log, /metrics and status page after a few probes of the echoing callback
    and a database that went away (the pool's errors)."""
    address = f"127.0.0.1:{free_port()}"
    log_path = tmp_path / "daemon.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*COMMAND, "run", "--config", str(config), "--listen-address", address],
            env={**base, "DATABASE_URL": url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(4)
        metrics = httpx.get(f"http://{address}/metrics", timeout=5).text
        page = httpx.get(f"http://{address}/", timeout=5).text
        with psycopg.connect(url, autocommit=True) as conn:  # cut the monitor's sessions
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'rollout-monitor'"
            )
        time.sleep(2)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"daemon log": log_path.read_text(), "/metrics": metrics, "status page": page}
