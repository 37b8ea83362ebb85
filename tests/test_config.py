"""Configuration: defaults for migration 001, precedence of sources, and every problem reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from monitor.config.durations import parse_duration
from monitor.config.loading import ConfigError, load_config
from monitor.config.names import DEFAULT_LISTEN_ADDRESS
from monitor.config.schema import Config

URL = "postgresql://monitor:s3cret-pw@127.0.0.1:5432/app"
DURATION_HELP = "expected a number with a unit ms, s, m, h, d or w, e.g. 15s or 1h30m"


def load_yaml(tmp_path: Path, text: str, **flags: str) -> Config:
    """Load a config file plus flags, with an empty environment."""
    path = tmp_path / "rollout.yaml"
    path.write_text(text)
    return load_config({"--config": str(path), "--database-url": URL, **flags}, {})


def problems_of(tmp_path: Path, text: str) -> list[str]:
    """The problems reported for a config file, with its path shortened to 'F'."""
    with pytest.raises(ConfigError) as caught:
        load_yaml(tmp_path, text)
    return [p.replace(str(tmp_path / "rollout.yaml"), "F") for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "checks:\n  drift:\n    interval: abc\n",
            [f"F: checks.drift.interval: invalid duration 'abc': {DURATION_HELP}"],
        ),
        (
            "checks:\n  drift:\n    interval: 30\n",
            [f"F: checks.drift.interval: invalid duration 30: {DURATION_HELP}"],
        ),
        ("checks:\n  drift:\n    intervall: 5m\n", ["F: checks.drift.intervall: unknown key"]),
        (  # one URL rule for the callback and Prometheus (issue 13: _http_url was defined twice)
            "baseline:\n  prometheus_url: http://prometheus:99999\n",
            ["F: baseline.prometheus_url: the URL's port must be 1 to 65535"],
        ),
        (
            "checks:\n  drift:\n    interval: 500ms\n",
            ["F: checks.drift.interval: must be at least 1s"],
        ),
        ("database:\n  pool_max_size: 50\n", ["F: database.pool_max_size: must be at most 10"]),
        (
            "database:\n  pool_max_size: many\n",
            ["F: database.pool_max_size: expected an integer, got 'many'"],
        ),
        (
            "database:\n  pool_min_size: 4\n  pool_max_size: 2\n",
            ["F: database.pool_min_size: must not exceed pool_max_size"],
        ),
        (
            "database:\n  lock_timeout: 5s\n  statement_timeout: 1s\n",
            ["F: database.lock_timeout: must not exceed statement_timeout"],
        ),
        (
            "checks:\n  callback:\n    timeout: 20s\n",
            ["F: checks.callback.timeout: must be shorter than interval (4s)"],
        ),
        (
            "checks:\n  callback:\n    method: DELETE\n",
            [
                "F: checks.callback.method: expected one of 'GET', 'POST', 'PUT' or 'HEAD', got 'DELETE'"
            ],
        ),
        (
            "checks:\n  callback:\n    valid_status_codes: [200, 6xx, 99]\n",
            [
                "F: checks.callback.valid_status_codes.1: invalid status code '6xx':"
                " expected 100 to 599 or a class like 4xx",
                "F: checks.callback.valid_status_codes.2: invalid status code 99:"
                " expected 100 to 599 or a class like 4xx",
            ],
        ),
        (
            "checks:\n  callback:\n    url: ftp://x\n",
            ["F: checks.callback.url: expected an http:// or https:// URL"],
        ),
        (
            "checks:\n  connections:\n    app_pool_size: 10\n",
            [
                "F: checks.connections.app_pool_size: needs app_application_name to find the app's sessions"
            ],
        ),
        (
            "listen_address: nope\n",
            [
                "F: listen_address: invalid listen address 'nope': expected HOST:PORT, e.g. 127.0.0.1:9838"
            ],
        ),
        (
            "migration:\n  objects:\n    columns: [usersthreadsFullName]\n",
            [
                "F: migration.objects.columns.0: invalid column 'usersthreadsFullName': expected table.column"
            ],
        ),
        (
            "migration:\n  applied_at: yesterday\n",
            ["F: migration.applied_at: expected an ISO 8601 time, got 'yesterday'"],
        ),
        (
            "log:\n  level: loud\n",
            ["F: log.level: expected one of 'debug', 'info', 'warning' or 'error', got 'loud'"],
        ),
        ("checks: [1, 2]\n", ["F: checks: expected a mapping of settings"]),
        ("- a\n- b\n", ["F: expected a mapping of settings at the top level"]),
        (
            "checks:\n  drift: {interval: 1m\n",
            ["F:3:1: invalid YAML: expected ',' or '}', but got '<stream end>'"],
        ),
        (
            "checks:\n  drift:\n    enabled: maybe\n",
            ["F: checks.drift.enabled: expected true or false, got 'maybe'"],
        ),
        ("app:\n  schema: ''\n", ["F: app.schema: invalid identifier '': 1 to 63 bytes"]),
        (
            "checks:\n  drift:\n    interval: abc\n  pool:\n    interval: 0s\n"
            "database:\n  pool_max_size: 0\nbogus: 1\n",
            [
                "F: database.pool_max_size: must be at least 1",
                f"F: checks.drift.interval: invalid duration 'abc': {DURATION_HELP}",
                "F: checks.pool.interval: must be at least 1s",
                "F: bogus: unknown key",
            ],
        ),
    ],
)
def test_malformed_config_file_reports_each_problem_with_its_location(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    assert problems_of(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://u:hunter2@h/db", "--database-url: database.url: expected a postgresql:// URL"),
        (
            "postgresql://u:hunter2@h:port/db",
            "--database-url: database.url: invalid port in database URL",
        ),
        ("hunter2", "--database-url: database.url: expected a postgresql:// URL"),
    ],
)
def test_bad_database_url_is_reported_without_its_password(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"--database-url": url}, {})
    assert caught.value.problems == [expected]
    assert "hunter2" not in str(caught.value)


def test_missing_database_url_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("log:\n  level: loud\n")
    with pytest.raises(ConfigError) as caught:
        load_config({"--config": str(path)}, {})
    assert caught.value.problems == [
        f"{path}: log.level: expected one of 'debug', 'info', 'warning' or 'error', got 'loud'",
        "database.url: required: set --database-url, DATABASE_URL or database.url in the config file",
    ]


def test_unreadable_config_file_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"--config": "/nonexistent/rollout.yaml"}, {})
    assert caught.value.problems == [
        "/nonexistent/rollout.yaml: cannot read config file: No such file or directory"
    ]


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "listen_address: 127.0.0.1:1001\nchecks:\n  callback:\n    url: http://file/cb\n"
        "database:\n  url: postgresql://file/db\n"
    )
    env = {
        "ROLLOUT_CONFIG": str(path),
        "ROLLOUT_LISTEN_ADDRESS": "127.0.0.1:1002",
        "DATABASE_URL": "postgresql://env/db",
    }
    config = load_config({"--listen-address": "127.0.0.1:1003"}, env)
    assert config.listen_address == "127.0.0.1:1003"
    assert config.database_url == "postgresql://env/db"
    assert config.checks.callback.url == "http://file/cb"
    assert (
        load_config({}, {"DATABASE_URL": "postgresql://env/db"}).listen_address
        == DEFAULT_LISTEN_ADDRESS
    )


def test_env_value_problem_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({}, {"DATABASE_URL": URL, "ROLLOUT_CALLBACK_URL": "localhost:3000"})
    assert caught.value.problems == [
        "ROLLOUT_CALLBACK_URL: checks.callback.url: expected an http:// or https:// URL"
    ]


def test_defaults_describe_migration_001() -> None:
    config = load_config({"--database-url": URL}, {})
    objects = config.migration.objects
    assert config.migration.name == "001_threads_oauth_enhancements"
    count = (
        len(objects.columns) + len(objects.indexes) + len(objects.triggers) + len(objects.functions)
    )
    assert count == 11
    assert config.checks.callback.url == "http://localhost:3000/api/auth/callback/threads"
    assert config.checks.callback.method == "POST"
    assert config.checks.callback.body == '{"code":"test"}'
    assert config.database.pool_max_size == 3
    assert config.database.lock_timeout == 0.2
    assert config.checks.drift.interval == 60
    assert config.app.schema_name == "public"


def test_prisma_schema_parameter_chooses_the_app_schema_unless_configured(tmp_path: Path) -> None:
    prisma_url = URL + "?schema=tenant_a&connection_limit=5"
    assert load_config({"--database-url": prisma_url}, {}).app.schema_name == "tenant_a"
    path = tmp_path / "c.yaml"
    path.write_text("app:\n  schema: explicit\n")
    config = load_config({"--database-url": prisma_url, "--config": str(path)}, {})
    assert config.app.schema_name == "explicit"


def test_config_is_frozen() -> None:
    config = load_config({"--database-url": URL}, {})
    with pytest.raises(ValidationError):
        config.listen_address = "0.0.0.0:1"  # type: ignore[misc]


def test_password_is_hidden_in_the_config_repr() -> None:
    config = load_config({"--database-url": URL}, {})
    assert "s3cret-pw" not in repr(config)
    assert "s3cret-pw" not in str(config.model_dump())


@pytest.mark.parametrize(
    ("text", "seconds"), [("200ms", 0.2), ("15s", 15), ("1.5s", 1.5), ("5m", 300), ("1h", 3600)]
)
def test_durations_take_a_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_status_classes_and_codes_decide_success() -> None:
    config = load_config({"--database-url": URL}, {})
    callback = config.checks.callback
    assert [callback.is_valid_status(s) for s in (200, 302, 401, 404, 500, 503)] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    strict = callback.model_copy(update={"valid_status_codes": (200, "3xx")})
    assert [strict.is_valid_status(s) for s in (200, 201, 301, 401)] == [True, False, True, False]


def test_example_config_file_spells_out_exactly_the_defaults() -> None:
    example = Path(__file__).parent.parent / "rollout-monitor.example.yaml"
    loaded = load_config({"--config": str(example), "--database-url": URL}, {})
    assert loaded == load_config({"--database-url": URL}, {})
    defaults = Config().model_dump(by_alias=True, mode="json", exclude={"database": {"url"}})
    assert yaml.safe_load(example.read_text()).keys() == defaults.keys()
