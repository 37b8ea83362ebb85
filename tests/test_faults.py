"""Faults with the daemon running: the line to PostgreSQL cut and restored through a real TCP
proxy, a real lock queue behind ALTER TABLE, CREATE INDEX CONCURRENTLY, misbehaving callbacks.

What the monitor does to the database is read from pg_stat_activity, not from its own metrics.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import fixtures
import httpx
import psycopg
import pytest
import yaml
from callback_servers import (
    RunningServer,
    answering_server,
    closing_server,
    delayed_server,
    garbage_server,
    hanging_server,
)
from daemons import (
    INTERVAL,
    RECOVERY_BOUND,
    Sessions,
    daemon,
    fast_config,
    fast_config_file,
    monitor_sessions,
    serving,
    settle_sessions,
)
from databases import FreshDatabase
from hostile import ALIAS_BOMB
from locks import run_quietly, wait_for_lock_waiters
from served import rss_mib
from tcp_proxy import TcpProxy

from monitor.config.schema import Config
from monitor.daemon.reload import Daemon, ReloadFailed
from monitor.demo.postgres import free_port
from monitor.output.redact import Redactor


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


# --- the real daemon: SIGTERM, SIGHUP ---------------------------------------------------------


def test_sigterm_stops_promptly_while_the_database_is_cut_off(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """Checks wait for a connection to a server that is gone: closing the pool ends them."""
    with (
        TcpProxy(fresh_db.server.host, fresh_db.server.port) as proxy,
        answering_server(401) as app,
    ):
        config = fast_config_file(tmp_path / "config.yaml", app.url)
        url = proxy.url_for(fresh_db.url)
        with daemon(tmp_path, "--config", str(config), DATABASE_URL=url) as process:
            process.wait_for("rollout_postgres_up", 1, timeout=15)
            proxy.cut()
            process.wait_for("rollout_postgres_up", 0, timeout=10)
            time.sleep(1.5)  # every check is waiting out acquire_timeout now
            code, took = process.stop()
    assert code == 0
    assert took < 10
    assert [e["event"] for e in process.events()][-1] == "stopped"
    assert settle_sessions(fresh_db, 0) == 0


def test_sigterm_stops_promptly_while_the_callback_hangs(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """A probe in flight ends by its own deadline (5 s by default); nothing waits longer."""
    with hanging_server() as app:
        config = tmp_path / "config.yaml"
        config.write_text(f"checks:\n  callback:\n    url: {app.url}\n")
        with daemon(tmp_path, "--config", str(config), DATABASE_URL=fresh_db.url) as process:
            deadline = time.monotonic() + 10
            while not app.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert app.requests, "the probe never reached the callback"
            code, took = process.stop()
    assert code == 0
    assert took < 10
    assert settle_sessions(fresh_db, 0) == 0


def test_sighup_applies_a_valid_config_and_keeps_the_last_good_one_when_invalid(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    with answering_server(401) as first, answering_server(401) as second:
        config = fast_config_file(tmp_path / "config.yaml", first.url, "5s")
        with daemon(tmp_path, "--config", str(config), DATABASE_URL=fresh_db.url) as process:
            process.wait_for("rollout_postgres_up", 1, timeout=15)
            assert process.value('rollout_check_interval_seconds{check="callback"}') == 5
            assert process.value("rollout_config_last_reload_successful") == 1
            started_at = process.value("rollout_config_last_reload_success_timestamp_seconds")

            fast_config_file(config, second.url, "1s")
            process.popen.send_signal(signal.SIGHUP)
            process.wait_for_event("config_reloaded")
            process.wait_for('rollout_check_interval_seconds{check="callback"}', 1, timeout=5)
            process.wait_for("rollout_postgres_up", 1, timeout=5)
            served_by_first = len(first.requests)
            time.sleep(2.5)
            assert len(second.requests) >= 2
            assert len(first.requests) == served_by_first
            reloaded_at = process.value("rollout_config_last_reload_success_timestamp_seconds")
            assert reloaded_at is not None
            assert started_at is not None
            assert reloaded_at > started_at

            config.write_text("checks:\n  callback:\n    interval: soon\nunknown: 1\n")
            process.popen.send_signal(signal.SIGHUP)
            failed = process.wait_for_event("config_reload_failed")
            process.wait_for("rollout_config_last_reload_successful", 0, timeout=5)
            seen = len(second.requests)
            time.sleep(2.5)
            assert len(second.requests) >= seen + 2  # the last good config still probes
            samples = process.scrape()
            code, _ = process.stop()
    assert failed["problems"] == [
        f"{config}: checks.callback.interval: invalid duration 'soon': expected a number with a "
        "unit ms, s, m, h, d or w, e.g. 15s or 1h30m",
        f"{config}: unknown: unknown key",
    ]
    assert samples['rollout_check_interval_seconds{check="callback"}'] == 1
    assert samples["rollout_postgres_up"] == 1
    assert samples["rollout_config_last_reload_success_timestamp_seconds"] == reloaded_at
    assert code == 0
    assert settle_sessions(fresh_db, 0) == 0


# Each written over a valid config file, then SIGHUP: the reload must fail, the daemon live on.
HOSTILE_RELOADS: tuple[tuple[str, bytes], ...] = (
    ("config", b'database:\n  application_name: "\xff"\n'),
    ("config", b"x: " + b"[" * 20_000 + b"]" * 20_000 + b"\n"),
    ("config", ALIAS_BOMB.encode()),
    ("config", b"checks:\n  drift:\n    interval: 99999999999999h\n"),
    ("config", b"database:\n  pool_max_size: " + b"9" * 5000 + b"\n"),
    ("config", b"log: {level: info}\nlog: {level: debug}\n"),
    ("config", b"database:\n  statement_timeout: 600h\n"),
    ("config", b'checks:\n  callback:\n    headers: {Authorization: "Bearer x\\n"}\n'),
    ("config", b"database: [1, 2]\n"),
    ("web", b"basic_auth_users:\n  \xffadmin: x\n"),
    ("web", ALIAS_BOMB.encode()),
    ("web", b'basic_auth_users:\n  "a:b": "$2b$04$' + b"a" * 53 + b'"\n'),
    ("web", b'http_server_config:\n  headers:\n    Content-Security-Policy: "a\\nX: b"\n'),
    ("web", b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
)


def test_no_hostile_reload_stops_the_daemon_or_its_scrapes(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """Finding 1: six of fourteen such reloads killed the daemon, one hung it. Now each is one
    config_reload_failed event, and the last good configuration keeps serving."""
    with answering_server(401) as app:
        config = fast_config_file(tmp_path / "config.yaml", app.url)
        good_config = config.read_bytes()
        web = tmp_path / "web.yaml"
        web.write_text("{}\n")
        with daemon(
            tmp_path,
            "--config",
            str(config),
            "--web-config-file",
            str(web),
            DATABASE_URL=fresh_db.url,
        ) as process:
            process.wait_for("rollout_postgres_up", 1, timeout=15)
            for number, (which, content) in enumerate(HOSTILE_RELOADS, start=1):
                (config if which == "config" else web).write_bytes(content)
                started = time.monotonic()
                process.popen.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    failed = [e for e in process.events() if e["event"] == "config_reload_failed"]
                    if len(failed) == number:
                        break
                    time.sleep(0.05)
                assert len(failed) == number, (which, content[:60], process.log_path.read_text())
                assert time.monotonic() - started < 10
                assert process.popen.poll() is None
                assert process.value("rollout_config_last_reload_successful") == 0
                config.write_bytes(good_config)
                web.write_text("{}\n")
            requests = len(app.requests)
            time.sleep(2.5)
            assert len(app.requests) > requests  # the last good configuration still probes
            code, _ = process.stop()
    assert code == 0
    log = process.log_path.read_text()
    assert "Traceback" not in log
    assert all(line.startswith("{") for line in log.splitlines()), log


def test_a_failed_reload_shows_on_the_next_scrape(fresh_db: FreshDatabase, tmp_path: Path) -> None:
    """Found in CI: /metrics is rendered ahead and served again until a check runs; a reload's
    outcome is not a check run, so a scrape right after a failed reload still said 1."""
    with answering_server(401) as app:
        config = fast_config_file(tmp_path / "config.yaml", app.url, callback_interval="10m")
        slow = yaml.safe_load(config.read_text())
        for check in slow["checks"].values():
            check["interval"] = "10m"  # no check runs again during the test
        config.write_text(yaml.safe_dump(slow))
        with daemon(tmp_path, "--config", str(config), DATABASE_URL=fresh_db.url) as process:
            process.wait_for("rollout_postgres_up", 1, timeout=15)
            deadline = time.monotonic() + 15
            while httpx.get(f"{process.base_url}/readyz").status_code != 200:
                assert time.monotonic() < deadline, "never ready"
                time.sleep(0.05)
            time.sleep(0.5)  # the last check's run has ended
            assert process.value("rollout_config_last_reload_successful") == 1  # now rendered
            config.write_text("database: [1, 2]\n")
            process.popen.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                e["event"] == "config_reload_failed" for e in process.events()
            ):
                time.sleep(0.02)
            assert process.value("rollout_config_last_reload_successful") == 0
            code, _ = process.stop()
    assert code == 0


def test_sighup_moves_the_listen_address_and_leaks_no_pool(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    """The old monitor's sessions end with it: never more than one pool's worth at once."""
    config = tmp_path / "config.yaml"
    first, second = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config.write_text(f"listen_address: '{first}'\n")
    environment = {"DATABASE_URL": fresh_db.url, "ROLLOUT_LISTEN_ADDRESS": ""}  # the file's
    with daemon(tmp_path, "--config", str(config), **environment) as process:
        process.base_url = f"http://{first}"
        process.wait_for("rollout_postgres_up", 1, timeout=15)
        with Sampler(fresh_db) as sampler:
            for address in (second, first, second):
                config.write_text(f"listen_address: '{address}'\n")
                reloads = len([e for e in process.events() if e["event"] == "config_reloaded"])
                process.popen.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 10
                while (
                    len([e for e in process.events() if e["event"] == "config_reloaded"]) == reloads
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                process.base_url = f"http://{address}"
                process.wait_for("rollout_postgres_up", 1, timeout=10)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{first}/metrics", timeout=1)
        code, _ = process.stop()
    assert code == 0
    assert sampler.most("count") <= 3
    assert settle_sessions(fresh_db, 0) == 0


# --- issue 22: stray signals, reloads from files that block, a reload that waits --------------

UNREACHABLE = "postgresql://mon@127.0.0.1:1/app"  # refused at once: the daemon serves anyway


def test_stray_signals_are_ignored_and_logged_not_fatal(tmp_path: Path) -> None:
    """Finding 10: SIGUSR1, SIGUSR2 and SIGALRM killed the daemon (exit -10, -12, -14) with no
    clean stop. Now every signal whose default ends a process is ignored (logged) or stops it
    cleanly."""
    stray = [
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGALRM,
        signal.SIGVTALRM,
        signal.SIGPROF,
        signal.SIGIO,
        signal.SIGPWR,
        signal.SIGRTMIN,
        signal.SIGRTMIN + 5,
        signal.SIGRTMAX,
    ]
    with daemon(tmp_path, DATABASE_URL=UNREACHABLE) as process:
        for number in stray:
            process.popen.send_signal(number)
        deadline = time.monotonic() + 10
        while (
            len(ignored := [e for e in process.events() if e["event"] == "signal_ignored"])
            < len(stray)
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert process.popen.poll() is None
        assert httpx.get(f"{process.base_url}/healthz", timeout=2).status_code == 200
        code, took = process.stop()
    names = [e["signal"] for e in ignored]
    assert names[:7] == [signal.Signals(s).name for s in stray[:7]]
    assert names[7:] == ["SIGRTMIN", "SIGRTMIN+5", "SIGRTMAX"]
    assert (code, [e["event"] for e in process.events()][-1]) == (0, "stopped")
    assert took < 10


@pytest.mark.parametrize("stop", [signal.SIGQUIT, signal.SIGXCPU, signal.SIGINT, signal.SIGTERM])
def test_every_stop_signal_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    """SIGQUIT ended the daemon with -3 and no `stopping` line: now a clean stop, as SIGTERM."""
    with daemon(tmp_path, DATABASE_URL=UNREACHABLE) as process:
        started = time.monotonic()
        process.popen.send_signal(stop)
        code = process.popen.wait(timeout=30)
        took = time.monotonic() - started
    events = [e["event"] for e in process.events()]
    signals = [e["signal"] for e in process.events() if e["event"] == "stop_signal"]
    assert (code, signals, events[-1]) == (0, [stop.name], "stopped")
    assert events.index("stop_signal") < events.index("stopping")
    assert took < 10


@pytest.mark.parametrize(
    ("which", "special"),
    [("config", "fifo"), ("password", "fifo"), ("password", "zero"), ("web", "fifo")],
)
def test_a_reload_from_a_file_that_would_block_fails_and_sigterm_stops(
    tmp_path: Path, which: str, special: str
) -> None:
    """Finding 3: the config path replaced by a FIFO, SIGHUP, SIGTERM: still running 8 s later
    (the same with the password file); finding 4: a password file that is /dev/zero took
    1.35 GB before the reload failed. Now the reload fails at once, naming the file, and the
    daemon stops on SIGTERM as usual."""
    config, password, web = tmp_path / "config.yaml", tmp_path / "password", tmp_path / "web.yml"
    config.write_text("log: {format: json}\n")
    password.write_text("secret\n")
    web.write_text("{}\n")
    args = ("--config", str(config), "--database-password-file", str(password))
    with daemon(
        tmp_path, *args, "--web-config-file", str(web), DATABASE_URL=UNREACHABLE
    ) as process:
        path = {"config": config, "password": password, "web": web}[which]
        path.unlink()
        if special == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to("/dev/zero")
        process.popen.send_signal(signal.SIGHUP)
        failed = process.wait_for_event("config_reload_failed", timeout=10)
        assert httpx.get(f"{process.base_url}/healthz", timeout=2).status_code == 200
        rss = rss_mib(process.popen.pid)
        code, took = process.stop()
    assert any(f"{path}: not a regular file" in problem for problem in failed["problems"]), failed
    assert (code, [e["event"] for e in process.events()][-1]) == (0, "stopped")
    assert took < 10
    assert rss < 200


def test_sigterm_during_a_reload_that_waits_stops_within_the_usual_time() -> None:
    """Whatever a reload waits on (a file on a hung mount, say), a stop signal is taken: the
    reload runs beside the signal loop, never in it. The loader here waits 20 s."""
    release = threading.Event()

    def waiting_load() -> tuple[Config, Callable[[str], str]]:
        release.wait(20)
        raise ReloadFailed(["released"])

    config = fast_config(UNREACHABLE)
    running = Daemon(config, Redactor(), waiting_load)
    main = threading.main_thread().ident
    assert main == threading.get_ident()  # signals go to this thread, where run() waits for them
    sent: dict[str, float] = {}

    def signals() -> None:
        wait_until_serving(f"http://{config.listen_address}/healthz")
        signal.pthread_kill(main, signal.SIGHUP)
        time.sleep(1.0)  # the reload is waiting now
        sent["stop"] = time.monotonic()
        signal.pthread_kill(main, signal.SIGTERM)

    sender = threading.Thread(target=signals)
    sender.start()
    try:
        running.run()
        stopped = time.monotonic()
    finally:
        release.set()
        sender.join()
    assert stopped - sent["stop"] < 10  # as every SIGTERM test: the grace of checks and HTTP


def wait_until_serving(url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


@pytest.mark.parametrize("special", ["fifo", "zero"])
def test_a_state_file_that_is_not_a_file_is_refused_unread(tmp_path: Path, special: str) -> None:
    """Finding 4: `baseline.state_file` as /dev/zero was an uncaught exception at start; as a
    FIFO, /healthz never came up. Now it is a warning and a fresh start."""
    state = tmp_path / "baseline.json"
    if special == "fifo":
        os.mkfifo(state)
    else:
        state.symlink_to("/dev/zero")
    config = tmp_path / "config.yaml"
    config.write_text(f"log: {{format: json}}\nbaseline: {{state_file: {state}}}\n")
    with daemon(tmp_path, "--config", str(config), DATABASE_URL=UNREACHABLE) as process:
        warning = process.wait_for_event("baseline_state_unreadable", timeout=10)
        assert httpx.get(f"{process.base_url}/healthz", timeout=2).status_code == 200
        rss = rss_mib(process.popen.pid)
        code, _ = process.stop()
    assert warning["reason"] == f"{state}: not a regular file: cannot be the state file"
    assert code == 0
    assert rss < 200
