"""Malformed input, as an attacker or a tired operator writes it: config files, web-config
files, flags and environment. Each is one located line on stderr and exit 2, never a traceback
(issue 11, findings 1, 2 and 8); a reload with any of them keeps the running configuration
(tests/test_reload_hostile.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hostile import ALIAS_BOMB, yaml

from monitor.cli import main

URL = "postgresql://mon@localhost/app"
COMMAND = [sys.executable, "-m", "monitor"]
BCRYPT = "$2b$04$" + "a" * 53  # the shape of a cost-4 hash


@dataclass(frozen=True)
class Case:
    """One malformed input: a config file's bytes, a web-config's, flags, environment."""

    name: str
    config: bytes | None = None
    web: bytes | None = None
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    where: str = "config"  # what the line must name: config, web, or a flag or variable
    lines: int = 1  # problems in it, each one line


DURATION_KEYS = (
    "database.connect_timeout",
    "database.acquire_timeout",
    "database.lock_timeout",
    "database.statement_timeout",
    "database.idle_in_transaction_session_timeout",
    "checks.schema.interval",
    "checks.drift.interval",
    "checks.backfill.interval",
    "checks.connections.interval",
    "checks.activity.interval",
    "checks.query_performance.interval",
    "checks.pool.interval",
    "checks.callback.timeout",
    "baseline.window",
    "large_tables.sweep_period",
)
BAD_DURATIONS = ("99999999999999h", "soon", "-5s", "1e400s")


def nested(key: str, value: str) -> str:
    """'a.b.c' and a value as YAML."""
    *parents, last = key.split(".")
    lines = [f"{'  ' * depth}{part}:" for depth, part in enumerate(parents)]
    return "\n".join([*lines, f"{'  ' * len(parents)}{last}: {value}"]) + "\n"


def cases() -> Iterator[Case]:
    """At least a hundred, each a different way of being wrong."""
    yield Case("alias bomb", yaml(ALIAS_BOMB))
    yield Case("recursive alias", yaml("a: &a [*a]\n"))
    yield Case("20,000-deep list", yaml("x: " + "[" * 20_000 + "]" * 20_000 + "\n"))
    yield Case(
        "deep mapping",
        yaml("".join(f"{'  ' * i}k{i}:\n" for i in range(60)) + "  " * 60 + "v: 1\n"),
    )
    yield Case("over a MiB", yaml("# " + "x" * (1 << 20) + "\n"))
    yield Case("not UTF-8 in a value", b'database:\n  url: "postgresql://x/\xff"\n')
    yield Case("not UTF-8 in a key", b"data\xc3base:\n  url: x\n")
    yield Case("latin-1 file", "log:\n  level: d\xe9bug\n".encode("latin-1"))
    yield Case("duplicate top-level key", yaml("log: {level: info}\nlog: {level: debug}\n"))
    yield Case("duplicate nested key", yaml("database:\n  lock_timeout: 1s\n  lock_timeout: 2s\n"))
    yield Case("integer of 5000 digits", yaml("database:\n  pool_max_size: " + "9" * 5000 + "\n"))
    yield Case("tab indentation", yaml("database:\n\turl: x\n"))
    yield Case("unclosed quote", yaml('log:\n  level: "info\n'))
    yield Case("top-level list", yaml("- a\n- b\n"))
    yield Case("top-level scalar", yaml("just text\n"))
    yield Case("unknown key", yaml("frobnicate: 1\n"))
    yield Case("URL as a key", yaml("database:\n  postgresql://u:pw@db/app: 1\n"))
    yield Case("huge string value", yaml(f'log:\n  level: "{"x" * 100_000}"\n'))
    yield Case("list where a mapping goes", yaml("database: [1, 2]\n"))
    yield Case("mapping where a string goes", yaml("checks:\n  callback:\n    url: {a: 1}\n"))
    for key in DURATION_KEYS:
        for value in BAD_DURATIONS:
            yield Case(f"{key} = {value}", yaml(nested(key, f'"{value}"')))
    for key in ("database.lock_timeout", "database.statement_timeout"):
        yield Case(f"{key} over PostgreSQL's limit", yaml(nested(key, "600h")))
    yield Case("bare number duration", yaml(nested("database.lock_timeout", "5")))
    yield Case(
        "callback port 99999", yaml(nested("checks.callback.url", "http://localhost:99999/cb"))
    )
    yield Case("callback not http", yaml(nested("checks.callback.url", "ftp://x/cb")))
    yield Case(
        "callback header value with LF",
        yaml('checks:\n  callback:\n    headers: {Authorization: "Bearer x\\n"}\n'),
    )
    yield Case(
        "callback header value with CR",
        yaml('checks:\n  callback:\n    headers: {X-A: "a\\rSet-Cookie: x"}\n'),
    )
    yield Case(
        "callback header name with a space",
        yaml('checks:\n  callback:\n    headers: {"X A": "b"}\n'),
    )
    yield Case("callback method", yaml(nested("checks.callback.method", "DELETE")))
    yield Case("status code 700", yaml(nested("checks.callback.valid_status_codes", "[700]")))
    yield Case("status class 6xx", yaml(nested("checks.callback.valid_status_codes", "[6xx]")))
    yield Case(
        "timeout longer than interval",
        yaml("checks:\n  callback: {interval: 2s, timeout: 3s}\n"),
    )
    yield Case("application_name of 64 bytes", yaml(nested("database.application_name", "a" * 64)))
    yield Case(
        "application_name of 32 two-byte characters",
        yaml(nested("database.application_name", "é" * 32)),
    )
    yield Case("pool_max_size 1000", yaml(nested("database.pool_max_size", "1000")))
    yield Case("pool_min_size -1", yaml(nested("database.pool_min_size", "-1")))
    yield Case("listen address without port", yaml("listen_address: localhost\n"))
    yield Case("listen address port 99999", yaml("listen_address: 127.0.0.1:99999\n"))
    yield Case("log level", yaml(nested("log.level", "loud")))
    yield Case("objective above 1", yaml(nested("criteria.objective", "1.5")))
    yield Case("sample_rows 5", yaml(nested("large_tables.sample_rows", "5")))
    yield Case("sweep_blocks 0", yaml(nested("large_tables.sweep_blocks", "0")))
    yield Case("applied_at not a time", yaml(nested("migration.applied_at", "yesterday")))
    yield Case("column without table", yaml("migration:\n  objects:\n    columns: [nodot]\n"))
    yield Case("identifier with NUL", yaml(nested("app.schema_name", '"pub\\0lic"')))
    sql = "checks:\n  sql:\n    - name: {name}\n      sql: SELECT 1 AS v\n      metrics:\n        - {metric}\n"
    for name, metric in (
        ("c1", "{name: rollout_db_connections, value: v}"),
        ("c1", "{name: rollout_auth_callback_requests_total, value: v}"),
        ("c1", "{name: 1abc, value: v}"),
        ("c1", "{name: my_metric, value: v, labels: [__name__]}"),
        ("c1", "{name: my_metric, value: v, labels: [a-b]}"),
        ("c1", "{name: my_metric}"),
        ("Bad-Name", "{name: my_metric, value: v}"),
        ("drift", "{name: my_metric, value: v}"),
    ):
        yield Case(f"sql check {name} {metric}", yaml(sql.format(name=name, metric=metric)))
    yield Case("sql without metrics", yaml("checks:\n  sql:\n    - {name: c1, sql: SELECT 1}\n"))
    yield Case(
        "sql empty query",
        yaml("checks:\n  sql:\n    - {name: c1, sql: '', metrics: [{name: m, value: v}]}\n"),
    )
    # The web-config file.
    yield Case("web: alias bomb", web=yaml(ALIAS_BOMB), where="web")
    yield Case("web: not UTF-8", web=b"basic_auth_users:\n  \xffadmin: x\n", where="web")
    yield Case(
        "web: duplicate user",
        web=yaml(f"basic_auth_users:\n  a: {BCRYPT}\n  a: {BCRYPT}\n"),
        where="web",
    )
    yield Case(
        "web: user with a colon", web=yaml(f'basic_auth_users:\n  "a:b": "{BCRYPT}"\n'), where="web"
    )
    yield Case("web: empty user", web=yaml(f'basic_auth_users:\n  "": "{BCRYPT}"\n'), where="web")
    yield Case("web: plain password", web=yaml("basic_auth_users:\n  a: hunter2\n"), where="web")
    yield Case(
        "web: header value with LF",
        web=yaml('http_server_config:\n  headers:\n    Content-Security-Policy: "a\\nX: b"\n'),
        where="web",
    )
    yield Case(
        "web: header value with CR",
        web=yaml('http_server_config:\n  headers:\n    Strict-Transport-Security: "a\\rb"\n'),
        where="web",
    )
    yield Case("web: unknown key", web=yaml("frobnicate: 1\n"), where="web")
    yield Case("web: rate_limit", web=yaml("rate_limit: {interval: 1s}\n"), where="web")
    yield Case(
        "web: tls min_version",
        web=yaml("tls_server_config:\n  min_version: SSL3\n"),
        where="web",
        lines=3,  # no cert_file, no key_file, the version
    )
    yield Case(
        "web: missing cert",
        web=yaml(
            "tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n"
        ),
        where="web",
        lines=2,  # each file named
    )
    yield Case("web: deep list", web=yaml("x: " + "[" * 5000 + "]" * 5000 + "\n"), where="web")
    yield Case("web: top-level list", web=yaml("- a\n"), where="web")
    # Flags and the environment.
    yield Case(
        "flag: listen address", flags=("--listen-address", "nowhere"), where="--listen-address"
    )
    yield Case(
        "flag: listen port 0", flags=("--listen-address", "127.0.0.1:0"), where="--listen-address"
    )
    yield Case(
        "flag: database URL scheme",
        flags=("--database-url", "mysql://u@h/d"),
        where="--database-url",
    )
    yield Case(
        "flag: callback URL", flags=("--callback-url", "localhost:3000"), where="--callback-url"
    )
    yield Case(
        "flag: missing config",
        flags=("--config", "/nonexistent/config.yaml"),
        where="/nonexistent/config.yaml",
    )
    yield Case("flag: config is a directory", flags=("--config", "/"), where="/")
    yield Case(
        "flag: missing password file",
        flags=("--database-password-file", "/nonexistent/pw"),
        where="/nonexistent/pw",
    )
    yield Case(
        "env: listen address", env={"ROLLOUT_LISTEN_ADDRESS": "x:y"}, where="ROLLOUT_LISTEN_ADDRESS"
    )
    yield Case("env: database URL", env={"DATABASE_URL": "not a url"}, where="DATABASE_URL")
    yield Case(
        "env: callback URL port",
        env={"ROLLOUT_CALLBACK_URL": "http://h:70000/"},
        where="ROLLOUT_CALLBACK_URL",
    )
    yield Case(
        "env: config missing",
        env={"ROLLOUT_CONFIG": "/nonexistent.yaml"},
        where="/nonexistent.yaml",
    )
    yield Case(
        "env: web config missing",
        env={"ROLLOUT_WEB_CONFIG_FILE": "/nonexistent-web.yaml"},
        where="/nonexistent-web.yaml",
    )


CASES = list(cases())


def test_there_are_at_least_a_hundred_cases() -> None:
    assert len(CASES) >= 100
    assert len({case.name for case in CASES}) == len(CASES)


def command(case: Case, folder: Path) -> tuple[list[str], dict[str, str], str]:
    """The check-config command line, environment and the location its error must name."""
    args, where = ["check-config", "--database-url", URL, *case.flags], case.where
    if case.config is not None:
        path = folder / "config.yaml"
        path.write_bytes(case.config)
        args += ["--config", str(path)]
        where = str(path) if where == "config" else where
    if case.web is not None:
        path = folder / "web.yaml"
        path.write_bytes(case.web)
        args += ["--web-config-file", str(path)]
        where = str(path) if where == "web" else where
    if case.env.get("DATABASE_URL"):
        args.remove("--database-url")
        args.remove(URL)
    return args, case.env, where


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_malformed_input_is_one_located_line_and_exit_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args, env, where = command(case, tmp_path)
    for name in [k for k in os.environ if k.startswith(("ROLLOUT_", "DATABASE_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(args)
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    lines = err.splitlines()
    assert len(lines) == case.lines, err
    for line in lines:
        assert where in line, line
        assert len(line) < 400, line  # never the whole value
    assert "Traceback" not in err


@pytest.mark.parametrize("case", [c for c in CASES if "bomb" in c.name or "deep" in c.name])
def test_bombs_are_refused_at_once_by_the_real_command(case: Case, tmp_path: Path) -> None:
    """As a process, with a bound on time and memory a hang or a blow-up would break."""
    args, _, where = command(case, tmp_path)
    result = subprocess.run(
        ["prlimit", "--as=1000000000", "--", *COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert where in result.stderr
