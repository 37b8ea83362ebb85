"""Builds the Config from defaults, a YAML file, the environment and flags, in that order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from monitor.config.schema import Config
from monitor.config.values import FieldProblem
from monitor.config.yamlfile import FileProblem, read_yaml
from monitor.output.shown import shown

CONFIG_ENV = "ROLLOUT_CONFIG"

# Each setting a flag or environment variable can override: config key -> (flag, variable).
OVERRIDABLE = {
    "database.url": ("--database-url", "DATABASE_URL"),
    "checks.callback.url": ("--callback-url", "ROLLOUT_CALLBACK_URL"),
    "listen_address": ("--listen-address", "ROLLOUT_LISTEN_ADDRESS"),
    "database.password_file": ("--database-password-file", "DATABASE_PASSWORD_FILE"),
    "web_config_file": ("--web-config-file", "ROLLOUT_WEB_CONFIG_FILE"),
}


MESSAGE_MAX = 300  # characters of one problem's description: never a whole value

URL_REQUIRED = (
    "database.url: required: set --database-url, DATABASE_URL or database.url in the config file"
)


class ConfigError(Exception):
    """Every problem found in the configuration, each naming where it is."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(
    flags: Mapping[str, str | None], environ: Mapping[str, str], *, database: bool = True
) -> Config:
    """The validated configuration, or ConfigError listing every problem at once; the
    database's URL is required unless `database` is False (`plan` without a database)."""
    path = flags.get("--config") or environ.get(CONFIG_ENV) or None
    data = read_config_file(path) if path else {}
    origins = apply_overrides(data, flags, environ)
    problems = [] if has_database_url(data) or not database else [URL_REQUIRED]
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        details = error.errors(include_url=False)
        problems = [describe(detail, origins, path) for detail in details] + problems
    if problems:
        raise ConfigError(problems)
    return config


def has_database_url(data: dict[str, Any]) -> bool:
    """Whether any source set database.url (its validity is the model's business)."""
    database = data.get("database", {})
    return not isinstance(database, dict) or database.get("url") is not None


def read_config_file(path: str) -> dict[str, Any]:
    """The YAML mapping in the file, or ConfigError naming the file and line
    (monitor.config.yamlfile bounds its size, nesting and aliases, and refuses duplicate keys
    and bytes not UTF-8)."""
    try:
        data = read_yaml(path)
    except FileProblem as problem:
        raise ConfigError([str(problem)]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping of settings at the top level"])
    return data


def apply_overrides(
    data: dict[str, Any], flags: Mapping[str, str | None], environ: Mapping[str, str]
) -> dict[str, str]:
    """Write flag and environment values over the file's; return key -> where each came from."""
    origins: dict[str, str] = {}
    for key, (flag, variable) in OVERRIDABLE.items():
        for origin, value in ((variable, environ.get(variable)), (flag, flags.get(flag))):
            if value:
                set_dotted(data, key, value)
                origins[key] = origin
    return origins


def set_dotted(data: dict[str, Any], key: str, value: object) -> None:
    """data['a']['b'] = value for key 'a.b', making missing parents. A parent the file set to
    something else than a mapping is left as it is, for the validation to name."""
    *parents, last = key.split(".")
    for part in parents:
        child = data.setdefault(part, {})
        if not isinstance(child, dict):
            return
        data = child
    data[last] = value


def describe(detail: ErrorDetails, origins: Mapping[str, str], path: str | None) -> str:
    """One line: where the bad value came from, its key, and what is wrong with it."""
    key = ".".join(str(part) for part in detail["loc"])
    problem = (detail.get("ctx") or {}).get("error")
    if isinstance(problem, FieldProblem):  # a section's rule naming the field it is about
        key = f"{key}.{problem.field}" if key else problem.field
    message = message_of(detail)
    origin = origins.get(key) or path
    return f"{origin}: {key}: {message}" if origin else f"{key}: {message}"


def message_of(detail: ErrorDetails) -> str:
    """A short message in our words for pydantic's error types."""
    kind, ctx, raw = detail["type"], detail.get("ctx") or {}, detail.get("input")
    value = shown(raw)  # never the whole value: an alias bomb, a 100,000-character string
    messages = {
        "extra_forbidden": "unknown key",
        "missing": "required",
        "int_parsing": f"expected an integer, got {value}",
        "int_type": f"expected an integer, got {value}",
        "int_from_float": f"expected an integer, got {value}",
        "bool_parsing": f"expected true or false, got {value}",
        "bool_type": f"expected true or false, got {value}",
        "string_type": f"expected a string, got {type(raw).__name__}",
        "model_type": "expected a mapping of settings",
        "model_attributes_type": "expected a mapping of settings",
        "dict_type": "expected a mapping",
        "tuple_type": "expected a list",
        "list_type": "expected a list",
        "literal_error": f"expected one of {ctx.get('expected')}, got {value}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "string_too_short": "must not be empty",
        "too_short": "must list at least one",
        "datetime_parsing": f"expected an ISO 8601 time, got {value}",
        "datetime_from_date_parsing": f"expected an ISO 8601 time, got {value}",
    }
    if kind in messages:
        return messages[kind]
    text = detail["msg"].removeprefix("Value error, ")
    text = text if len(text) <= MESSAGE_MAX else text[:MESSAGE_MAX] + "…"
    if isinstance(ctx.get("error"), FieldProblem):  # our own words, a name first maybe
        return text
    return text[:1].lower() + text[1:]
