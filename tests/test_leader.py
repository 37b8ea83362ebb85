"""N sidecars, one database poller (issue 12, item 5): three real daemons against one PostgreSQL.
One leads (a PostgreSQL advisory lock) and runs the database checks; the others probe their own
callback and hold one session each; when the leader dies another leads within an interval."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import fixtures
import httpx
import pytest
import yaml
from callback_servers import answering_server
from daemons import ALL_CHECKS, Process, daemon
from databases import FreshDatabase
from prometheus_api import Prometheus, wait_for

from monitor.assets import folder
from monitor.daemon.leader import lock_key
from monitor.db import sql
from monitor.demo.postgres import free_port

LEADER_INTERVAL = 1.0
NAMES = ("monitor-a", "monitor-b", "monitor-c")
# What a follower's sessions may run: the leadership's own queries, and the schema check (run
# unexported, for the follower's own judgement of the migration's state).
FOLLOWER_QUERIES = (
    "plumbing",
    "session_limits",
    "leader_try_lock",
    "leader_holder",
    "own_session",
    "schema_objects",
    "server_version",
    "table_exists",
    "prisma_migration",
    "exclusive_locks",
    "prisma_migrate_lock",
)


def config_file(path: Path, callback_url: str, name: str) -> Path:
    """Every check each second, this replica's own application_name (to tell them apart)."""
    checks: dict[str, Any] = {check: {"interval": "1s"} for check in ALL_CHECKS}
    checks["callback"] = {"url": callback_url, "interval": "1s", "timeout": "500ms"}
    path.write_text(
        yaml.safe_dump(
            {
                "checks": checks,
                "log": {"format": "json"},
                "database": {"application_name": name},
                "leader": {"interval": f"{LEADER_INTERVAL}s"},
            }
        )
    )
    return path


@contextmanager
def replicas(
    fresh_db: FreshDatabase, tmp_path: Path, *callback_urls: str
) -> Iterator[list[Process]]:
    """The three replicas; each probes the callback URL of its index (the last one given for
    the rest), as each sidecar probes its own pod's."""
    with ExitStack() as stack:
        processes = []
        for i, name in enumerate(NAMES):
            folder = tmp_path / name
            folder.mkdir()
            url = callback_urls[min(i, len(callback_urls) - 1)]
            config = config_file(folder / "config.yaml", url, name)
            processes.append(
                stack.enter_context(
                    daemon(folder, "--config", str(config), DATABASE_URL=fresh_db.url)
                )
            )
        yield processes


def leaders(processes: list[Process]) -> list[int]:
    """The indexes of the replicas saying rollout_monitor_leader 1 (those still running)."""
    return [
        i
        for i, p in enumerate(processes)
        if p.popen.poll() is None and p.value("rollout_monitor_leader") == 1
    ]


def wait_for_one_leader(processes: list[Process], timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = leaders(processes)
        if len(found) == 1:
            return found[0], time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"no single leader within {timeout}s: {leaders(processes)}")


def query_names() -> dict[str, str]:
    """Each query file's text (as sent) -> its name."""
    folder = Path(sql.__file__).resolve().parent / "queries"
    return {path.read_text().strip(): path.stem for path in folder.glob("*.sql")}


def named(query: str, names: dict[str, str]) -> str:
    """The query file a session's last query came from; ROLLBACK and the pool's check are
    plumbing."""
    if query.strip() in {"", "ROLLBACK", "BEGIN", "BEGIN READ ONLY"}:
        return "plumbing"
    for text, name in names.items():
        if query.strip() and text.startswith(query.strip()[:200]):
            return name
    return "other"


@pytest.mark.parametrize("applied", [False, True], ids=["pending", "applied"])
def test_one_replica_leads_and_only_it_runs_the_database_checks(
    fresh_db: FreshDatabase, tmp_path: Path, applied: bool
) -> None:
    """Applied: the checks that only apply after the migration export too (every family the
    relabelling must cover)."""
    if applied:
        with fresh_db.conn() as conn:
            for name in ("migration_001", "prisma_record_001", "seed_after"):
                fixtures.apply(conn, name)
            conn.commit()
    with answering_server(401) as app, replicas(fresh_db, tmp_path, app.url) as processes:
        leader, _ = wait_for_one_leader(processes, timeout=15)
        processes[leader].wait_for("rollout_postgres_up", 1, timeout=15)
        names = query_names()
        conn = fresh_db.conn()
        seen: dict[str, set[str]] = {name: set() for name in NAMES}
        most = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT application_name, query FROM pg_stat_activity"
                " WHERE application_name = ANY(%s)",
                (list(NAMES),),
            ).fetchall()
            most = max(most, len(rows))
            for application_name, query in rows:
                seen[application_name].add(named(query, names))
            # No pause: a check's query is seen while it runs, for a millisecond or so (an
            # idle session shows its last statement, the ROLLBACK).
        scrapes = [p.scrape() for p in processes]
    assert most <= 3 + 1 + 1
    for i, name in enumerate(NAMES):
        if i == leader:
            assert seen[name] - set(FOLLOWER_QUERIES), seen  # the leader runs the other checks
        else:
            assert seen[name] <= set(FOLLOWER_QUERIES), (name, seen[name])
    for i, samples in enumerate(scrapes):
        assert samples["rollout_monitor_leader"] == float(i == leader)
        state = "applied" if applied else "pending"
        database = {"rollout_postgres_up", f'rollout_migration_state{{state="{state}"}}'}
        database |= {f'rollout_check_success{{check="{c}"}}' for c in ALL_CHECKS if c != "pool"}
        present = database & set(samples)
        assert present == (database if i == leader else set()), (i, present)
        assert samples['rollout_check_success{check="callback"}'] == 1
    # What a scrape config relabels as the leader's (monitor.config.names.DATABASE_SERIES): exactly
    # what the leader exports and a follower does not.
    follower = scrapes[(leader + 1) % 3]
    only_leader = set(scrapes[leader]) - set(follower)
    assert only_leader
    assert {key for key in scrapes[leader] if from_database(key)} == only_leader
    assert not [key for key in follower if from_database(key)]


# The database series as docs/deployment.md gives them to users (the one code block holding
# a `rollout_check_` alternative).
DATABASE_SERIES = next(
    line.strip()
    for line in (Path(__file__).parent.parent / "docs" / "deployment.md").read_text().splitlines()
    if line.strip().startswith("rollout_(?:") and "rollout_check_" in line
)


def from_database(key: str) -> bool:
    """Whether the documented expression matches a sample keyed name{labels} as Prometheus
    would."""
    name, _, labels = key.partition("{")
    values = [re.search(f'{label}="([^"]*)"', labels) for label in ("check", "criterion")]
    joined = ";".join([name, *(found[1] if found else "" for found in values)])
    return re.fullmatch(DATABASE_SERIES, joined) is not None


def test_when_the_leader_dies_another_leads_within_an_interval(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    with answering_server(401) as app, replicas(fresh_db, tmp_path, app.url) as processes:
        leader, _ = wait_for_one_leader(processes, timeout=15)
        time.sleep(2)  # every follower has polled and seen the leader
        page = processes[(leader + 1) % 3].status_page()
        holder = (
            fresh_db.conn()
            .execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objid::bigint = %s",
                (lock_key("001_threads_oauth_enhancements") & 0xFFFF_FFFF,),
            )
            .fetchone()
        )
        assert holder is not None
        assert f"PostgreSQL backend {holder[0]}" in page
        assert "This replica follows" in page
        os.kill(processes[leader].popen.pid, signal.SIGKILL)
        processes[leader].popen.wait()
        successor, took = wait_for_one_leader(processes, timeout=10)
        assert successor != leader
        assert took <= LEADER_INTERVAL + 1.0
        processes[successor].wait_for("rollout_postgres_up", 1, timeout=5)
        processes[successor].wait_for('rollout_migration_state{state="pending"}', 1, timeout=5)
        # Every database check's series are back, each after its first run there: never a
        # last success of 0 that RolloutCheckFailing would take for a check never succeeding.
        samples = processes[successor].scrape()
        for check in ("schema", "drift", "backfill", "connections", "activity"):
            assert samples[f'rollout_check_interval_seconds{{check="{check}"}}'] == 1
            assert samples[f'rollout_check_last_success_timestamp_seconds{{check="{check}"}}'] > 0


@contextmanager
def prometheus(tmp_path: Path, processes: list[Process]) -> Iterator[Prometheus]:
    """A real Prometheus scraping the three replicas as one job, every second, with the rules."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (scripts/install-system-deps installs it)")
    targets = [p.base_url.removeprefix("http://") for p in processes]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted(folder("alerts").glob("*.rules.yml"))],
        "scrape_configs": [{"job_name": "threads-app", "static_configs": [{"targets": targets}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address={address}",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        api = Prometheus(f"http://{address}")
        wait_for("Prometheus scraping all three", lambda: up(api) == len(processes), 30)
        yield api
    finally:
        server.terminate()
        server.wait(timeout=10)


def up(api: Prometheus) -> int:
    try:
        return int(api.value('sum(up{job="threads-app"})') or 0)
    except (httpx.HTTPError, AssertionError):
        return 0


def alerts(api: Prometheus) -> set[tuple[str, str]]:
    """(alertname, instance) of every alert pending or firing."""
    return {
        (a["metric"]["alertname"], a["metric"].get("instance", "")) for a in api.query("ALERTS")
    }


def test_prometheus_sees_one_leader_through_a_failover_and_which_pod_fails(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """Three sidecars and a real Prometheus with the rules: the database's series from one
    replica only, before and after the leader is killed; a 5xx from one pod's callback is one
    page for the fleet (RolloutLoginsFailing of the job: a third of its probes fail; issue 20),
    and nothing else but that pod's own tickets; the failover itself pages nothing."""
    with (
        answering_server(401) as healthy,
        answering_server(503) as failing,
        replicas(fresh_db, tmp_path, healthy.url, healthy.url, failing.url) as processes,
        prometheus(tmp_path, processes) as api,
    ):
        broken = processes[2].base_url.removeprefix("http://")
        wait_for("one leader", lambda: api.value("sum(rollout_monitor_leader)") == 1, 20)
        assert api.value("count(rollout_postgres_up)") == 1
        assert api.value('count(rollout_migration_state{state="pending"} == 1)') == 1
        # Until the first scrapes, absent(rollout_postgres_up) holds RolloutMonitorAbsent
        # pending for a moment; then only the failing pod's alert.
        fleet_page = ("RolloutLoginsFailing", "")
        wait_for("the fleet's page", lambda: fleet_page in alerts(api), 20)
        assert {instance for _, instance in alerts(api) - {fleet_page}} <= {broken}
        leader = next(i for i, p in enumerate(processes) if p.value("rollout_monitor_leader") == 1)
        os.kill(processes[leader].popen.pid, signal.SIGKILL)
        processes[leader].popen.wait()
        killed = processes[leader].base_url.removeprefix("http://")
        # The new leader's series within an interval and a scrape. Meanwhile nothing but the
        # fleet's page, the failing pod's own alerts, and the killed target's
        # RolloutMonitorAbsent pending (a replica is gone; it would page after 2 minutes): no
        # database alert, nothing about the healthy replicas.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for name, instance in alerts(api):
                expected = (name, instance) in (fleet_page, ("RolloutMonitorAbsent", killed))
                assert instance == broken or expected
            time.sleep(0.5)
        assert api.value("sum(rollout_monitor_leader)") == 1
        assert api.value("count(rollout_postgres_up)") == 1
        assert api.value('count(rollout_migration_state{state="pending"} == 1)') == 1
