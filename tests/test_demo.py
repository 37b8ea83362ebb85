"""The demo's parts against the suite's PostgreSQL: seed data, the stand-in app, each fault."""

from __future__ import annotations

import contextlib
import re
import select
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fixtures
import httpx
import psycopg
import pytest
import yaml
from databases import FreshDatabase, drop_database
from demo_runs import DEMO, DemoRun

from monitor.demo import data
from monitor.demo.app import ACTIONS, SLOW_DELAY_SECONDS, StandInApp
from monitor.demo.console import READY_LINE
from monitor.demo.pager import rewired
from monitor.demo.postgres import PostgresServer

PLAN_PROBE = {"code": "test"}  # the deployment plan's curl
CHECKOUT = Path(__file__).resolve().parent.parent
ALERTMANAGER_EXAMPLE = CHECKOUT / "monitor/assets/alerts/alertmanager.example.yml"


@pytest.fixture
def app(fresh_db: FreshDatabase) -> Iterator[StandInApp]:
    """The stand-in app on the pre-migration database (12 seeded users)."""
    running = StandInApp(fresh_db.url)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def post(url: str, payload: Any = None) -> httpx.Response:
    """A POST with a JSON body, no proxies."""
    return httpx.post(url, json=payload, timeout=20, trust_env=False)


def act(app: StandInApp, action: str) -> httpx.Response:
    """A control action through the app's HTTP endpoint."""
    return post(f"{app.base_url}/demo/{action}")


def one(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    """The single value a query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_create_makes_exactly_the_users_asked_for_and_tokens_for_most(
    pg_server: PostgresServer,
) -> None:
    """`users` users, each token belonging to one of them, some expired and most not."""
    name = f"demo_{uuid.uuid4().hex[:8]}"
    pg_server.create_database(name)
    try:
        with pg_server.connect(name) as conn:
            data.create(conn, 2000)
            assert one(conn, "SELECT count(*) FROM users") == 2000
            tokens = one(conn, "SELECT count(*) FROM threads_tokens")
            expired = one(
                conn,
                """SELECT count(*) FROM threads_tokens
                   WHERE "expiresAt" <= now() AT TIME ZONE 'UTC'""",
            )
            orphans = one(
                conn,
                'SELECT count(*) FROM threads_tokens t LEFT JOIN users u ON u.id = t."userId"'
                " WHERE u.id IS NULL",
            )
            assert data.applied(conn) is False
    finally:
        drop_database(pg_server, name)
    assert 1700 < tokens < 1950  # 90% of users, drawn at random
    assert 0.2 * tokens < expired < 0.45 * tokens  # a third of the 90-day spread is past
    assert orphans == 0


def test_the_plans_probe_is_refused_with_400_and_a_login_answers_200(
    app: StandInApp, fresh_db: FreshDatabase
) -> None:
    """A fake code is refused as the real app refuses it; a login creates user and token."""
    assert post(app.callback_url, PLAN_PROBE).status_code == 400
    assert post(app.callback_url, {"code": "login:tu_new"}).status_code == 200
    assert post(app.callback_url, {"code": "login:tu_new"}).status_code == 200
    garbage = httpx.post(app.callback_url, content=b"not json", trust_env=False, timeout=20)
    assert garbage.status_code == 400
    conn = fresh_db.conn()
    assert one(conn, 'SELECT count(*) FROM users WHERE "threadsUserId" = %s', "tu_new") == 1
    expires = one(
        conn,
        """SELECT "expiresAt" - (now() AT TIME ZONE 'UTC') FROM threads_tokens
           WHERE "threadsUserId" = 'tu_new'""",
    )
    assert 59 < expires.total_seconds() / 86400 <= 60
    assert one(conn, "SELECT count(*) FROM threads_tokens WHERE \"threadsUserId\" = 'tu_new'") == 1


def test_after_the_migration_a_login_fills_the_new_fields(
    app: StandInApp, fresh_db: FreshDatabase
) -> None:
    """The new app version writes threadsFullName, threadsProfilePic, lastRefreshedAt."""
    assert act(app, "migrate").status_code == 200
    assert post(app.callback_url, {"code": "login:threads-1001"}).status_code == 200
    conn = fresh_db.conn()
    row = conn.execute(
        """SELECT u."threadsFullName", u."threadsProfilePic", t."lastRefreshedAt" IS NOT NULL,
                  t."isValid"
           FROM users u JOIN threads_tokens t ON t."userId" = u.id
           WHERE u."threadsUserId" = 'threads-1001'"""
    ).fetchone()
    assert row == (
        "Demo User threads-1001",
        "https://cdn.example.invalid/threads-1001.jpg",
        True,
        True,
    )
    assert act(app, "migrate").status_code == 409  # already applied


def test_callback_5xx_answers_503_until_healed(app: StandInApp) -> None:
    """The injected fault replaces every answer; heal restores the healthy one."""
    assert act(app, "callback_5xx").json()["faults"] == ["callback_5xx"]
    assert post(app.callback_url, PLAN_PROBE).status_code == 503
    assert act(app, "heal").json() == {"done": "healed callback_5xx", "faults": []}
    assert post(app.callback_url, PLAN_PROBE).status_code == 400


def test_slow_callback_delays_the_answer(app: StandInApp) -> None:
    """The answer comes no sooner than the injected delay."""
    act(app, "slow_callback")
    started = time.monotonic()
    assert post(app.callback_url, PLAN_PROBE).status_code == 400
    assert time.monotonic() - started >= SLOW_DELAY_SECONDS


def test_a_client_that_hangs_up_before_the_answer_is_not_reported_as_an_error(
    app: StandInApp, capfd: pytest.CaptureFixture[str]
) -> None:
    """A probe's deadline closes the connection; the app prints no traceback for it."""
    act(app, "slow_callback")
    with pytest.raises(httpx.TimeoutException):
        httpx.post(app.callback_url, json=PLAN_PROBE, timeout=0.1, trust_env=False)
    time.sleep(SLOW_DELAY_SECONDS + 0.3)  # the handler answers into the closed connection
    assert act(app, "heal").status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_trigger_bug_makes_fresh_tokens_wrongly_invalid_and_heal_fixes_them(
    app: StandInApp, fresh_db: FreshDatabase
) -> None:
    """Needs the migration; then logins write isValid false on unexpired tokens, until healed."""
    assert act(app, "trigger_bug").status_code == 409
    act(app, "migrate")
    assert act(app, "trigger_bug").status_code == 200
    for user in ("threads-1001", "threads-1002", "tu_new"):
        assert post(app.callback_url, {"code": f"login:{user}"}).status_code == 200
    wrongly_invalid = """SELECT count(*) FROM threads_tokens
        WHERE NOT "isValid" AND "expiresAt" > now() AT TIME ZONE 'UTC'"""
    conn = fresh_db.conn()
    assert one(conn, wrongly_invalid) == 3
    assert act(app, "heal").status_code == 200
    assert one(conn, wrongly_invalid) == 0
    assert post(app.callback_url, {"code": "login:threads-1003"}).status_code == 200
    assert one(conn, wrongly_invalid) == 0


def test_lock_queue_is_an_idle_app_transaction_and_a_waiting_alter_until_healed(
    app: StandInApp, fresh_db: FreshDatabase
) -> None:
    """pg_stat_activity shows Risk 1; heal cancels the ALTER, so no column is added."""
    conn = fresh_db.conn()
    sessions = """SELECT application_name, state, wait_event_type FROM pg_stat_activity
        WHERE datname = current_database() AND application_name IN ('threads-app', 'prisma-migrate')
          AND (state = 'idle in transaction' OR wait_event_type = 'Lock')
        ORDER BY 1"""
    assert act(app, "lock_queue").status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(conn.execute(sessions).fetchall()) < 2:
        time.sleep(0.1)
    assert conn.execute(sessions).fetchall() == [
        ("prisma-migrate", "active", "Lock"),
        ("threads-app", "idle in transaction", "Client"),
    ]
    assert act(app, "heal").status_code == 200
    assert conn.execute(sessions).fetchall() == []
    column = "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = %s"
    assert one(conn, column, "demoLockQueue") == 0


def test_migrating_behind_a_lock_queue_gives_up_and_works_once_healed(
    app: StandInApp, fresh_db: FreshDatabase
) -> None:
    """The demo's DDL never queues for ever: 409 after its lock timeout; heal still answers."""
    assert act(app, "lock_queue").status_code == 200
    refused = act(app, "migrate")
    assert refused.status_code == 409
    assert refused.json()["error"] == (
        "migrate: a table it changes stayed locked for 5s (heal a lock_queue first)"
    )
    assert act(app, "heal").json()["done"] == "healed lock_queue"
    assert act(app, "migrate").status_code == 200
    assert data.applied(fresh_db.conn()) is True


def test_rollback_runs_the_plan_and_migrate_applies_again_with_prisma_records(
    app: StandInApp, fresh_db: FreshDatabase
) -> None:
    """Rollback removes every object; a second migrate marks the first Prisma row rolled back."""
    conn = fresh_db.conn()
    act(app, "migrate")
    assert act(app, "rollback").status_code == 200
    assert data.applied(conn) is False
    objects = """SELECT count(*) FROM pg_attribute WHERE NOT attisdropped
        AND attrelid IN ('users'::regclass, 'threads_tokens'::regclass) AND attname IN ('threadsFullName', 'threadsProfilePic', 'issuedAt', 'lastRefreshedAt',
                        'isValid')"""
    assert one(conn, objects) == 0
    assert act(app, "migrate").status_code == 200
    records = conn.execute(
        """SELECT finished_at IS NOT NULL, rolled_back_at IS NOT NULL FROM _prisma_migrations
           WHERE migration_name = %s ORDER BY started_at""",
        (fixtures.MIGRATION_001_NAME,),
    ).fetchall()
    assert records == [(True, True), (True, False)]
    assert one(conn, objects) == 5


def test_an_unknown_action_is_refused_with_the_list_of_actions(app: StandInApp) -> None:
    """409 naming the action and what is accepted."""
    answer = act(app, "explode")
    assert answer.status_code == 409
    assert answer.json()["error"] == (
        "unknown action 'explode': expected one of callback_5xx, slow_callback, trigger_bug, "
        "lock_queue, route_404, rollback, migrate, heal"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--users", "0"],
            "rollout-monitor demo: argument --users: expected a whole number above 0, got '0'",
        ),
        (
            ["--migrate-after", "10"],
            "rollout-monitor demo: argument --migrate-after: invalid duration '10': expected a "
            "number with a unit ms, s, m, h, d or w, e.g. 15s or 1h30m",
        ),
        (
            ["--migrate-after", "30s"],
            "rollout-monitor demo: --migrate-after 30s leaves about 12 callback probes before"
            " the migration, fewer than the 20 a usable baseline needs: use --migrate-after 45s"
            " or more, a shorter --probe-interval, or --allow-short-baseline",
        ),
        (
            ["--migrate-after", "20s", "--probe-interval", "1s", "--check-interval", "1s"],
            "rollout-monitor demo: --migrate-after 20s leaves about 19 callback probes before"
            " the migration, fewer than the 20 a usable baseline needs: use --migrate-after 21s"
            " or more, a shorter --probe-interval, or --allow-short-baseline",
        ),
        (
            ["--probe-interval", "500ms"],
            "rollout-monitor demo: argument --probe-interval: invalid duration '500ms': must be"
            " at least 1s",
        ),
        (
            ["--logins-per-second", "-1"],
            "rollout-monitor demo: argument --logins-per-second: expected a number above 0, "
            "got '-1'",
        ),
    ],
)
def test_bad_demo_options_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    """Nothing starts; one line names the option and the problem."""
    result = subprocess.run([*DEMO, *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert result.stderr == f"{expected} (see --help)\n"


def test_the_demo_command_starts_everything_and_ctrl_c_removes_it_all() -> None:
    """After SIGINT: exit 0, every port it printed closed, no process left, no directory left."""
    demo = subprocess.Popen(
        [
            *DEMO,
            *("--users", "200", "--migrate-after", "5s", "--check-interval", "1s"),
            "--allow-short-baseline",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = read_until(demo, READY_LINE, timeout=120)
        addresses = re.findall(r"https?://127\.0\.0\.1:(\d+)", output)
        database = re.findall(r"postgresql://\w+@127\.0\.0\.1:(\d+)/", output)
        workdir = re.search(r"logs\s+(\S+)/\*\.log", output)
        database_dir = re.search(r"its files\s+(\S+)", output)
        assert workdir is not None, output
        assert database_dir is not None, output
        assert Path(database_dir[1]).is_dir()
        ports = {int(port) for port in [*addresses, *database]}
        assert len(ports) == 5, output  # app, metrics, database, Prometheus, Alertmanager
        assert all(listening(port) for port in ports)
        time.sleep(7)  # the scheduled migration runs while the demo is up
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, output + rest
    assert "applied migration 001" in output + rest
    assert rest.rstrip().endswith("stopped")
    assert [port for port in ports if listening(port)] == []
    assert not Path(workdir[1]).exists()
    assert not Path(database_dir[1]).exists()
    assert processes_mentioning(workdir[1]) == []


def read_until(process: subprocess.Popen[str], line: str, timeout: float) -> str:
    """The process's output up to and including `line` (fails the test on timeout or exit)."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if not ready:
            continue
        text = process.stdout.readline()
        if not text:
            pytest.fail("the demo exited before it was ready:\n" + "".join(seen))
        seen.append(text)
        if text.strip() == line:
            return "".join(seen)
    pytest.fail(f"no {line!r} within {timeout:g}s:\n" + "".join(seen))


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain the text."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in command:
                found.append(command)
    return found


def test_the_demo_alertmanager_config_is_the_example_with_webhooks_to_its_pager(
    tmp_path: Path,
) -> None:
    """Same routes and inhibitions; every webhook posts to the pager; amtool accepts it."""
    example = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())
    config = rewired(example, "http://127.0.0.1:1234")
    urls = [h["url"] for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert urls == ["http://127.0.0.1:1234/pager", "http://127.0.0.1:1234/ticket"]
    assert {k: v for k, v in config.items() if k != "receivers"} == {
        k: v for k, v in example.items() if k != "receivers"
    }
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    amtool = shutil.which("amtool")
    assert amtool, "amtool is not installed (scripts/install-system-deps)"
    check = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


# A console line of the demo's: the seconds since it started, then what happened.
STEP = r"^\[\s*\d+\.\ds\] "


@pytest.fixture(scope="module")
def piped_demo() -> Iterator[DemoRun]:
    """`printf 'migrate\\nexplode\\n' | rollout-monitor demo --no-migration ...`, once ready."""
    run = DemoRun(
        ["--users", "200", "--no-migration", "--check-interval", "1s"], piped="migrate\nexplode\n"
    )
    try:
        run.wait_for(f"^{READY_LINE}$", timeout=120)
        yield run
    finally:
        run.stop()


def test_actions_piped_into_the_demo_are_taken_and_it_runs_on_after_the_pipe_ends(
    piped_demo: DemoRun,
) -> None:
    """Each piped line is an action; the end of input is not a `quit`."""
    piped_demo.wait_for(STEP + "applied migration 001$", timeout=60)
    piped_demo.wait_for(STEP + re.escape("unknown action 'explode': expected one of"), timeout=10)
    piped_demo.wait_for(STEP + r"migration applied \|", timeout=40)  # a status line, after EOF
    assert piped_demo.process.poll() is None


def test_without_a_terminal_no_prompt_to_type_is_shown_but_how_to_act_is(
    piped_demo: DemoRun,
) -> None:
    """Nobody can type into a pipe; the actions and their curl are still listed."""
    assert "Type an action" not in piped_demo.output
    assert re.search(
        r"^Actions: callback_5xx, .*, heal: curl -X POST http://127\.0\.0\.1:\d+/demo/<action>$",
        piped_demo.output,
        re.M,
    ), piped_demo.output


def test_an_action_posted_over_http_is_echoed_on_the_console_as_a_typed_one_is(
    piped_demo: DemoRun,
) -> None:
    """What it did, or why it could not, on a console line of the same form as a piped action's."""
    found = re.search(r"app callback\s+(http://127\.0\.0\.1:\d+)/", piped_demo.output)
    assert found is not None, piped_demo.output
    assert post(f"{found[1]}/demo/slow_callback").status_code == 200
    piped_demo.wait_for(STEP + re.escape("the callback answers 0.4s later") + "$", timeout=10)
    assert post(f"{found[1]}/demo/implode").status_code == 409
    piped_demo.wait_for(STEP + re.escape("unknown action 'implode': expected one of"), timeout=10)
    assert post(f"{found[1]}/demo/heal").status_code == 200
    piped_demo.wait_for(STEP + "healed slow_callback$", timeout=10)


def test_the_printed_verdict_command_runs_without_the_virtualenv_on_path(
    piped_demo: DemoRun,
) -> None:
    """Copied from the console into a shell whose PATH has no rollout-monitor, it runs."""
    line = piped_demo.wait_for(r"^  verdict\s+", timeout=1)
    command = line.split(None, 1)[1].split("   (")[0]
    result = subprocess.run(
        ["/bin/sh", "-c", command],  # as pasted into a shell
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in {0, 1, 3, 4}, f"{command}\n{result.stdout}{result.stderr}"


def test_the_console_says_pages_and_tickets_arrive_on_it(piped_demo: DemoRun) -> None:
    """Alertmanager's receivers point at the console's stand-in pager, and it says so."""
    line = piped_demo.wait_for(r"^  pages\s+", timeout=1)
    assert "PAGER" in line
    assert "TICKET" in line


def test_the_readmes_demo_section_has_every_option_of_demo_help_and_every_action() -> None:
    """No option in one and not the other; one row per action, in the console's order."""
    readme = (CHECKOUT / "README.md").read_text()
    section = readme[readme.index("## The two commands") : readme.index("To watch a real database")]
    usage = subprocess.run(
        [*DEMO, "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    options = set(re.findall(r"\[(--[a-z-]+)", usage))
    assert options == set(re.findall(r"`(--[a-z-]+)", section))
    assert re.findall(r"^\| `(\w+)` \|", section, re.M) == list(ACTIONS)


def test_route_404_answers_as_a_proxy_and_heal_brings_the_app_back(app: StandInApp) -> None:
    """Issue 21: the release lost the route: nginx's 404 page, text/html, a 4xx the status codes
    alone call healthy; heal restores the app's own refusal."""
    assert act(app, "route_404").status_code == 200
    lost = httpx.post(app.callback_url, json={"code": "test"}, timeout=10)
    assert (lost.status_code, lost.headers["content-type"]) == (404, "text/html")
    assert (lost.headers["server"], b"nginx" in lost.content) == ("nginx", True)
    assert act(app, "heal").status_code == 200
    back = httpx.post(app.callback_url, json={"code": "test"}, timeout=10)
    assert (back.status_code, back.json()) == (400, {"error": "invalid_grant"})
