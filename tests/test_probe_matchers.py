"""Issue 21, finding 3: blackbox_exporter's HTTP matchers on the callback probe, same names and
meaning, each failing with its own outcome; redirects followed only when asked. Real servers on
127.0.0.1; the configuration's errors as `check-config` reports them."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from callback_servers import CALLBACK_PATH, RunningServer, ServerState, read_request, serve
from pydantic import ValidationError

from monitor.config.checks import CallbackSettings
from monitor.observe.probe import CallbackProbe, ProbeResult

NGINX_404 = b"<html><head><title>404 Not Found</title></head><body>nginx</body></html>"
APP_400 = b'{"error":"invalid_grant","error_description":"bad code"}'


def answer(status: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answering(
    status: int, body: bytes, headers: dict[str, str]
) -> Callable[[socket.socket, ServerState], None]:
    def behaviour(conn: socket.socket, state: ServerState) -> None:
        if read_request(conn, state) is not None:
            conn.sendall(answer(status, body, headers))

    return behaviour


@contextmanager
def app_refusing() -> Iterator[RunningServer]:
    """The healthy app: a 400 with its own JSON."""
    with serve(answering(400, APP_400, {"Content-Type": "application/json"})) as server:
        yield server


@contextmanager
def proxy_404() -> Iterator[RunningServer]:
    """A release lost the route: nginx's 404 page."""
    with serve(answering(404, NGINX_404, {"Content-Type": "text/html", "Server": "nginx"})) as s:
        yield s


def probe(server: RunningServer, **settings: Any) -> ProbeResult:
    config = CallbackSettings.model_validate({"url": server.url, "timeout": "2s", **settings})
    return CallbackProbe(config).probe()


CASES = [
    # (server, settings, outcome, detail)
    (proxy_404, {}, "success", ""),  # the plan's default: any 4xx (issue 21's finding 1)
    (
        proxy_404,
        {"fail_if_body_matches_regexp": ["(?i)nginx"]},
        "body_matched_regexp",
        "the body matches '(?i)nginx'",
    ),
    (
        proxy_404,
        {"fail_if_body_not_matches_regexp": ['"error"']},
        "body_not_matched_regexp",
        "the body does not match '\"error\"'",
    ),
    (
        app_refusing,
        {"fail_if_body_not_matches_regexp": ['"error"', "invalid_grant"]},
        "success",
        "",
    ),
    (
        proxy_404,
        {"fail_if_header_matches": [{"header": "Content-Type", "regexp": "text/html"}]},
        "header_matched_regexp",
        "the header Content-Type matches 'text/html'",
    ),
    (
        proxy_404,
        {"fail_if_header_not_matches": [{"header": "content-type", "regexp": "^application/json"}]},
        "header_not_matched_regexp",
        "the header content-type does not match '^application/json'",
    ),
    (
        app_refusing,
        {"fail_if_header_not_matches": [{"header": "X-Request-Id", "regexp": "."}]},
        "header_not_matched_regexp",
        "the header X-Request-Id is missing",
    ),
    (
        app_refusing,
        {
            "fail_if_header_not_matches": [
                {"header": "X-Request-Id", "regexp": ".", "allow_missing": True}
            ]
        },
        "success",
        "",
    ),
    (
        app_refusing,
        {"fail_if_body_json_not_matches_cel": 'body.error == "invalid_grant"'},
        "success",
        "",
    ),
    (
        app_refusing,
        {"fail_if_body_json_matches_cel": 'body.error == "invalid_grant"'},
        "body_matched_cel",
        "the body matches 'body.error == \"invalid_grant\"'",
    ),
    (
        proxy_404,
        {"fail_if_body_json_not_matches_cel": 'body.error == "invalid_grant"'},
        "body_not_matched_cel",
        "the body is not JSON",
    ),
    (
        app_refusing,
        {"fail_if_body_json_not_matches_cel": 'body.missing == "x"'},
        "body_not_matched_cel",
        "'body.missing == \"x\"' cannot be evaluated on the body",
    ),
]


@pytest.mark.parametrize(("server", "settings", "outcome", "detail"), CASES)
def test_a_matcher_fails_the_probe_with_its_own_outcome(
    server: Callable[[], Any], settings: dict[str, Any], outcome: str, detail: str
) -> None:
    with server() as running:
        result = probe(running, **settings)
    assert (result.outcome, result.detail) == (outcome, detail)
    assert result.status is not None


def test_a_pattern_that_backtracks_in_other_engines_is_linear_in_re2() -> None:
    """(a+)+$ on a megabyte of a's and a b: exponential for a backtracking engine; RE2 is
    linear, so the probe answers by its deadline."""
    body = b"a" * (1 << 20) + b"b"
    with serve(answering(400, body, {"Content-Type": "text/plain"})) as server:
        started = time.perf_counter()
        result = probe(server, fail_if_body_matches_regexp=["(a+)+$"], body_size_limit="2MiB")
    assert (result.outcome, time.perf_counter() - started < 2.0) == ("success", True)


def redirecting(conn: socket.socket, state: ServerState) -> None:
    request = read_request(conn, state)
    if request is None:
        return
    if request.path == CALLBACK_PATH:
        conn.sendall(answer(302, b"", {"Location": "/login"}))
    else:
        conn.sendall(answer(400, APP_400, {"Content-Type": "application/json"}))


def test_redirects_are_followed_only_when_asked() -> None:
    with serve(redirecting) as server:
        kept = probe(server)
        followed = probe(server, follow_redirects=True, method="GET", body="")
        paths = [r.path for r in server.requests]
    assert (kept.outcome, kept.status) == ("success", 302)
    assert (followed.outcome, followed.status) == ("success", 400)
    assert paths == [CALLBACK_PATH, CALLBACK_PATH, "/login"]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"fail_if_body_matches_regexp": ["("]}, "not an RE2 regular expression"),
        (
            {"fail_if_header_matches": [{"header": "Server", "regexp": "a(?=b)"}]},
            "not an RE2 regular expression",
        ),
        (
            {"fail_if_body_json_matches_cel": "body.error =="},
            "not a CEL expression: it does not parse at line 1, column",
        ),
        ({"body_size_limit": "2 tons"}, "invalid size '2 tons'"),
        ({"body_size_limit": "2GiB"}, "from 1 byte to 1GiB"),
    ],
)
def test_a_matcher_that_does_not_compile_is_a_configuration_error(
    settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        CallbackSettings.model_validate({"url": "http://app/cb", **settings})
    assert problem in str(raised.value)
