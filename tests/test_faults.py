"""Faults with the daemon running: the line to PostgreSQL cut and restored through a real TCP
proxy, a real lock queue behind ALTER TABLE, CREATE INDEX CONCURRENTLY, misbehaving callbacks.

What the monitor does to the database is read from pg_stat_activity, not from its own metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import fixtures
import httpx
import psycopg
import pytest
from callback_servers import (
    RunningServer,
    closing_server,
    delayed_server,
    garbage_server,
    hanging_server,
)
from conftest import FreshDatabase
from monitoring import make_config
from prometheus_client.parser import text_string_to_metric_families
from tcp_proxy import TcpProxy

from monitor.config import Config
from monitor.demo.postgres import free_port
from monitor.redact import Redactor
from monitor.service import Monitor

INTERVAL = 1.0  # seconds between two runs of every check in these tests
ALL_CHECKS = ("schema", "drift", "backfill", "connections", "activity", "query_performance", "pool")
# A check that finds no connection starts a fresh attempt, and a pending one retries within a
# second (db.RECONNECT_TIMEOUT): up again within one interval plus that second, plus a margin
# for a busy machine.
RECOVERY_BOUND = INTERVAL + 1.0 + 1.5


def fast_config(url: str, **sections: Any) -> Config:
    """Every database check each second, /metrics on a free port, the probe off."""
    checks: dict[str, Any] = {name: {"interval": "1s"} for name in ALL_CHECKS}
    checks.update(sections.pop("checks", {}))
    return make_config(
        url,
        listen_address=f"127.0.0.1:{free_port()}",
        checks={**checks, "callback": checks.get("callback", {"enabled": False})},
        **sections,
    )


@dataclass
class Running:
    """A monitor serving in a background thread, and where to scrape it."""

    monitor: Monitor
    base_url: str

    def scrape(self) -> dict[str, float]:
        """Every sample on /metrics, keyed like name{a="b"} (labels sorted); must answer 200."""
        response = httpx.get(f"{self.base_url}/metrics", timeout=2)
        assert response.status_code == 200
        samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def value(self, key: str) -> float | None:
        return self.scrape().get(key)

    def wait_for(self, key: str, wanted: float, timeout: float) -> float:
        """Seconds until /metrics shows the value; fails after timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.value(key) == wanted:
                return time.monotonic() - started
            time.sleep(0.05)
        pytest.fail(f"{key} never became {wanted} within {timeout}s (last {self.value(key)})")


@contextmanager
def serving(config: Config) -> Iterator[Running]:
    """Monitor.serve in a thread until the block ends; the thread must end within 10 s."""
    monitor = Monitor(config, Redactor())
    stop = threading.Event()
    thread = threading.Thread(target=monitor.serve, args=(stop,), name="monitor-under-test")
    thread.start()
    try:
        yield Running(monitor, f"http://{config.listen_address}")
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the monitor did not stop within 10 s"


@dataclass(frozen=True)
class Sessions:
    """What pg_stat_activity shows about the monitor's sessions at one moment."""

    count: int
    longest_lock_wait: float
    longest_transaction: float


SESSIONS = """
SELECT count(*),
       coalesce(max(extract(epoch FROM clock_timestamp() - state_change))
                FILTER (WHERE wait_event_type = 'Lock'), 0),
       coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
FROM pg_stat_activity
WHERE application_name = 'rollout-monitor' AND datname = %s
"""


def monitor_sessions(conn: psycopg.Connection[Any], dbname: str) -> Sessions:
    row = conn.execute(SESSIONS, (dbname,)).fetchone()
    assert row is not None
    return Sessions(int(row[0]), float(row[1]), float(row[2]))


class Sampler:
    """Samples the monitor's sessions every 50 ms in a thread, keeping every observation."""

    def __init__(self, fresh_db: FreshDatabase) -> None:
        self._conn = fresh_db.conn()
        self._dbname = fresh_db.name
        self._stop = threading.Event()
        self.samples: list[Sessions] = []
        self._thread = threading.Thread(target=self._run, name="sampler")

    def _run(self) -> None:
        while True:
            self.samples.append(monitor_sessions(self._conn, self._dbname))
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def most(self, field: str) -> float:
        assert self.samples, "no sample taken"
        return float(max(getattr(sample, field) for sample in self.samples))


def settle_sessions(fresh_db: FreshDatabase, at_most: int, timeout: float = 5) -> int:
    """The monitor's session count once it is at most `at_most` (the server may take a moment
    to notice a cut connection); fails if it stays above."""
    conn = fresh_db.conn()
    deadline = time.monotonic() + timeout
    while True:
        count = monitor_sessions(conn, fresh_db.name).count
        if count <= at_most or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


# --- the line to the database cut and restored -----------------------------------------------


@pytest.mark.parametrize("outage", [2.0, 20.0], ids=["short", "longer_than_the_old_backoff"])
def test_postgres_up_drops_on_a_cut_and_returns_within_an_interval_of_restore(
    fresh_db: FreshDatabase, outage: float
) -> None:
    """A 20 s outage would have left psycopg_pool's 1-2-4-8-16 s backoff asleep until ~31 s."""
    with TcpProxy(fresh_db.server.host, fresh_db.server.port) as proxy:
        config = fast_config(proxy.url_for(fresh_db.url), database={"acquire_timeout": "2s"})
        cap = config.database.pool_max_size
        with serving(config) as running, Sampler(fresh_db) as sampler:
            running.wait_for("rollout_postgres_up", 1, timeout=15)
            proxy.cut()
            running.wait_for("rollout_postgres_up", 0, timeout=RECOVERY_BOUND + 2)
            deadline = time.monotonic() + outage
            while time.monotonic() < deadline:
                assert running.value("rollout_postgres_up") == 0  # and /metrics answers
                time.sleep(0.2)
            proxy.restore()
            recovered_in = running.wait_for("rollout_postgres_up", 1, timeout=outage + 20)
            time.sleep(2 * INTERVAL)
            assert running.value("rollout_postgres_up") == 1
            assert running.value('rollout_check_success{check="schema"}') == 1
            assert settle_sessions(fresh_db, cap) <= cap
        assert sampler.most("count") <= cap
        print(
            f"outage {outage:g}s: rollout_postgres_up back to 1 {recovered_in:.2f}s after restore"
        )
        assert recovered_in <= RECOVERY_BOUND
    assert settle_sessions(fresh_db, 0) == 0


# --- a lock queue behind the migration's ALTER TABLE -----------------------------------------


def run_quietly(url: str, statement: str) -> None:
    """Run one statement in its own connection (it may wait on a lock, or be cancelled)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


def wait_for_lock_waiters(conn: psycopg.Connection[Any], count: int) -> None:
    """Block until at least that many sessions wait on a lock (at most 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        found = row.fetchone()
        if found is not None and found[0] >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"never saw {count} sessions waiting on a lock")


@contextmanager
def lock_queue(fresh_db: FreshDatabase) -> Iterator[None]:
    """An app transaction holds users, an ALTER TABLE waits behind it, two logins behind that."""
    url = fresh_db.url
    holder = psycopg.connect(url, autocommit=False)
    holder.execute("SELECT count(*) FROM users")  # ACCESS SHARE until the transaction ends
    statements = [
        'ALTER TABLE users ADD COLUMN "threadsBio" text',
        "SELECT count(*) FROM users",
        "SELECT count(*) FROM users",
    ]
    waiters = [threading.Thread(target=run_quietly, args=(url, s)) for s in statements]
    try:
        for count, waiter in enumerate(waiters, start=1):
            waiter.start()
            wait_for_lock_waiters(fresh_db.conn(), count)
        yield
    finally:
        holder.rollback()
        holder.close()
        for waiter in waiters:
            waiter.join(10)


def test_monitor_never_queues_behind_ddl_and_reports_the_lock_queue(
    fresh_db: FreshDatabase,
) -> None:
    """For 6 s of lock queue at 1 s intervals: no monitor session waits on a lock longer than
    lock_timeout, none exceeds the pool cap, no transaction lives past statement_timeout; the
    checks reading users are skipped and the queue is reported."""
    fixtures.apply(fresh_db.conn(), "migration_001")
    config = fast_config(fresh_db.url)
    settings = config.database
    with serving(config) as running:
        running.wait_for('rollout_check_success{check="backfill"}', 1, timeout=15)
        with Sampler(fresh_db) as sampler, lock_queue(fresh_db):
            running.wait_for('rollout_check_skipped{check="backfill"}', 1, timeout=5)
            time.sleep(6)
            during = running.scrape()
        running.wait_for('rollout_check_skipped{check="backfill"}', 0, timeout=5)
    assert sampler.most("longest_lock_wait") < settings.lock_timeout + 0.5
    assert sampler.most("count") <= settings.pool_max_size
    assert sampler.most("longest_transaction") < settings.statement_timeout
    for check in ("backfill", "activity", "query_performance"):
        assert during[f'rollout_check_skipped{{check="{check}"}}'] == 1, check
    assert during["rollout_db_ddl_waiting_sessions"] == 1
    assert during["rollout_db_sessions_blocked_by_ddl"] == 2
    assert during["rollout_db_lock_waiting_sessions"] == 3
    assert during["rollout_postgres_up"] == 1


def test_create_index_concurrently_completes_while_the_monitor_polls(
    fresh_db: FreshDatabase,
) -> None:
    """CREATE INDEX CONCURRENTLY waits out every older transaction: the monitor's are short."""
    fixtures.apply(fresh_db.conn(), "migration_001")
    config = fast_config(fresh_db.url)
    with serving(config) as running, Sampler(fresh_db) as sampler:
        running.wait_for('rollout_check_success{check="backfill"}', 1, timeout=15)
        time.sleep(2 * INTERVAL)  # every check has a transaction coming or going
        conn = fresh_db.conn()
        conn.execute("SET statement_timeout = '30s'")
        started = time.monotonic()
        conn.execute('CREATE INDEX CONCURRENTLY idx_users_created ON users ("createdAt")')
        took = time.monotonic() - started
        row = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_users_created'::regclass"
        ).fetchone()
    assert row == (True,)
    assert took < 30
    assert sampler.most("longest_transaction") < config.database.statement_timeout


# --- misbehaving callbacks, through the running daemon ---------------------------------------


@pytest.mark.parametrize(
    ("server_factory", "outcome"),
    [
        (lambda: delayed_server(200, delay=3.0), "timeout"),
        (hanging_server, "timeout"),
        (garbage_server, "connection_error"),
        (closing_server, "connection_error"),
    ],
    ids=["slow", "hanging", "garbage", "closing"],
)
def test_daemon_probe_of_a_misbehaving_callback_ends_by_its_deadline(
    fresh_db: FreshDatabase,
    server_factory: Callable[[], AbstractContextManager[RunningServer]],
    outcome: str,
) -> None:
    with server_factory() as app:
        config = fast_config(
            fresh_db.url, checks={"callback": {"url": app.url, "timeout": "1s", "interval": "2s"}}
        )
        with serving(config) as running:
            key = f'rollout_auth_callback_requests_total{{outcome="{outcome}"}}'
            running.wait_for(key, 1, timeout=5)
            samples = running.scrape()
    assert samples['rollout_check_success{check="callback"}'] == 0
    assert samples['rollout_check_duration_seconds{check="callback"}'] < 1.0 + 1.0
    assert samples["rollout_postgres_up"] == 1
