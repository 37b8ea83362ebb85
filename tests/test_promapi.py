"""The Prometheus query client against servers on 127.0.0.1 that answer what Prometheus would
not: every odd answer is one PrometheusError line (exit 4 for the verdict), never a traceback."""

from __future__ import annotations

import json

import pytest
from callback_servers import answering_server, garbage_server, refused_url

from monitor.promql.api import Prometheus, PrometheusError, Sample


def vector_answer(*values: str) -> bytes:
    """A successful instant-vector answer with one series per value."""
    result = [{"metric": {"instance": f"m{i}"}, "value": [1.0, v]} for i, v in enumerate(values)]
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    ).encode()


def ask(status: int, body: bytes) -> list[Sample]:
    with answering_server(status, body, path="") as server, Prometheus(server.url) as prometheus:
        return prometheus.vector("up", 1.0)


def test_values_are_numbers_and_non_finite_ones_are_left_out() -> None:
    assert ask(200, vector_answer("0.5", "NaN", "+Inf", "-Inf", "2")) == [
        Sample({"instance": "m0"}, 0.5),
        Sample({"instance": "m4"}, 2.0),
    ]


def test_a_scalar_answer_is_one_unlabelled_sample() -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
    assert ask(200, json.dumps(body).encode()) == [Sample({}, 3.0)]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"[1, 2]", "HTTP 200, not a query API answer"),
        (200, b'{"status": "success"}', "HTTP 200"),
        (200, b"not json", "HTTP 200, not JSON"),
        (
            400,
            b'{"status": "error", "error": "parse error:\\n unexpected <EOF>"}',
            "parse error: unexpected <EOF>",
        ),
        (503, b'{"status": "error"}', "HTTP 503"),
        (
            200,
            b'{"status": "success", "data": {"resultType": "vector", "result": [{"v": 1}]}}',
            "an answer to 'up' of unexpected shape",
        ),
        (
            200,
            b'{"status": "success", "data": {"resultType": "vector", "result": '
            b'[{"metric": {}, "value": [1, "many"]}]}}',
            "an answer to 'up' of unexpected shape",
        ),
    ],
)
def test_an_odd_answer_is_one_line_naming_prometheus(
    status: int, body: bytes, expected: str
) -> None:
    with pytest.raises(PrometheusError) as error:
        ask(status, body)
    where, _, reason = str(error.value).partition(": ")
    assert where.startswith("Prometheus at http://127.0.0.1:")
    assert reason == expected


def test_no_answer_and_a_garbled_one_are_errors_with_the_password_masked() -> None:
    url = refused_url("").replace("http://", "http://admin:s3cret@")
    with pytest.raises(PrometheusError) as refused, Prometheus(url) as prometheus:
        prometheus.vector("up", 1.0)
    assert "s3cret" not in str(refused.value)
    assert "ConnectError" in str(refused.value)
    with (
        garbage_server(path="") as server,
        Prometheus(server.url) as prometheus,
        pytest.raises(PrometheusError) as garbled,
    ):
        prometheus.vector("up", 1.0)
    assert "\n" not in str(garbled.value)


def test_an_invalid_url_is_an_error_not_a_crash() -> None:
    with pytest.raises(PrometheusError) as error, Prometheus("http://h:abc") as prometheus:
        prometheus.vector("up", 1.0)
    assert "InvalidURL" in str(error.value)
