"""What every benchmark shares: the bench database, tables, JSON results, processes, HTTP."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
# Where the tables and figures go; tests/test_benchmarks.py points it at a folder of its own.
RESULTS = Path(os.environ.get("BENCH_RESULTS") or BENCH / "results")
VENV_BIN = REPO / ".venv" / "bin"
if str(REPO) not in sys.path:  # run as `python bench/x.py`: import monitor and tests from the repo
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from psycopg.rows import TupleRow  # noqa: E402

from monitor.demo.postgres import PostgresServer  # noqa: E402

DBNAME = "app"
SUPERUSER = "postgres"
MONITOR_ROLE = "bench_monitor"  # rollout-monitor connects as this role
EXPORTER_ROLE = "bench_pgexporter"  # prometheus-postgres-exporter connects as this one
HUMAN_ROLE = "bench_human"  # the plan's psql one-liners run as this one
ROLES = (MONITOR_ROLE, EXPORTER_ROLE, HUMAN_ROLE)


def say(message: str) -> None:
    """Progress on stderr (tables go to stdout)."""
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# -- the database -----------------------------------------------------------------------------


@dataclass
class BenchDb:
    """A bench database: built here (and removed at the end) or kept by make_db.py --keep."""

    port: int
    rows: int
    host: str = "127.0.0.1"
    dbname: str = DBNAME
    state: dict[str, Any] = field(default_factory=dict)
    server: PostgresServer | None = None

    def url(self, user: str = SUPERUSER, **params: str) -> str:
        """postgresql://user@host:port/app[?params] (trust authentication: no password)."""
        query = "&".join(f"{key}={value}" for key, value in params.items())
        return f"postgresql://{user}@{self.host}:{self.port}/{self.dbname}" + (
            f"?{query}" if query else ""
        )

    def connect(self, user: str = SUPERUSER) -> psycopg.Connection[TupleRow]:
        """An autocommit connection to the bench database."""
        return psycopg.connect(self.url(user), autocommit=True, connect_timeout=10)

    def close(self) -> None:
        """Stop and remove the server when this process built it."""
        if self.server is not None:
            say("stopping the bench PostgreSQL and removing its directory")
            self.server.stop()
            self.server = None


# -- statistics and tables --------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile, linearly interpolated (numpy's default); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median; nan when empty."""
    return statistics.median(values) if values else float("nan")


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: numbers rounded, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable in a terminal, pastes into a note), with a title line."""
    cells = [[fmt(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [f"\n### {title}\n", line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in cells]
    return "\n".join(out) + "\n"


class Report:
    """Tables printed as they come, and every figure kept for the JSON file."""

    def __init__(self, name: str, rows: int | None) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        suffix = f"-{rows}" if rows is not None else ""
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.path = RESULTS / f"{name}{suffix}-{stamp}.json"
        self.text_path = self.path.with_suffix(".md")
        self.data: dict[str, Any] = {
            "benchmark": name,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": host_facts(),
        }
        self._text: list[str] = []

    def print(self, text: str) -> None:
        """Print to stdout and keep for the .md file next to the JSON."""
        print(text, flush=True)
        self._text.append(text)

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Print a table."""
        self.print(table(title, headers, rows))

    def save(self) -> None:
        """Write the JSON (and the printed tables as Markdown) next to each other."""
        self.data["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.path.write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")
        self.text_path.write_text("\n".join(self._text) + "\n", encoding="utf-8")


def host_facts() -> dict[str, Any]:
    """CPUs, memory, load: what makes figures from two machines incomparable."""
    facts: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg": os.getloadavg()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                facts["mem_total_kb"] = int(line.split()[1])
    return facts


# -- processes ----------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads from /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            out[key] = int(value.split()[0])
    return out


def open_fds(pid: int) -> int:
    """How many file descriptors the process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int) -> float:
    """Resident set size in MiB."""
    return proc_status(pid)["VmRSS"] / 1024


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> float:
    """SIGTERM, wait (then SIGKILL); the seconds it took to exit."""
    started = time.perf_counter()
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return time.perf_counter() - started


def ensure_exporters() -> None:
    """Install prometheus-postgres-exporter and prometheus-blackbox-exporter when missing."""
    needed = ("prometheus-postgres-exporter", "prometheus-blackbox-exporter")
    if all(shutil.which(name) for name in needed):
        return
    say("installing the exporters with bench/setup")
    subprocess.run([str(BENCH / "setup")], check=True)


# -- HTTP -----------------------------------------------------------------------------------------


def http_get(host: str, port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes, float]:
    """GET on a fresh connection: (status, body, seconds from connect to the last byte)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started
    finally:
        conn.close()


def wait_http(port: int, path: str, deadline: float, want: int = 200) -> None:
    """Poll 127.0.0.1:port/path until it answers `want`, or raise at the deadline (seconds)."""
    end = time.monotonic() + deadline
    last = "no answer"
    while time.monotonic() < end:
        try:
            status, _, _ = http_get("127.0.0.1", port, path, timeout=5)
        except OSError as error:
            last = str(error)
        else:
            if status == want:
                return
            last = f"status {status}"
        time.sleep(0.2)
    raise RuntimeError(f"127.0.0.1:{port}{path} did not answer {want} in {deadline:.0f}s ({last})")


def samples(body: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a Prometheus text exposition: name -> [(labels, value)]."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode("utf-8", errors="replace")):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def sample_count(body: bytes) -> int:
    """Lines of an exposition that are samples (not comments or blank)."""
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


@contextlib.contextmanager
def log_file(path: Path) -> Iterator[Any]:
    """An open log file for a child process's output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        yield handle
