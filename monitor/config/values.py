"""The configuration's value types: durations, identifiers, URLs, header names and values,
status codes, metric and label names, each with its validator and its one-line message."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

from monitor.config import durations
from monitor.config.durations import format_duration
from monitor.output.shown import shown

_STATUS_CLASS = re.compile(r"^[1-5]xx$")


_IDENTIFIER_MAX = 63  # bytes: PostgreSQL's NAMEDATALEN - 1 (longer names are cut silently)


# PostgreSQL's time limits are int milliseconds: larger values are refused by the server.
PG_MAX_MILLISECONDS = 2_147_483_647


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def duration(value: object) -> float:
    """Seconds in a duration (durations.py's grammar: '15s', '200ms', '1h30m'; a bare number is
    not one: units matter), at most durations.LONGEST_SECONDS."""
    try:
        seconds = durations.parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        seconds = None
    if seconds is None:
        raise ValueError(f"invalid duration {shown(value)}: {durations.HELP}")
    if seconds > durations.LONGEST_SECONDS:
        raise ValueError(f"invalid duration {shown(value)}: at most 744h (31 days)")
    return seconds


def _http_url(value: str | None) -> str | None:
    """An http:// or https:// URL with a host, and a port from 1 to 65535 when it names one."""
    if value is None:
        return value
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("expected an http:// or https:// URL")
    try:
        urlsplit(value).port  # noqa: B018  # raises on a port out of range
    except ValueError:
        raise ValueError("the URL's port must be 1 to 65535") from None
    return value


HttpUrl = Annotated[str | None, AfterValidator(_http_url)]


def _postgres_limit(seconds: float) -> float:
    if seconds * 1000 > PG_MAX_MILLISECONDS:
        raise ValueError(f"must be at most {PG_MAX_MILLISECONDS}ms (PostgreSQL's limit)")
    return seconds


def header_value(value: str) -> str:
    """A header value as sent: no CR, LF or NUL (they would end the header and start another)."""
    if any(c in value for c in "\r\n\x00"):
        raise ValueError("a header value must not contain CR, LF or NUL")
    return value


def header_name(value: str) -> str:
    """A header name: an RFC 9110 token."""
    if not _HEADER_NAME.match(value):
        raise ValueError(f"invalid header name {shown(value)}")
    return value


class FieldProblem(ValueError):
    """A problem with one field of the section being validated: loading names it by its key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def _at_least_a_second(seconds: float) -> float:
    if seconds < 1:
        raise ValueError("must be at least 1s")
    return seconds


_AS_TEXT = PlainSerializer(format_duration, return_type=str)


Duration = Annotated[float, BeforeValidator(duration), AfterValidator(_positive), _AS_TEXT]


Interval = Annotated[float, BeforeValidator(duration), AfterValidator(_at_least_a_second), _AS_TEXT]


PostgresDuration = Annotated[Duration, AfterValidator(_postgres_limit)]


_SIZE = re.compile(r"^(\d{1,12})\s*(B|KiB|MiB|GiB|KB|MB|GB)?$")
_SIZE_UNITS = {
    None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3,
}  # fmt: skip
MAX_SIZE = 1 << 30  # a body or a file the monitor reads whole: 1 GiB is far past any sane one


def byte_size(value: object) -> int:
    """Bytes in a size: a whole number, or one with a unit (512KiB, 1MiB, 2MB), 1 B to 1 GiB."""
    found = _SIZE.match(value.strip()) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif found is not None:
        size = int(found[1]) * _SIZE_UNITS[found[2]]
    else:
        raise ValueError(f"invalid size {shown(value)}: a number of bytes, or with a unit (1MiB)")
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"invalid size {shown(value)}: from 1 byte to 1GiB")
    return size


ByteSize = Annotated[int, BeforeValidator(byte_size)]


def _identifier(value: str) -> str:
    if not value or len(value.encode()) > _IDENTIFIER_MAX or "\x00" in value:
        raise ValueError(f"invalid identifier {shown(value)}: 1 to 63 bytes")
    return value


Identifier = Annotated[str, BeforeValidator(lambda v: _identifier(v) if isinstance(v, str) else v)]


def _column_ref(value: object) -> object:
    if isinstance(value, str) and value.count(".") != 1:
        raise ValueError(f"invalid column {value!r}: expected table.column")
    return value


ColumnRef = Annotated[str, BeforeValidator(_column_ref)]


def _status_code(value: object) -> object:
    valid = (isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599) or (
        isinstance(value, str) and _STATUS_CLASS.match(value)
    )
    if not valid:
        raise ValueError(f"invalid status code {value!r}: expected 100 to 599 or a class like 4xx")
    return value


StatusCode = Annotated[int | str, BeforeValidator(_status_code)]


_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


_CHECK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[object], object]:
    def check(value: object) -> object:
        if isinstance(value, str) and not pattern.match(value):
            raise ValueError(f"invalid {what} {shown(value)}: must match {pattern.pattern}")
        return value

    return check


def _label_name(value: str) -> str:
    """A label name Prometheus accepts, and not one of its own (__name__ and the like)."""
    if not _LABEL_NAME.match(value) or value.startswith("__"):
        raise ValueError(
            f"invalid label name {shown(value)}: must match {_LABEL_NAME.pattern}"
            " and not start with __"
        )
    return value


Ratio = Annotated[float, Field(ge=0, le=1)]


def _listen_address(value: object) -> object:
    if isinstance(value, str):
        _host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"invalid listen address {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9838"
            )
    return value


CallbackUrl = Annotated[str, AfterValidator(_http_url)]
HeaderName = Annotated[str, AfterValidator(header_name)]
HeaderValue = Annotated[str, AfterValidator(header_value)]
MetricName = Annotated[str, BeforeValidator(_matching(_METRIC_NAME, "metric name"))]
CheckName = Annotated[str, BeforeValidator(_matching(_CHECK_NAME, "check name"))]
LabelName = Annotated[Identifier, AfterValidator(_label_name)]
ListenAddress = Annotated[str, BeforeValidator(_listen_address)]


def reject_repeats(kind: str, names: list[str], taken: set[str]) -> None:
    """Raise on the first name already taken or used twice."""
    for name in names:
        if name in taken:
            raise FieldProblem("sql", f"{kind} name {name!r} is already taken")
        taken.add(name)


def re2_pattern(value: str) -> str:
    """A regular expression RE2 compiles (blackbox_exporter's syntax: Go's regexp is RE2)."""
    import re2  # noqa: PLC0415  # loaded only where a matcher is configured

    try:
        re2.compile(value)
    except re2.error as error:
        raise ValueError(f"not an RE2 regular expression: {error}") from None
    return value


Regexp = Annotated[str, AfterValidator(re2_pattern)]


def cel_expression(value: str) -> str:
    """A CEL expression cel-python compiles."""
    import celpy  # noqa: PLC0415  # 18 MiB: loaded only where a CEL matcher is configured
    from celpy.celparser import CELParseError  # noqa: PLC0415

    try:
        celpy.Environment().compile(value)
    except CELParseError as error:
        where = f"line {getattr(error, 'line', '?')}, column {getattr(error, 'column', '?')}"
        raise ValueError(f"not a CEL expression: it does not parse at {where}") from None
    return value


CelExpression = Annotated[str, AfterValidator(cel_expression)]
