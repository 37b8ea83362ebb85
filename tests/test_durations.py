"""One duration grammar for the configuration, the command line and PromQL windows (issue 13:
config.py and the verdict had one each, and `1h30m` was a duration to one and not the other)."""

from __future__ import annotations

import argparse

import pytest

from monitor.config import durations
from monitor.config.durations import parse_duration
from monitor.config.schema import Config


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("200ms", 0.2),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        (" 15 s ", 15.0),
        ("1m500ms", 60.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "1 day", "5x", "h", "1h30", "-1s", "1e3s"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: expected a number with a unit"):
        parse_duration(text)


def test_the_config_takes_what_the_verdict_takes() -> None:
    config = Config.model_validate(
        {"checks": {"drift": {"interval": "1h30m"}}, "preflight": {"backup_max_age": "2d"}}
    )
    assert config.checks.drift.interval == 5400.0
    assert config.preflight.backup_max_age == 172800.0


@pytest.mark.parametrize(
    ("text", "minimum", "maximum", "message"),
    [
        ("0s", 0.0, 60.0, "invalid duration '0s': must be longer than 0s"),
        ("500ms", 1.0, 60.0, "invalid duration '500ms': must be at least 1s"),
        ("2m", 1.0, 60.0, "invalid duration '2m': must be at most 1m"),
        ("soon", 1.0, 60.0, "invalid duration 'soon': expected a number with a unit ms, s, m,"
         " h, d or w, e.g. 15s or 1h30m"),
    ],
)  # fmt: skip
def test_every_command_refuses_a_duration_in_the_same_words(
    text: str, minimum: float, maximum: float, message: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        durations.argument(minimum, maximum)(text)
    assert str(refused.value) == message


def test_a_bare_number_is_seconds_only_where_asked() -> None:
    assert durations.argument(bare_seconds=True)("2.5") == 2.5
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number with a unit"):
        durations.argument()("2.5")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number with a unit"):
        durations.argument(bare_seconds=True)("nan")


@pytest.mark.parametrize(
    ("seconds", "spec", "human", "axis"),
    [
        (0.2, "200ms", "0 s", "200 ms"),
        (90.0, "90s", "1 min", "90 s"),
        (5400.0, "90m", "1 h 30 min", "5.4e+03 s"),
        (93600.0, "26h", "1 d 2 h", "9.36e+04 s"),
    ],
)
def test_one_module_shows_durations_three_ways(
    seconds: float, spec: str, human: str, axis: str
) -> None:
    assert durations.format_duration(seconds) == spec
    assert durations.human_duration(seconds) == human
    assert durations.short_duration(seconds) == axis
