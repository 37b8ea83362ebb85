"""The exporter in a process of its own, for the tests that flood it: its memory and its file
descriptors are then its own to measure and to limit (prlimit). Run as
`python tests/served.py [CERT KEY]`: prints the port, serves until its stdin closes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from monitor.http import guard
from monitor.http.exporter import Exporter
from monitor.http.webconfig import WebConfig, load_web_config

HOST = "127.0.0.1"
WRITE_TIMEOUT = "SERVED_WRITE_TIMEOUT"  # the guard's write deadline in the child, in seconds


def registry() -> CollectorRegistry:
    """A registry whose /metrics is some 40 KB, as a busy exporter's."""
    registry = CollectorRegistry()
    gauge = Gauge("rollout_test_series", "One of many.", ["n"], registry=registry)
    for n in range(1000):
        gauge.labels(str(n)).set(n)
    Gauge("rollout_test_answer", "A known value.", registry=registry).set(42)
    return registry


def main(argv: list[str]) -> None:
    if WRITE_TIMEOUT in os.environ:
        guard.WRITE_TIMEOUT = float(os.environ[WRITE_TIMEOUT])
    web: WebConfig | None = WebConfig()
    if argv:
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "web.yml"
            config.write_text(
                f"tls_server_config:\n  cert_file: {argv[0]}\n  key_file: {argv[1]}\n"
            )
            web = load_web_config(config)
    served = Exporter(HOST, 0, registry(), lambda: True, web, changes=lambda: 0)
    served.start()
    print(served.port, flush=True)
    sys.stdin.read()
    served.stop()


class Served:
    """The exporter in a child process (optionally under a prlimit), its port, its RSS and
    its log (a file: a pipe nobody reads would block a server that logs a lot)."""

    def __init__(
        self,
        log: Path,
        *args: str | Path,
        prefix: tuple[str, ...] = (),
        write_timeout: float | None = None,
    ) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        if write_timeout is not None:
            env[WRITE_TIMEOUT] = str(write_timeout)
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, __file__, *map(str, args)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 20
        while not log.read_text().endswith("\n"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"the exporter did not start: {log.read_text()}")
            time.sleep(0.05)
        self.port = int(log.read_text().splitlines()[0])

    def rss_mb(self) -> float:
        """The resident set size of the server process, in MB."""
        return rss_mib(self.process.pid)

    def fds(self) -> int:
        """The server process's open file descriptors."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self) -> list[str]:
        """Stop the server; the lines it wrote after the port."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text(errors="replace").splitlines()[1:]


if __name__ == "__main__":
    main(sys.argv[1:])


def rss_mib(pid: int) -> float:
    """A process's resident memory now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")
