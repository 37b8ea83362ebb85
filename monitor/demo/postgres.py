"""A throwaway PostgreSQL server, for the test suite and the demo.

``PostgresServer`` runs ``initdb`` in a fresh temporary directory and starts a
server listening on 127.0.0.1 only, on a free TCP port, with trust
authentication for the superuser ``postgres``.  It works as an ordinary user and
as root (``initdb`` and ``pg_ctl`` refuse to run as root, so they are then run
as the ``postgres`` OS user through ``runuser``).

    with PostgresServer(timezone="Pacific/Kiritimati") as server:
        with server.connect() as conn:
            conn.execute("SELECT 1")
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60
LOG_TAIL_LINES = 40
StopMode = Literal["smart", "fast", "immediate"]


def _has_server_binaries(bindir: Path) -> bool:
    """Tell whether ``bindir`` holds both ``initdb`` and ``pg_ctl``."""
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _pg_config_bindir() -> Path | None:
    """Return ``pg_config --bindir``, or None when pg_config is unavailable."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def _version_key(bindir: str) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` paths, newest last."""
    version = Path(bindir).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def find_bindir() -> Path:
    """Locate the PostgreSQL server binaries (PG_BINDIR, pg_config, /usr/lib/postgresql)."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        if not _has_server_binaries(Path(explicit)):
            raise RuntimeError(f"PG_BINDIR={explicit!r} lacks executable initdb and pg_ctl")
        return Path(explicit)
    from_pg_config = _pg_config_bindir()
    if from_pg_config is not None and _has_server_binaries(from_pg_config):
        return from_pg_config
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _has_server_binaries(Path(candidate)):
            return Path(candidate)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: PG_BINDIR is unset, "
        "`pg_config --bindir` gave none, and no /usr/lib/postgresql/*/bin has them"
    )


def free_port() -> int:
    """Ask the kernel for a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _quote_conf(value: str) -> str:
    """Quote a value for postgresql.conf."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class PostgresServer:
    """A disposable PostgreSQL cluster on 127.0.0.1, owned by one test session or demo."""

    def __init__(
        self,
        timezone: str = "UTC",
        *,
        bindir: Path | None = None,
        os_user: str = "postgres",
        base_dir: str | None = None,
    ) -> None:
        """Configure the server; nothing runs until ``start()``."""
        self.timezone = timezone
        self.bindir = bindir or find_bindir()
        self.os_user = os_user
        self.base_dir = base_dir
        self.host = HOST
        self._port: int | None = None
        self._tmpdir: Path | None = None
        self._running = False

    # -- lifecycle -------------------------------------------------------------

    def start(self, attempts: int = 3) -> None:
        """Create a new cluster and start it on a free port (retried if the port gets taken)."""
        if self._tmpdir is not None:
            raise RuntimeError("server already started; use start_again() or restart()")
        for attempt in range(1, attempts + 1):
            try:
                self._init_cluster()
                self._pg_ctl_start()
            except Exception as exc:
                self._discard_cluster()
                if "could not bind" not in str(exc) or attempt == attempts:
                    raise
            else:
                atexit.register(self.stop)
                return

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its temporary directory."""
        atexit.unregister(self.stop)
        try:
            if self._running:
                self.stop_server_only("fast")
        finally:
            self._discard_cluster()

    def stop_server_only(self, mode: StopMode = "immediate") -> None:
        """Stop the server but keep its data, to simulate the database going away."""
        self._pg_ctl("stop", "-w", "-m", mode)
        self._running = False

    def start_again(self) -> None:
        """Start the existing cluster again, on the same port."""
        if self._tmpdir is None:
            raise RuntimeError("server was never started (or was removed by stop())")
        self._pg_ctl_start()

    def restart(self) -> None:
        """Fast-stop and start the server again on the same port."""
        self.stop_server_only("fast")
        self.start_again()

    def __enter__(self) -> PostgresServer:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server and remove its files."""
        self.stop()

    # -- addresses and clients --------------------------------------------------

    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def log_path(self) -> Path:
        """Path of the server log file."""
        return self._dir() / "postgres.log"

    def url(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """Build ``postgresql://user[:password]@127.0.0.1:port/dbname``."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def connect(
        self, dbname: str = "postgres", autocommit: bool = True
    ) -> psycopg.Connection[TupleRow]:
        """Open a superuser connection over TCP."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            autocommit=autocommit,
            connect_timeout=10,
        )

    def create_database(self, name: str, template: str | None = None) -> None:
        """Create a database, optionally from a template database."""
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(query)

    # -- internals ---------------------------------------------------------------

    def _dir(self) -> Path:
        """Return the temporary directory; raise when there is none."""
        if self._tmpdir is None:
            raise RuntimeError("server not started")
        return self._tmpdir

    def _as_root(self) -> bool:
        """Tell whether commands must be run as ``os_user`` through runuser."""
        return os.geteuid() == 0

    def _init_cluster(self) -> None:
        """Make the temp directory, run initdb and write the server settings."""
        self._tmpdir = Path(tempfile.mkdtemp(prefix="pgtest-", dir=self.base_dir))
        (self._tmpdir / "socket").mkdir()
        if self._as_root():
            self._chown_to_os_user(self._tmpdir, self._tmpdir / "socket")
        self._port = free_port()
        self._run(
            str(self.bindir / "initdb"),
            *("-D", str(self._tmpdir / "data"), "-U", SUPERUSER, "-E", "UTF8", "--locale=C"),
            *("--auth-local=trust", "--auth-host=trust", "--no-sync"),
        )
        self._write_settings()

    def _chown_to_os_user(self, *paths: Path) -> None:
        """Give paths to ``os_user`` so the server can write there."""
        if shutil.which("runuser") is None:
            raise RuntimeError("running as root needs `runuser` (util-linux) to drop privileges")
        try:
            entry = pwd.getpwnam(self.os_user)
        except KeyError:
            message = f"running as root needs an OS user {self.os_user!r} to run PostgreSQL"
            raise RuntimeError(message) from None
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _write_settings(self) -> None:
        """Append this server's settings to postgresql.conf (last setting wins)."""
        settings = {
            "listen_addresses": _quote_conf(self.host),
            "port": str(self.port),
            "unix_socket_directories": _quote_conf(str(self._dir() / "socket")),
            "fsync": "off",
            "max_connections": "50",
            "shared_preload_libraries": _quote_conf("pg_stat_statements"),
            "timezone": _quote_conf(self.timezone),
        }
        lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
        with open(self._dir() / "data" / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# added by rollout-monitor (monitor/demo/postgres.py)\n" + lines)

    def _pg_ctl_start(self) -> None:
        """Run ``pg_ctl start -w``; on failure raise with the tail of the server log."""
        try:
            self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT_SECONDS), "-l", str(self.log_path))
        except RuntimeError as exc:
            tail = f"--- tail of {self.log_path} ---\n{self._log_tail()}"
            raise RuntimeError(f"{exc}\n{tail}") from None
        self._running = True

    def _pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on this cluster's data directory."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self._dir() / "data"), *args)

    def _run(self, *command: str) -> None:
        """Run a command (as ``os_user`` when root); raise with its output if it fails."""
        argv = ["runuser", "-u", self.os_user, "--", *command] if self._as_root() else list(command)
        result = subprocess.run(argv, cwd=self._dir(), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise RuntimeError(f"`{' '.join(argv)}` exited with {result.returncode}:\n{output}")

    def _log_tail(self) -> str:
        """Return the last lines of the server log, or a note that there is none."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            return f"(no server log: {exc})"
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def _discard_cluster(self) -> None:
        """Stop a server we may have left running and delete the temp directory."""
        if self._tmpdir is None:
            return
        if (self._tmpdir / "data" / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop_server_only("immediate")
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = None
        self._running = False
