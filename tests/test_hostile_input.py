"""The hostile-input table: malformed input, as an attacker or a tired operator writes it
(config and web-config files, password, state, SQL and PEM files that are FIFOs, devices or
huge, flags, environment, a hostile Prometheus, hostile backups). Each row is run as the real
command, a process of its own, and holds its expected exit, its message, and the time and
memory it may take: the process's peak RSS from the kernel (`wait4`), under an address-space
limit so that a blow-up fails the row instead of the machine. A bad configuration is one
located line on stderr and exit 2, never a traceback (issues 11 and 22); a reload with any of
them keeps the running configuration (tests/test_faults.py)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import pytest
from hostile import ALIAS_BOMB, yaml
from prometheus_api import (
    HostileAnswer,
    answer_with,
    endless_body,
    hostile_prometheus,
    trickled_body,
)

URL = "postgresql://mon@localhost/app"
COMMAND = [sys.executable, "-m", "monitor"]
BCRYPT = "$2b$04$" + "a" * 53  # the shape of a cost-4 hash


REPOSITORY = Path(__file__).resolve().parent.parent
ADDRESS_SPACE = 2_000_000_000  # bytes: a blow-up ends in MemoryError here, not in the machine


class Special(Enum):
    """A file that is not one (reading it would block or never end), or a bomb."""

    FIFO = "a FIFO nobody writes to"
    ZERO = "a link to /dev/zero"
    BOMB = "a gzip file starting as a pg_dump that decompresses to 1 GiB on one line"


Content = bytes | Special


@dataclass(frozen=True)
class Case:
    """One hostile input, the command it is given to, and what must come of it."""

    name: str
    config: Content | None = None
    web: Content | None = None
    password: Content | None = None  # --database-password-file
    files: tuple[tuple[str, Content], ...] = ()  # more files in the folder; @DIR@ in config
    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    where: str = "config"  # what each line must name: config, web, password, a flag, a path
    lines: int = 1  # problems in it, each one line on stderr
    message: str = ""  # a regular expression the output must match
    command: str = "check-config"
    prometheus: HostileAnswer | None = None  # verdict against a server answering so
    backup: Content | None = None  # preflight --backup
    exit: int = 2
    seconds: float = 10.0  # wall time, start to exit (Python starts in about 0.5 s)
    rss_mib: int = 120  # peak resident memory


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


def issue_22() -> Iterator[Case]:
    """Files that block or never end, a NUL byte, a hostile Prometheus, hostile backups."""
    not_regular = "not a regular file"
    for special in (Special.FIFO, Special.ZERO):
        kind = "FIFO" if special is Special.FIFO else "/dev/zero"
        yield Case(f"config is {kind}", special, message=not_regular)
        yield Case(f"config is {kind} (once)", special, message=not_regular, command="once")
        yield Case(f"web config is {kind}", web=special, where="web", message=not_regular)
        yield Case(
            f"password file is {kind}", password=special, where="password", message=not_regular
        )
        yield Case(
            f"password file is {kind} (once)",
            password=special,
            where="password",
            message=not_regular,
            command="once",
        )
        yield Case(
            f"TLS certificate is {kind}",
            web=yaml("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"),
            files=(("cert.pem", special), ("key.pem", special)),
            where="web",
            lines=2,
            message=rf"{not_regular}: cannot be the PEM file",
        )
        yield Case(
            f"migration SQL is {kind}",
            yaml("migration:\n  sql_file: @DIR@/001.sql\n"),
            files=(("001.sql", special),),
            message=not_regular,
        )
        yield Case(
            f"plan of SQL that is {kind}",
            files=(("001.sql", special),),
            flags=("@DIR@/001.sql",),
            command="plan",
            where="@DIR@/001.sql",
            message="not a regular file: cannot be the migration's SQL",
        )
        yield Case(
            f"callback CA is {kind}",
            yaml(
                "checks:\n  callback:\n    url: https://localhost/cb\n    tls_config: {ca_file: @DIR@/ca.pem}\n"
            ),
            files=(("ca.pem", special),),
            message=not_regular,
        )
    yield Case(
        "password file over 64 KiB",
        password=b"x" * 70_000,
        where="password",
        message="larger than 64 KiB",
    )
    yield Case(
        "password file not UTF-8", password=b"pa\xffss\n", where="password", message="not UTF-8"
    )
    yield Case(
        "NUL byte in a value",
        yaml('log: {level: "de\0bug"}\n'),
        message="1:17: character 0x00 is not allowed in YAML",
    )
    yield Case(
        "NUL byte in a key",
        yaml("lo\0g: {level: debug}\n"),
        message="1:3: character 0x00 is not allowed",
    )
    yield Case(
        "NUL byte in the web config",
        web=yaml("basic_auth_users: {\0a: b}\n"),
        where="web",
        message="1:20: character 0x00",
    )
    yield Case(
        "escape character in the config",
        yaml("log: {level: \x1bdebug}\n"),
        message="1:14: character 0x1b",
    )


EVALUATE = "rollout-monitor verdict: could not evaluate: "


def vector(value: bytes) -> bytes:
    """A query answer of one sample, written as given (`[timestamp, "value"]`)."""
    return (
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":%s}]}}'
        % value
    )


def prometheus_answers() -> Iterator[Case]:
    """verdict against a Prometheus that answers badly: exit 4, one line, bounded."""
    error = b'{"status":"error","errorType":"bad_data","error":"%s"}'
    answers = {
        "-Inf at a 1e300 timestamp": answer_with(200, vector(b'[1e300,"-Inf"]')),
        "NaN timestamp": answer_with(200, vector(b'[NaN,"1"]')),
        "timestamp of 400 digits": answer_with(200, vector(b"[" + b"9" * 400 + b',"1"]')),
        "value that is not a number": answer_with(200, vector(b'[1700000000,"many"]')),
        "JSON nested 100,000 deep": answer_with(
            200, b'{"status":"success","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        ),
        "an endless body": endless_body,
        "a valid answer a byte every 0.1 s": trickled_body,
        "an error message of 100 KB": answer_with(400, error % (b"x" * 100_000)),
        "an error message of 100 KB with no spaces but dots and at signs": answer_with(
            400, error % (b"a.b@" * 25_000)
        ),
        "HTML instead of JSON": answer_with(200, b"<html>" + b"<p>proxy</p>" * 1000 + b"</html>"),
    }
    for name, answer in answers.items():
        yield Case(
            f"prometheus: {name}",
            command="verdict",
            prometheus=answer,
            where=EVALUATE,
            exit=4,
            flags=("--timeout", "5s"),
            seconds=12,
        )


def pg_dump_bomb() -> bytes:
    """A gzip file that starts as a plain pg_dump and decompresses to 1 GiB on one line."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    chunks = [packer.compress(b"--\n-- PostgreSQL database dump\n--\n")]
    zeros = bytes(1 << 20)
    chunks += [packer.compress(zeros) for _ in range(1024)]
    return b"".join([*chunks, packer.flush()])


def hostile_backups() -> Iterator[Case]:
    """preflight --backup of what is not a backup, or a bomb: the check fails (exit 1) at once."""
    for special in (Special.FIFO, Special.ZERO):
        kind = "FIFO" if special is Special.FIFO else "/dev/zero"
        yield Case(
            f"backup is {kind}",
            command="preflight",
            backup=special,
            exit=1,
            where="backup",
            message="backup_present.*not a regular file or a directory: cannot be a backup",
        )
    yield Case(
        "backup is a gzip bomb with a pg_dump header",
        command="preflight",
        backup=Special.BOMB,
        exit=1,
        where="backup",
        message="backup_restorable.*no CREATE TABLE",
        seconds=30,
    )


CASES = [*cases(), *issue_22(), *prometheus_answers(), *hostile_backups()]


def test_the_table_has_at_least_150_rows_each_named_once() -> None:
    assert len(CASES) >= 150
    assert len({case.name for case in CASES}) == len(CASES)


def test_the_docs_give_the_number_of_rows() -> None:
    operating = (REPOSITORY / "docs" / "operating.md").read_text()
    assert f"`tests/test_hostile_input.py` holds {len(CASES)} rows" in operating


def materialize(content: Content, path: Path) -> Path:
    """The content at path: bytes written, a FIFO made, a link to /dev/zero, a bomb."""
    if content is Special.FIFO:
        os.mkfifo(path)
    elif content is Special.ZERO:
        path.symlink_to("/dev/zero")
    elif content is Special.BOMB:
        path.write_bytes(pg_dump_bomb())
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content.replace(b"@DIR@", str(path.parent).encode()))
    return path


@contextlib.contextmanager
def command(case: Case, folder: Path) -> Iterator[tuple[list[str], dict[str, str], str]]:
    """The command line, its environment and what its output must name; a hostile Prometheus
    serving while the block runs."""
    args, where = [case.command], case.where.replace("@DIR@", str(folder))
    if case.command != "verdict" and not case.env.get("DATABASE_URL"):
        args += ["--database-url", URL]
    args += [flag.replace("@DIR@", str(folder)) for flag in case.flags]
    for name, content in case.files:
        materialize(content, folder / name)
    inputs: tuple[tuple[str, Content | None, str], ...] = (
        ("--config", case.config, "config"),
        ("--web-config-file", case.web, "web"),
        ("--database-password-file", case.password, "password"),
        ("--backup", case.backup, "backup"),
    )
    for option, given, name in inputs:
        if given is not None:
            path = materialize(given, folder / f"{name}.input")
            args += [option, str(path)]
            where = str(path) if where == name else where
    with contextlib.ExitStack() as stack:
        if case.prometheus is not None:
            server = stack.enter_context(hostile_prometheus(case.prometheus))
            args += ["--prometheus-url", server.url]
        yield args, case.env, where


@dataclass(frozen=True)
class Outcome:
    """How the process ended: exit code, output, wall time, peak RSS."""

    code: int
    out: str
    err: str
    seconds: float
    rss_mib: float


# Linux gives a process the peak RSS of the one that forked it as its own starting peak (the
# copied memory's high-water mark survives exec): forked from pytest (hundreds of MiB into the
# whole suite), every row would "peak" at pytest's size. So a small Python forks the command and
# writes its exit code and its own peak RSS (KiB) to the file named first.
MEASURED = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run(args: list[str], env: dict[str, str], folder: Path, timeout: float) -> Outcome:
    """The command as a process under an address-space limit; its exit code and peak RSS
    measured by MEASURED, killed with its group past the timeout."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "DATABASE_"))}
    out_path, err_path, measured = folder / "stdout", folder / "stderr", folder / "measured"
    command = ["prlimit", f"--as={ADDRESS_SPACE}", "--", *COMMAND, *args]
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        popen = subprocess.Popen(
            [sys.executable, "-c", MEASURED, str(measured), *command],
            env={**base, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own group: a hung command is killed with it
        )
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()
    seconds = time.monotonic() - started
    code, peak = (int(n) for n in measured.read_text().split()) if measured.exists() else (-9, 0)
    return Outcome(
        code,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
        seconds,
        peak / 1024,
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_ends_as_the_table_says(case: Case, tmp_path: Path) -> None:
    with command(case, tmp_path) as (args, env, where):
        outcome = run(args, env, tmp_path, timeout=max(30.0, 2 * case.seconds))
    shown = (
        f"{outcome.code} after {outcome.seconds:.1f} s, {outcome.rss_mib:.0f} MiB\n{outcome.err}"
    )
    assert outcome.code == case.exit, shown
    assert "Traceback" not in outcome.err + outcome.out, shown
    assert re.search(case.message, outcome.err + outcome.out), shown
    if case.exit in (2, 4):  # the problems alone, each one located line on stderr
        lines = outcome.err.splitlines()
        assert (outcome.out, len(lines)) == ("", case.lines), shown
        for line in lines:
            assert where in line, line
            assert len(line) < 400, line  # never the whole value
    else:
        assert where in outcome.out, shown
    assert outcome.seconds <= case.seconds, shown
    assert outcome.rss_mib <= case.rss_mib, shown
