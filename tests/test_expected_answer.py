"""Issue 21, finding 1: a proxy's 404 counted as a healthy login (any 4xx is success by the
plan's curl). The app's own answer is learned before the migration with the baseline; after it,
another answer is unexpected_answer, a failure everywhere. A real monitor, PostgreSQL and a
callback server whose answer changes after the migration, with nothing configured."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from callback_servers import ServerState, read_request, serve
from databases import FreshDatabase
from monitoring import make_config, value
from rollouts import closing, learn, look, migrate, monitor_for, run

from monitor.daemon.service import Monitor
from monitor.observe.answers import MIN_ANSWERS, answer_shape, body_shape, learned
from monitor.output.redact import Redactor

APP = ("400", "application/json", b'{"error":"invalid_grant","error_description":"bad code"}')
APP_SHAPE = "400 application/json {error,error_description}"
NGINX = (
    "404",
    "text/html",
    b"<html><head><title>404 Not Found</title></head><body><center>nginx/1.25.3</center>"
    b"</body></html>",
)


def switchable(answers: list[tuple[str, str, bytes]]) -> Any:
    """A callback answering as answers[-1] (append to change it)."""

    def answer(conn: socket.socket, state: ServerState) -> None:
        status, media, body = answers[-1]
        if read_request(conn, state) is None:
            return
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {media}\r\nContent-Length: {len(body)}\r\n"
        conn.sendall((head + "Connection: close\r\n\r\n").encode() + body)

    return serve(answer)


def outcomes(monitor: Monitor) -> dict[str, float]:
    return {
        outcome: value(monitor, "rollout_auth_callback_requests_total", outcome=outcome) or 0.0
        for outcome in ("success", "unexpected_answer")
    }


def test_a_proxys_404_after_the_migration_is_an_unexpected_answer(
    fresh_db: FreshDatabase,
) -> None:
    answers = [APP]
    with switchable(answers) as app, closing(monitor_for(fresh_db, app.url)) as m:
        learn(m, MIN_ANSWERS)
        assert value(m, "rollout_auth_callback_answer_known") == 0.0  # still learning
        migrate(fresh_db)
        look(m)  # the schema check sees it applied: the baseline freezes, the answer with it
        assert run(m, "callback") == "success"  # the app's own refusal, as before
        assert value(m, "rollout_auth_callback_answer_known") == 1.0
        info = {"answer": APP_SHAPE, "source": "learned"}
        assert value(m, "rollout_auth_callback_expected_answer_info", **info) == 1.0
        answers.append(NGINX)  # a release lost the route
        assert run(m, "callback") == "failure"
        assert outcomes(m) == {"success": MIN_ANSWERS + 1, "unexpected_answer": 1.0}
        last = m.memory.log.entries()[-1]
        assert last.outcome == "unexpected_answer"
        assert last.detail == f"was {APP_SHAPE}, now 404 text/html {body_shape(NGINX[2])}"
        # Counted as a failure everywhere: the criteria's success ratio, the status page.
        assert m.judgement.observation().successes == 1
        page = m.status_page.render().decode()
        assert f"{APP_SHAPE}: the app&#x27;s own, learned before the migration" in page
        assert "unexpected_answer (was 400 application/json" in page


def test_the_learned_answer_is_kept_in_the_state_file(
    fresh_db: FreshDatabase, tmp_path: Path
) -> None:
    state = tmp_path / "baseline.json"
    answers = [APP]
    with switchable(answers) as app:
        with closing(monitor_for(fresh_db, app.url, state_file=str(state))) as m:
            learn(m, MIN_ANSWERS)
            migrate(fresh_db)
            look(m)
        saved = json.loads(state.read_text())
        assert saved["baseline"]["answers"] == [APP_SHAPE]
        answers.append(NGINX)
        with closing(monitor_for(fresh_db, app.url, state_file=str(state))) as again:
            assert run(again, "callback") == "failure"
            assert value(again, "rollout_auth_callback_answer_known") == 1.0
            assert outcomes(again)["unexpected_answer"] == 1.0


def test_started_after_the_migration_it_falls_back_to_the_status_and_says_so(
    fresh_db: FreshDatabase,
) -> None:
    migrate(fresh_db)
    with switchable([NGINX]) as app, closing(monitor_for(fresh_db, app.url)) as m:
        look(m)
        assert run(m, "callback") == "success"  # nothing learned: a 4xx is healthy by status
        assert value(m, "rollout_auth_callback_answer_known") == 0.0
        page = m.status_page.render().decode()
        assert "any status of checks.callback.valid_status_codes" in page


def test_a_pinned_answer_is_kept_over_what_is_learned(fresh_db: FreshDatabase) -> None:
    """Configured, the app's answer is not learned: the app's 400 is not the 401 pinned."""
    pinned = "401 application/json {message}"
    with switchable([APP]) as app:
        callback = {"url": app.url, "timeout": "2s", "expected_answers": [pinned]}
        config = make_config(fresh_db.url, checks={"callback": callback})
        with closing(Monitor(config, Redactor())) as m:
            m.db.open()
            learn(m, MIN_ANSWERS)
            assert run(m, "callback") == "failure"
            info = {"answer": pinned, "source": "configuration"}
            assert value(m, "rollout_auth_callback_expected_answer_info", **info) == 1.0


@pytest.mark.parametrize(
    ("status", "headers", "body", "shape"),
    [
        (400, {"content-type": "application/json; charset=utf-8"}, APP[2], APP_SHAPE),
        (401, {}, b"", "401 - empty"),
        (200, {"content-type": "application/json"}, b"[1,2]", "200 application/json []"),
        (302, {"location": "https://app/login?next=x"}, b"", "302 - empty -> /login"),
        # Variable parts (ids, numbers) do not change a text body's fingerprint.
        (404, {"content-type": "text/html"}, b"<p>req 123 at 2026</p>", None),
    ],
)
def test_an_answers_shape(
    status: int, headers: dict[str, str], body: bytes, shape: str | None
) -> None:
    found = answer_shape(status, headers, body)
    if shape is not None:
        assert found == shape
    else:
        assert found == answer_shape(status, headers, b"<p>req 98765 at 1999</p>")
        assert found != answer_shape(status, headers, b"<p>not found</p>")


def test_a_shape_is_learned_when_seen_twice_of_enough_answers() -> None:
    assert learned(["a"] * (MIN_ANSWERS - 1)) == ()
    assert learned(["a"] * (MIN_ANSWERS - 1) + ["b"]) == ("a",)
    assert learned(["a"] * MIN_ANSWERS + ["b", "b"]) == ("a", "b")
