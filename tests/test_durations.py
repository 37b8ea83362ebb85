"""One duration grammar for the configuration, the command line and PromQL windows (issue 13:
config.py and the verdict had one each, and `1h30m` was a duration to one and not the other)."""

from __future__ import annotations

import pytest

from monitor.config import Config
from monitor.durations import parse_duration


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
