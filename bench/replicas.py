"""N sidecars, one poller: the database time and the memory of 1 and of 5 replicas (issue 12).

    .venv/bin/python bench/replicas.py --db bench/results/db-1000000.json
    .venv/bin/python bench/replicas.py --rows 200000 --seconds 240
    .venv/bin/python bench/replicas.py --rows 10000 --seconds 10       # a dry run, about 40 s

On one database, one after the other:
1. one `rollout-monitor run` (default check intervals, the callback probed every second) for
   --seconds after it is ready: the monitor role's time in pg_stat_statements (execution and
   planning), and its RSS;
2. five replicas of it, as five sidecars would run, for the same time: the same figures, the
   leader's RSS (rollout_monitor_leader 1) and the largest follower's;
3. during step 2, in the same run, `prometheus-postgres-exporter` and
   `prometheus-blackbox-exporter` (probing the same callback once a second): their RSS.

Targets (bench/targets.py): exactly one leader, alone and among the five; the followers' extra
database time: five replicas' within 1.2 times one replica's (issue 12), judged at the one-replica
phase's cost per call (five monitors and two exporters contend for this machine's CPUs, which
inflates every statement's time; the measured ratio is shown beside it); the leader's RSS at most
1.8 times, the largest follower's at most 1.5 times, that of the two exporters together (the lean
run's targets, footprint.py's constants). Exit 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from common import (
    MONITOR_ROLE,
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
from exporters import MONITOR_CONFIG, role_time, start, start_exporters
from footprint import FOLLOWER_RSS_RATIO, LEADER_RSS_RATIO
from make_db import add_db_arguments, open_db
from targets import Targets

from monitor.demo.postgres import free_port
from tests.callback_servers import delayed_server

REPLICAS = 5
DB_TIME_RATIO = 1.2  # issue 12: five replicas' database time against one's


def monitor_time(db: BenchDb) -> float:
    """The monitor role's milliseconds in pg_stat_statements since its reset."""
    return role_time(db).get(MONITOR_ROLE, (0.0, 0))[0]


def statements(db: BenchDb) -> dict[str, list[Any]]:
    """The monitor role's statements since the reset: queryid -> [ms, calls, first line]."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT queryid::text, total_exec_time + total_plan_time, calls, query"
            " FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
            " WHERE r.rolname = %s",
            (MONITOR_ROLE,),
        ).fetchall()
    return {qid: [float(ms), int(calls), first_line(query)] for qid, ms, calls, query in rows}


def top(found: dict[str, list[Any]], count: int = 12) -> list[list[Any]]:
    """The costliest statements first."""
    return sorted(found.values(), key=lambda row: -row[0])[:count]


def uncontended_extra(one: dict[str, list[Any]], many: dict[str, list[Any]]) -> float:
    """The milliseconds the extra calls of the five-replica phase cost at the one-replica
    phase's mean per call (its own mean for a statement the single replica never ran): what
    the followers add, without the CPU contention five monitors cause on this 2-CPU machine."""
    extra = 0.0
    for qid, (ms, calls, _) in many.items():
        base_ms, base_calls = (one[qid][0], one[qid][1]) if qid in one else (ms, calls)
        added = calls - (one[qid][1] if qid in one else 0)
        if added > 0 and base_calls:
            extra += added * base_ms / base_calls
    return extra


def first_line(query: str) -> str:
    """The query's first line that is not a comment, shortened."""
    lines = [line.strip() for line in query.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith("--")]
    return (code or lines or [""])[0][:70]


def reset_statements(db: BenchDb) -> None:
    """Forget every statement's statistics."""
    with db.connect() as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def start_replicas(
    db: BenchDb, count: int, workdir: Path, callback_url: str, children: dict[str, Any]
) -> dict[str, int]:
    """`count` monitors on one database, each on a port of its own; name -> port."""
    (workdir / "monitor.yaml").write_text(MONITOR_CONFIG, encoding="utf-8")
    ports = {}
    for i in range(count):
        name = f"rollout-monitor-{count}-{i}"
        ports[name] = free_port()
        children[name] = start(
            name,
            [str(VENV_BIN / "rollout-monitor"), "run", "--config", str(workdir / "monitor.yaml")],
            {
                "DATABASE_URL": db.url(MONITOR_ROLE),
                "ROLLOUT_CALLBACK_URL": callback_url,
                "ROLLOUT_LISTEN_ADDRESS": f"127.0.0.1:{ports[name]}",
            },
            workdir,
        )
    for port in ports.values():
        wait_http(port, "/readyz", 180)
    return ports


def measure(
    db: BenchDb, seconds: float, ports: dict[str, int], children: dict[str, Any]
) -> dict[str, Any]:
    """Database time over `seconds`, then each replica's RSS and whether it leads."""
    reset_statements(db)
    time.sleep(seconds)
    spent = monitor_time(db)
    replicas = {}
    for name, port in ports.items():
        _, body, _ = http_get("127.0.0.1", port, "/metrics")
        leader = samples(body).get("rollout_monitor_leader", [({}, 0.0)])[0][1]
        replicas[name] = {"leader": leader == 1, "rss_mb": rss_mb(children[name].pid)}
    return {
        "db_ms": spent,
        "db_ms_per_minute": spent / seconds * 60,
        "replicas": replicas,
        "statements": statements(db),
    }


def stop(children: dict[str, Any], names: list[str]) -> None:
    """Stop these children (SIGTERM, then SIGKILL)."""
    for name in names:
        stop_process(children.pop(name))


def main() -> int:
    """One replica, then five beside the exporters; print and judge."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_db_arguments(parser)
    parser.add_argument("--seconds", type=float, default=300, help="each phase, after ready")
    args = parser.parse_args()
    targets = Targets()
    ensure_exporters()
    db = open_db(args)
    report = Report("replicas", db.rows)
    workdir = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    children: dict[str, Any] = {}
    try:
        with delayed_server(401, 0.05) as callback:
            say(f"one replica, {args.seconds:.0f} s")
            ports = start_replicas(db, 1, workdir, callback.url, children)
            one = measure(db, args.seconds, ports, children)
            stop(children, list(ports))
            say(f"{REPLICAS} replicas and the two exporters, {args.seconds:.0f} s")
            ports = start_replicas(db, REPLICAS, workdir, callback.url, children)
            go = start_exporters(db, workdir, children)
            prober = probe_forever(go["blackbox"], callback.url, args.seconds)
            many = measure(db, args.seconds, ports, children)
            prober.wait(timeout=args.seconds + 30)
            go_rss = {
                name: rss_mb(children[name].pid) for name in ("postgres_exporter", "blackbox")
            }
        print_report(report, one, many, go_rss)
        judge(targets, report)
        return targets.finish(report)
    finally:
        stop(children, list(children))
        report.data["logs"] = str(workdir)
        report.save()
        db.close()
        say(f"results: {report.path}")


def probe_forever(port: int, target: str, seconds: float) -> subprocess.Popen[bytes]:
    """Ask blackbox to probe the callback once a second (and scrape postgres_exporter's
    neighbour nothing): a shell loop, bounded by `seconds`."""
    url = f"http://127.0.0.1:{port}/probe?module=callback_post&target={quote(target, safe='')}"
    loop = f"for i in $(seq {int(seconds)}); do curl -s -o /dev/null '{url}'; sleep 1; done"
    return subprocess.Popen(["sh", "-c", loop])


def print_report(
    report: Report, one: dict[str, Any], many: dict[str, Any], go_rss: dict[str, float]
) -> None:
    """The database time, the memory and the costliest statements; every figure in the JSON."""
    report.data.update(one=one, many=many, go_rss_mb=go_rss)
    ratio = many["db_ms"] / one["db_ms"] if one["db_ms"] else float("nan")
    extra = uncontended_extra(one["statements"], many["statements"])
    modelled = (one["db_ms"] + extra) / one["db_ms"] if one["db_ms"] else float("nan")
    report.data.update(uncontended_extra_ms=extra, modelled_ratio=modelled, measured_ratio=ratio)
    per_minute = one["db_ms_per_minute"] / one["db_ms"] if one["db_ms"] else 0.0
    report.table(
        "Database time of the monitor role (pg_stat_statements: execution + planning)",
        ["replicas", "ms per minute", "ratio to one"],
        [
            [1, one["db_ms_per_minute"], 1.0],
            [f"{REPLICAS}, as measured", many["db_ms_per_minute"], ratio],
            [
                f"{REPLICAS}, the extra calls at one's cost per call",
                (one["db_ms"] + extra) * per_minute,
                modelled,
            ],
        ],
    )
    go = go_rss["postgres_exporter"] + go_rss["blackbox"]
    replicas = many["replicas"].values()
    leader = max((r["rss_mb"] for r in replicas if r["leader"]), default=float("nan"))
    follower = max((r["rss_mb"] for r in replicas if not r["leader"]), default=float("nan"))
    report.data.update(leader_rss_mb=leader, follower_rss_mb=follower, exporters_rss_mb=go)
    report.table(
        "RSS (MiB), in the same run",
        ["process", "RSS", "ratio to both exporters"],
        [
            ["postgres_exporter", go_rss["postgres_exporter"], ""],
            ["blackbox_exporter", go_rss["blackbox"], ""],
            ["both exporters", go, 1.0],
            [
                "rollout-monitor, alone (leads)",
                one["replicas"][next(iter(one["replicas"]))]["rss_mb"],
                "",
            ],
            [f"rollout-monitor leader of {REPLICAS}", leader, leader / go],
            [f"rollout-monitor follower (largest of {REPLICAS - 1})", follower, follower / go],
        ],
    )
    for label, phase in (("one replica", one), (f"{REPLICAS} replicas", many)):
        report.table(
            f"The costliest statements, {label} (ms over the phase)",
            ["ms", "calls", "statement"],
            top(phase["statements"]),
        )


def judge(targets: Targets, report: Report) -> None:
    """One leader; the followers' extra database time; the leader's and a follower's RSS."""
    data = report.data
    for label, phase in (("alone", data["one"]), (f"among {REPLICAS}", data["many"])):
        leaders = sum(r["leader"] for r in phase["replicas"].values())
        targets.equal(f"replicas that lead, {label}", leaders, 1)
    modelled, measured = data["modelled_ratio"], data["measured_ratio"]
    targets.at_most(
        f"database time, {REPLICAS} replicas / 1 (the extra calls at one's cost per call)",
        modelled,
        DB_TIME_RATIO,
        "x",
        shown=f"{modelled:.2f}x (as measured, CPUs contended: {measured:.2f}x)",
    )
    go = data["exporters_rss_mb"]
    for role, rss, limit in (
        ("leader", data["leader_rss_mb"], LEADER_RSS_RATIO),
        ("largest follower", data["follower_rss_mb"], FOLLOWER_RSS_RATIO),
    ):
        shown = f"{rss / go:.2f}x ({rss:.1f} / {go:.1f} MiB)"
        what = f"{role} RSS / both exporters'"
        targets.at_most(what, rss / go, limit, "x", shown=shown)


if __name__ == "__main__":
    raise SystemExit(main())
