"""The Prometheus query client against servers on 127.0.0.1 that answer what Prometheus would
not: every odd answer is one PrometheusError line (exit 4 for the verdict), never a traceback."""

from __future__ import annotations

import json
import time

import pytest
from callback_servers import answering_server, garbage_server, refused_url, trickling_server

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


# -- issue 22: what no Prometheus would answer, each one line --


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ([1e300, "-Inf"], "with a sample time out of range (1e+300)"),
        ([-1, "1"], "with a sample time out of range (-1)"),
        ([1e11 + 1, "1"], "with a sample time out of range (1e+11)"),
        (["1", "1"], "of unexpected shape"),
        ([True, "1"], "of unexpected shape"),
        ([1.0, "1e300"], "with a value out of range (1e+300)"),
        ([1.0, "-9007199254740994"], "with a value out of range (-9.0072e+15)"),
        ([1.0, 1], "of unexpected shape"),  # a value is a string
        ([1.0, "1_000"], "of unexpected shape"),  # Python's float() takes it; Go never writes it
        ([1.0, "infinity"], "of unexpected shape"),
        ([1.0, " 1"], "of unexpected shape"),
        ([1.0, "1", "2"], "of unexpected shape"),
    ],
)
def test_every_sample_time_and_value_is_checked(sample: list[object], expected: str) -> None:
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    body["data"]["result"] = [{"metric": {}, "value": sample}]  # type: ignore[index]
    with pytest.raises(PrometheusError) as error:
        ask(200, json.dumps(body).encode())
    assert str(error.value).partition(": ")[2] == f"an answer to 'up' {expected}"


def test_values_at_the_edges_of_the_range_are_numbers() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {}, "value": [0, "-9007199254740992"]},
                {"metric": {}, "value": [1e11, "1.5e3"]},
            ],
        },
    }
    assert [s.value for s in ask(200, json.dumps(body).encode())] == [-(2.0**53), 1500.0]


def test_a_time_out_of_range_is_never_asked_about() -> None:
    """--at is checked; a later query's time comes from an answer (the migration's time)."""
    with answering_server(200, vector_answer("1"), path="") as server:
        with Prometheus(server.url) as prometheus, pytest.raises(PrometheusError) as error:
            prometheus.vector("up", 5e12)
        assert server.requests == []
    assert str(error.value).endswith(": its answers led to a time out of range (5e+12)")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "HTTP 200, JSON nested over 32 deep"),
        (b"[" * 33 + b"]" * 33, "HTTP 200, JSON nested over 32 deep"),
        # brackets inside strings, escaped quotes too, are not nesting
        (b'["' + b"[" * 100 + b'\\"[["]', "HTTP 200, not a query API answer"),
        (b"[" * 32 + b"]" * 32, "HTTP 200, not a query API answer"),
        (b" " * (3 * 1024 * 1024), "HTTP 200, an answer over 2 MiB"),
    ],
)
def test_an_answer_is_capped_in_depth_and_bytes(body: bytes, expected: str) -> None:
    with pytest.raises(PrometheusError) as error:
        ask(200, body)
    assert str(error.value).partition(": ")[2] == expected


def test_the_timeout_bounds_the_whole_answer_not_each_read() -> None:
    """A byte every 0.2 s: every read is quick, the answer never whole. Before issue 22 the
    client waited for all of it (20 s, the server's limit)."""
    with trickling_server(path="") as server, Prometheus(server.url, timeout=1.0) as prometheus:
        started = time.monotonic()
        with pytest.raises(PrometheusError) as error:
            prometheus.vector("up", 1.0)
        assert time.monotonic() - started < 3.0  # 1 s and a busy machine; 20 s before
    assert str(error.value).endswith(": no whole answer within 1s")


def test_a_long_error_message_is_cut_and_never_shows_part_of_the_password() -> None:
    """The first 200 characters, cut where no secret is split: the URL's password starts at
    the 197th. Before issue 22: all 100 KB, after a minute of redaction."""
    message = "x" * 196 + " s3cret-pw " + "y" * 100_000
    body = json.dumps({"status": "error", "error": message}).encode()
    with answering_server(400, body, path="") as server:
        url = server.url.replace("http://", "http://admin:s3cret-pw@")
        with Prometheus(url) as prometheus, pytest.raises(PrometheusError) as error:
            prometheus.vector("up", 1.0)
    assert str(error.value).partition("@127.0.0.1:")[2].partition(": ")[2] == "x" * 196 + " …"
