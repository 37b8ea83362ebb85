"""The lean run: two rollout-monitor replicas beside postgres_exporter and blackbox_exporter.

    .venv/bin/python bench/footprint.py [--rows 100000] [--warmup 60] [--seconds 300]
    .venv/bin/python bench/footprint.py --rows 10000 --warmup 5 --seconds 5 --imports 3  # dry run

On one throwaway database (or a kept one, --db), in the same run: `rollout-monitor run` twice
(the first to start leads, holding the leader lock; the second follows: monitor/daemon/leader.py),
each on its own --listen-address with the default configuration (the probe every 4 s, the checks
at their default intervals), both probing a callback server that answers 401 after 50 ms;
`prometheus-postgres-exporter` on the same database and `prometheus-blackbox-exporter` (the
plan's POST, exporters.py's module). During --warmup seconds all four are scraped every
--scrape-interval (15 s) and blackbox probes the callback as often as the monitors do; then for
--seconds nobody is scraped or probed by the bench. Measured:

- RSS (VmRSS) of the leader, of the follower, and of the two exporters together, at the end;
- the floor: the third-party libraries the daemons held (every top-level module from
  site-packages in sys.modules when each replica exited, less what a bare interpreter loads: the
  replicas run through a wrapper that lists them at exit, and is otherwise the console script),
  imported by a fresh interpreter of the same virtualenv that then sleeps; its RSS, and the
  project's own RSS above it (the leader's RSS less the floor's);
- the leader's idle CPU over --seconds (utime + stime from /proc/<pid>/stat, over the wall time,
  as a share of one core);
- import time of the run path: the median of --imports runs of
  `python -c "import monitor.cli, monitor.daemon.commands, monitor.daemon.setup"` less the
  median of `python -c pass`, and beside it the floor's own import time (the runs interleaved).

All of it in a runtime-only virtualenv, `.venv-runtime/` (rebuilt when uv.lock changes): what
the image and a `pip install` carry, from uv.lock without the dev extras, the project installed
as a wheel. The dev virtualenv holds test tools (selenium's trio and wsproto, pygments) that
libraries load when they find them installed; --dev-venv measures there instead.

Targets (bench/targets.py; the project's lean-run targets): the leader's and the follower's RSS
each at most 1.8x the two exporters' together, the follower's at most 1.5x; the project's own RSS
above the floor at most 10 MiB; the leader's idle CPU at most 0.1% of a core; the run path's
import at most 200 ms. Exit 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from common import (
    MONITOR_ROLE,
    REPO,
    VENV_BIN,
    BenchDb,
    Report,
    ensure_exporters,
    http_get,
    rss_mb,
    samples,
    say,
    stop_process,
    wait_http,
)
from exporters import BLACKBOX_MODULE, scrape, start, start_exporters
from make_db import add_db_arguments, open_db
from targets import Targets

from monitor.config.checks import CallbackSettings
from monitor.config.durations import argument as duration
from monitor.demo.postgres import free_port
from tests.callback_servers import delayed_server

PYTHON = str(VENV_BIN / "python")  # the dev virtualenv; main() picks the runtime one
RUNTIME_VENV = REPO / ".venv-runtime"
OWN_PACKAGES = {"monitor"}
RUN_PATH = "import monitor.cli, monitor.daemon.commands, monitor.daemon.setup"
LEADER_RSS_RATIO = 1.8  # each replica's RSS against postgres_exporter + blackbox_exporter
FOLLOWER_RSS_RATIO = 1.5
OWN_RSS_MIB = 10.0  # the leader's RSS above the floor
IDLE_CPU_PERCENT = 0.1  # of one core
IMPORT_MS = 200.0
FLOOR_LIFETIME = 600  # seconds: the floor's interpreter stops by itself if the bench dies
MODULES_FILE = "BENCH_MODULES_FILE"
REQUIREMENT = re.compile(r"\s*([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?")
EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")

# `rollout-monitor run` as its console script starts it (monitor.cli.main), writing at exit the
# top-level modules it holds from site-packages: what a running daemon imported, lazily too.
RUN_AND_LIST = """\
import atexit
import sys


def _third_party():
    import json, os, sysconfig

    paths = sysconfig.get_paths()
    sites = (paths["purelib"], paths["platlib"])
    names = {
        name.split(".")[0]
        for name, module in list(sys.modules.items())
        if (getattr(module, "__file__", None) or "").startswith(sites)
    }
    with open(os.environ["BENCH_MODULES_FILE"], "w") as out:
        json.dump(sorted(names), out)


atexit.register(_third_party)
from monitor.cli import main

sys.argv[0] = "rollout-monitor"
sys.exit(main())
"""
BARE_MODULES = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"


@dataclass
class Replica:
    """One `rollout-monitor run`: its process, port and the file its modules land in."""

    name: str
    port: int
    modules_file: Path
    proc: subprocess.Popen[bytes] | None = None
    leads: bool = False


@dataclass
class Measured:
    """Every figure of the run."""

    rss: dict[str, float] = field(default_factory=dict)  # MiB at the end of the idle window
    idle_cpu: dict[str, float] = field(default_factory=dict)  # % of a core
    idle_seconds: float = 0.0
    floor_modules: list[str] = field(default_factory=list)
    run_path_modules: list[str] = field(default_factory=list)
    floor_rss: float = float("nan")
    imports_ms: dict[str, float] = field(default_factory=dict)  # median wall time of each


def arguments() -> argparse.Namespace:
    """The database, the warm-up, the idle window, the import runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_db_arguments(parser, default_rows=100_000)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds, scraped (60)")
    parser.add_argument("--seconds", type=float, default=300.0, help="the idle window (300)")
    parser.add_argument(
        "--scrape-interval",
        type=duration(bare_seconds=True),
        default="15s",
        help="everything scraped this often during the warm-up (15s)",
    )
    parser.add_argument("--imports", type=int, default=10, help="runs of each import timing")
    parser.add_argument(
        "--dev-venv", action="store_true", help="measure in .venv, not the runtime virtualenv"
    )
    args = parser.parse_args()
    if args.warmup < 0 or args.seconds <= 0 or args.imports < 1:
        parser.error("--seconds and --imports must be positive, --warmup at least 0")
    return args


def main() -> int:
    """Start the four and the callback, warm up, sit idle, measure, stop, judge."""
    global PYTHON  # noqa: PLW0603  # every measurement runs this interpreter
    args = arguments()
    targets = Targets()
    if not args.dev_venv:
        PYTHON = str(runtime_venv() / "bin" / "python")
    ensure_exporters()
    db = open_db(args)
    report = Report("footprint", db.rows)
    workdir = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with delayed_server(401, 0.05) as callback:
            measured = run(db, args, workdir, callback.url, children)
        print_report(report, measured)
        judge(targets, measured)
        return targets.finish(report)
    finally:
        for proc in children.values():
            stop_process(proc)
        report.data["logs"] = str(workdir)
        report.save()
        db.close()
        say(f"results: {report.path} (child logs in {workdir})")


def runtime_venv() -> Path:
    """.venv-runtime: uv.lock's runtime dependencies (hashes checked) and the project as a
    wheel; built again when uv.lock changed since it was built."""
    lock = (REPO / "uv.lock").read_bytes()
    stamp = RUNTIME_VENV / "uv.lock.sha256"
    digest = hashlib.sha256(lock).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return RUNTIME_VENV
    say(f"building the runtime-only virtualenv {RUNTIME_VENV}")
    shutil.rmtree(RUNTIME_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(RUNTIME_VENV)], check=True)
    requirements = RUNTIME_VENV / "requirements.txt"
    subprocess.run(
        [str(VENV_BIN / "uv"), "export", "--quiet", "--frozen", "--no-dev", "--no-emit-project",
         "--no-header", "--format", "requirements-txt", "--output-file", str(requirements)],
        cwd=REPO,
        check=True,
    )  # fmt: skip
    pip = [str(RUNTIME_VENV / "bin" / "pip"), "install", "--quiet"]
    subprocess.run([*pip, "--require-hashes", "-r", str(requirements)], check=True)
    subprocess.run([*pip, "--no-deps", str(REPO)], check=True)
    stamp.write_text(digest)
    return RUNTIME_VENV


def run(
    db: BenchDb, args: Any, workdir: Path, callback_url: str, children: dict[str, Any]
) -> Measured:
    """The run proper; the caller stops what is left of the children."""
    measured = Measured()
    replicas = [start_replica(db, name, workdir, callback_url, children) for name in ("a", "b")]
    ports = start_exporters(db, workdir, children)
    warm_up(args, replicas, ports, callback_url)
    leader, follower = roles(replicas)
    pids = {"leader": children[leader.name].pid, "follower": children[follower.name].pid}
    say(f"idle for {args.seconds:g} s: nobody scraped ({leader.name} leads)")
    measured.idle_seconds, measured.idle_cpu = idle_cpu(pids, args.seconds)
    measured.rss = {role: rss_mb(pid) for role, pid in pids.items()}
    for name in ("postgres_exporter", "blackbox"):
        measured.rss[name] = rss_mb(children[name].pid)
    for replica in replicas:  # a clean stop writes the modules each held
        stop_process(children.pop(replica.name))
    measured.floor_modules = floor_modules(replicas)
    measured.run_path_modules = run_path_modules()
    with floor_process(measured.floor_modules) as pid:
        measured.floor_rss = rss_mb(pid)
    measured.imports_ms = import_times(measured.floor_modules, args.imports)
    return measured


def start_replica(
    db: BenchDb, name: str, workdir: Path, callback_url: str, children: dict[str, Any]
) -> Replica:
    """One `rollout-monitor run` with the default configuration, through the listing wrapper;
    returned once it is ready (the first of two to be ready leads)."""
    wrapper = workdir / "run_and_list.py"
    wrapper.write_text(RUN_AND_LIST, encoding="utf-8")
    replica = Replica(name, free_port(), workdir / f"modules-{name}.json")
    children[name] = start(
        name,
        [PYTHON, str(wrapper), "run", "--listen-address", f"127.0.0.1:{replica.port}"],
        {
            "DATABASE_URL": db.url(MONITOR_ROLE),
            "ROLLOUT_CALLBACK_URL": callback_url,
            MODULES_FILE: str(replica.modules_file),
        },
        workdir,
    )
    wait_http(replica.port, "/readyz", 180)
    return replica


def warm_up(args: Any, replicas: list[Replica], ports: dict[str, int], callback_url: str) -> None:
    """Everything scraped every --scrape-interval, blackbox probing as often as the monitors."""
    probe_every = CallbackSettings().interval
    probe = f"/probe?module={BLACKBOX_MODULE}&target={quote(callback_url, safe='')}"
    say(f"warm-up {args.warmup:g} s: scraped every {args.scrape_interval:g} s")
    started = time.monotonic()
    next_scrape = next_probe = started
    while True:
        now = time.monotonic()
        if now >= next_scrape:
            for port in [r.port for r in replicas] + list(ports.values()):
                scrape(port)
            next_scrape += args.scrape_interval
        if now >= next_probe:
            scrape(ports["blackbox"], probe)
            next_probe += probe_every
        if now - started >= args.warmup:
            return
        time.sleep(max(0.0, min(next_scrape, next_probe, started + args.warmup) - now))


def roles(replicas: list[Replica]) -> tuple[Replica, Replica]:
    """(leader, follower), as each says on /metrics (rollout_monitor_leader); raise unless one
    leads: the figures would mean nothing."""
    for replica in replicas:
        _, body, _ = http_get("127.0.0.1", replica.port, "/metrics")
        found = samples(body).get("rollout_monitor_leader", [({}, 0.0)])
        replica.leads = found[0][1] == 1
    leaders = [r for r in replicas if r.leads]
    if len(leaders) != 1:
        raise RuntimeError(f"{len(leaders)} of the two replicas lead; exactly one should")
    followers = [r for r in replicas if not r.leads]
    return leaders[0], followers[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (every thread), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pids: dict[str, int], seconds: float) -> tuple[float, dict[str, float]]:
    """(wall seconds, role -> % of one core) over `seconds` in which nobody asks anything."""
    before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    used = {role: 100 * (cpu_seconds(pid) - before[role]) / wall for role, pid in pids.items()}
    return wall, used


def python_modules(code: str) -> list[str]:
    """The JSON list a snippet run by the virtualenv's python prints."""
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    found: list[str] = json.loads(out.stdout)
    return found


def floor_modules(replicas: list[Replica]) -> list[str]:
    """The third-party top-level modules the replicas held, less a bare interpreter's own."""
    held: set[str] = set()
    for replica in replicas:
        held.update(json.loads(replica.modules_file.read_text(encoding="utf-8")))
    # In the runtime virtualenv the project is a wheel in site-packages too: it is no floor.
    return sorted(held - set(python_modules(BARE_MODULES)) - OWN_PACKAGES)


def run_path_modules() -> list[str]:
    """The third-party top-level modules importing the run path alone loads (no daemon)."""
    code = (
        "import json, sys, sysconfig\n"
        f"{RUN_PATH}\n"
        "paths = sysconfig.get_paths()\n"
        "sites = (paths['purelib'], paths['platlib'])\n"
        "print(json.dumps(sorted({n.split('.')[0] for n, m in list(sys.modules.items())"
        " if (getattr(m, '__file__', None) or '').startswith(sites)})))"
    )
    return sorted(set(python_modules(code)) - set(python_modules(BARE_MODULES)) - OWN_PACKAGES)


@contextlib.contextmanager
def floor_process(modules: list[str]) -> Iterator[int]:
    """A fresh interpreter that imported exactly these modules and sleeps; its pid."""
    code = f"import {', '.join(modules)}\nimport time\nprint('ready', flush=True)\n"
    code += f"time.sleep({FLOOR_LIFETIME})\n"
    proc = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the floor's interpreter did not import {modules}")
        time.sleep(1)  # let its allocator settle, as the replicas had minutes to
        yield proc.pid
    finally:
        stop_process(proc)


def import_times(floor: list[str], runs: int) -> dict[str, float]:
    """Median wall ms of `python -c` with nothing, the run path and the floor, interleaved
    (after one run of each: byte code compiled, files cached)."""
    snippets = {"nothing": "pass", "run path": RUN_PATH, "floor": f"import {', '.join(floor)}"}
    times: dict[str, list[float]] = {name: [] for name in snippets}
    for attempt in range(runs + 1):
        for name, code in snippets.items():
            started = time.perf_counter()
            subprocess.run([PYTHON, "-c", code], check=True)
            if attempt:
                times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def canonical(name: str) -> str:
    """A distribution's name as the packaging specs compare them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(root: str = "rollout-monitor") -> set[str]:
    """The distributions rollout-monitor needs to run: its requirements without extras, and
    theirs, with the extras each asks for (psycopg[binary] brings psycopg-binary)."""
    needed: set[tuple[str, frozenset[str]]] = set()
    queue: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while queue:
        name, extras = queue.pop()
        if (canonical(name), extras) in needed:
            continue
        needed.add((canonical(name), extras))
        with contextlib.suppress(metadata.PackageNotFoundError):
            for requirement in metadata.requires(name) or []:
                spec, _, marker = requirement.partition(";")
                extra = EXTRA.search(marker)
                if extra is not None and extra[1] not in extras:
                    continue  # an extra nobody asked for: the project's own dev extra too
                found = REQUIREMENT.match(spec)
                if found is not None:
                    asked = frozenset(e.strip() for e in (found[2] or "").split(",") if e.strip())
                    queue.append((found[1], asked))
    return {name for name, _ in needed}


def not_dependencies(modules: list[str]) -> list[str]:
    """Of these modules, those no runtime dependency of rollout-monitor provides: imported only
    because this virtualenv has them (the dev extras), as a library probes for what is there."""
    needed = runtime_distributions()
    providers = metadata.packages_distributions()
    return [m for m in modules if not any(canonical(d) in needed for d in providers.get(m, []))]


def print_report(report: Report, m: Measured) -> None:
    """The figures: memory, CPU, imports, and the floor's modules."""
    both = m.rss["postgres_exporter"] + m.rss["blackbox"]
    report.data.update(measured=m.__dict__)
    report.table(
        "RSS at the end of the idle window (MiB), in the same run",
        ["process", "RSS", "ratio to both exporters"],
        [
            ["rollout-monitor leader", m.rss["leader"], m.rss["leader"] / both],
            ["rollout-monitor follower", m.rss["follower"], m.rss["follower"] / both],
            ["postgres_exporter", m.rss["postgres_exporter"], ""],
            ["blackbox_exporter", m.rss["blackbox"], ""],
            ["both exporters", both, 1.0],
            ["the floor: the third-party libraries alone", m.floor_rss, m.floor_rss / both],
            ["the leader above the floor", m.rss["leader"] - m.floor_rss, ""],
            ["the follower above the floor", m.rss["follower"] - m.floor_rss, ""],
        ],
    )
    report.table(
        f"idle CPU over {m.idle_seconds:.0f} s, nobody scraping (% of one core)",
        ["replica", "CPU"],
        [[role, f"{share:.3f}"] for role, share in m.idle_cpu.items()],
    )
    imports = m.imports_ms
    report.table(
        "import time (median wall ms of `python -c`, less `python -c pass`)",
        ["import", "ms", "less pass"],
        [[name, ms, ms - imports["nothing"]] for name, ms in imports.items()],
    )
    lazy = sorted(set(m.floor_modules) - set(m.run_path_modules))
    report.print(
        f"the floor imports: {', '.join(m.floor_modules)}\n"
        f"of which the running daemons loaded later than the run path's import: "
        f"{', '.join(lazy) or 'none'}\n"
        f"of which no runtime dependency provides (present in this virtualenv only): "
        f"{', '.join(not_dependencies(m.floor_modules)) or 'none'}"
    )


def judge(targets: Targets, m: Measured) -> None:
    """The lean run's targets."""
    both = m.rss["postgres_exporter"] + m.rss["blackbox"]
    for role, limit, why in (
        ("leader", LEADER_RSS_RATIO, "each replica's"),
        ("follower", LEADER_RSS_RATIO, "each replica's"),
        ("follower", FOLLOWER_RSS_RATIO, "a follower's"),
    ):
        ratio = m.rss[role] / both
        shown = f"{ratio:.2f}x ({m.rss[role]:.1f} / {both:.1f} MiB)"
        what = f"{role} RSS / both exporters' ({why} limit)"
        targets.at_most(what, ratio, limit, "x", shown=shown)
    own = m.rss["leader"] - m.floor_rss
    shown = f"{own:.1f} MiB ({m.rss['leader']:.1f} - {m.floor_rss:.1f})"
    targets.at_most("the project's own RSS above the floor", own, OWN_RSS_MIB, "MiB", shown=shown)
    targets.at_most(
        "leader idle CPU, % of a core", m.idle_cpu["leader"], IDLE_CPU_PERCENT, "%", digits=3
    )
    imports = m.imports_ms["run path"] - m.imports_ms["nothing"]
    floor = m.imports_ms["floor"] - m.imports_ms["nothing"]
    shown = f"{imports:.0f} ms (the floor's: {floor:.0f} ms)"
    targets.at_most("run-path import time", imports, IMPORT_MS, "ms", shown=shown)


if __name__ == "__main__":
    raise SystemExit(main())
