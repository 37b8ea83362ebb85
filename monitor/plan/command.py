"""`rollout-monitor plan`: the migration's SQL -> its lock plan -> the report and exit code."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from monitor.config.loading import ConfigError, load_config
from monitor.config.migration import sql_of
from monitor.config.schema import Config
from monitor.config.values import FieldProblem
from monitor.db.catalog import gather
from monitor.db.pool import Database, PasswordFileError, is_connection_failure
from monitor.lockplan.facts import Facts
from monitor.lockplan.plan import build
from monitor.lockplan.reading import SqlError, Statement, read_statements
from monitor.output.logs import configure_logging
from monitor.output.redact import Redactor, url_secrets
from monitor.plan.report import as_json, as_text

USAGE_ERROR = 2
PROGRAM = "rollout-monitor plan"


def run_plan(args: argparse.Namespace) -> int:
    """Plan, print, and return 0 (safe), 1 (risky) or 2 (bad usage, SQL that does not parse)."""
    flags = {f"--{k.replace('_', '-')}": v for k, v in vars(args).items() if k != "command"}
    try:
        config = load_config(flags, os.environ, database=False)
        path = Path(args.file) if args.file else config.migration.sql_file
        where, text = sql_of(path)
        statements = read_statements(text)
    except ConfigError as error:
        return _usage(*error.problems)
    except FieldProblem as bad:
        return _usage(str(bad))
    except SqlError as error:
        return _usage(f"{where}:{error.line}:{error.column}: {error.message}")
    facts, problem = ask_database(config, statements)
    plan = build(config.migration.name, statements, facts)
    if problem is not None:
        plan = plan.with_problem(problem)
    print(as_json(plan, where) if args.format == "json" else as_text(plan, where), end="")
    return 0 if plan.result == "safe" else 1


def ask_database(config: Config, statements: list[Statement]) -> tuple[Facts | None, str | None]:
    """The database's facts, when a URL is configured; else (None, None). A database that
    cannot be asked is a problem of the plan (it cannot vouch for what it did not see)."""
    if config.database.url is None:
        return None, None
    redact = Redactor(url_secrets(config.database_url))
    # The pool's own words on a failed connection go to the log on stderr, scrubbed.
    configure_logging(config.log.level, config.log.format, redact)
    try:
        db = Database(config.database, config.database_url, lambda _: None)
    except PasswordFileError as error:
        return None, str(error)
    db.open()
    try:
        return gather(db, config.app.schema_name, statements), None
    except Exception as error:  # the plan stands without it; the reason, redacted, says why
        kind = "could not reach" if is_connection_failure(error) else "could not read"
        line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return None, redact(f"{kind} the database: {line}")
    finally:
        db.close()


def _usage(*problems: str) -> int:
    for problem in problems:
        print(f"{PROGRAM}: {problem}", file=sys.stderr)
    return USAGE_ERROR
