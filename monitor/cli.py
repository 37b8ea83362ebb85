"""Composition root: arguments -> config -> logging -> monitor -> run, once or check-config."""

from __future__ import annotations

import argparse
import os
import resource
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from prometheus_client import disable_created_metrics

from monitor.assets import AssetsError, write_assets
from monitor.config.loading import ConfigError, load_config
from monitor.config.schema import DEFAULT_LISTEN_ADDRESS, Config
from monitor.daemon.reload import Daemon, Loader, ReloadFailed
from monitor.daemon.service import Monitor
from monitor.db.pool import PasswordFileError, read_password
from monitor.demo.cli import add_demo_parser, run_demo
from monitor.http.webconfig import load_web_config
from monitor.observe.identity import describe
from monitor.output.logs import configure_logging
from monitor.output.redact import (
    Redactor,
    header_secrets,
    redact_url,
    url_secrets,
    userinfo_secrets,
)
from monitor.preflight.cli import add_preflight_parser, run_preflight
from monitor.verdict.cli import add_verdict_parser, run_verdict

USAGE_ERROR = 2


def run_assets(args: argparse.Namespace) -> int:
    """Write the rules, the dashboard and the runbook out of the installed package."""
    try:
        written = write_assets(Path(args.folder), overwrite=args.force)
    except AssetsError as error:
        print(f"rollout-monitor assets: {error}", file=sys.stderr)
        return USAGE_ERROR
    print("\n".join(str(path) for path in written))
    return 0


WITHOUT_CONFIG: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": run_demo,
    "verdict": run_verdict,
    "assets": run_assets,
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem, and exit 2."""
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see --help)\n")


# Each option's environment variable and default; a flag wins over the environment, the
# environment over the config file, the file over the defaults.
CONNECTION = (
    ("--database-url", "URL", "the watched database; env DATABASE_URL; required"),
    (
        "--database-password-file",
        "PATH",
        "a file holding the database password (one trailing newline dropped); env"
        " DATABASE_PASSWORD_FILE; default none",
    ),
    (
        "--config",
        "PATH",
        "a YAML config file (rollout-monitor.example.yaml lists every key); env ROLLOUT_CONFIG;"
        " default: the built-in defaults for migration 001",
    ),
)
CALLBACK = (
    (
        "--callback-url",
        "URL",
        "the OAuth callback to probe; env ROLLOUT_CALLBACK_URL; default"
        " http://localhost:3000/api/auth/callback/threads",
    ),
)
SERVING = (
    (
        "--listen-address",
        "HOST:PORT",
        f"where /metrics, /healthz, /readyz and the status page listen; env"
        f" ROLLOUT_LISTEN_ADDRESS; default {DEFAULT_LISTEN_ADDRESS}",
    ),
    (
        "--web-config-file",
        "PATH",
        "TLS and basic auth for the endpoint (exporter-toolkit's format); env"
        " ROLLOUT_WEB_CONFIG_FILE; default none: plain HTTP",
    ),
)
BAD_USAGE = "2 on bad usage or configuration (one line per problem)"


def options(*groups: tuple[tuple[str, str, str], ...]) -> Parser:
    """A parent parser holding these options."""
    parent = Parser(add_help=False)
    for group in groups:
        for flag, metavar, text in group:
            parent.add_argument(flag, metavar=metavar, help=text)
    return parent


def parser() -> Parser:
    """The command line (README.md, Command line)."""
    main = Parser(
        prog="rollout-monitor",
        description="Watch migration 001_threads_oauth_enhancements and the Threads OAuth"
        " callback, and export Prometheus metrics. Exit codes: see each command's --help.",
    )
    main.add_argument("--version", action="version", version=describe())
    commands = main.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands.add_parser(
        "run",
        parents=[options(CONNECTION, CALLBACK, SERVING)],
        help="serve /metrics and run every check on its interval",
        description="Serve /metrics, /healthz, /readyz and the status page (/), and run every"
        " check on its interval until SIGTERM or SIGINT. SIGHUP loads the configuration again;"
        " a bad one keeps the running one. With several monitors on one database, one leads"
        f" and runs the database checks. Exit 0 after a clean stop; {BAD_USAGE}, or when the"
        " address cannot be listened on.",
    )
    commands.add_parser(
        "once",
        parents=[options(CONNECTION, CALLBACK)],
        help="run every check once and print the metrics",
        description="Run every check once (the schema check first) and print the Prometheus"
        " text exposition on stdout. Exit 0 when every check ran, 1 when any failed (everything"
        f" it has is still printed), {BAD_USAGE}.",
    )
    commands.add_parser(
        "check-config",
        parents=[options(CONNECTION, CALLBACK, SERVING)],
        help="validate the configuration",
        description="Validate the configuration (defaults, file, environment and flags, the"
        " web config file too) without connecting to anything, and print a summary with the"
        f" password masked. Exit 0 when valid; {BAD_USAGE}, each with its location.",
    )
    assets = commands.add_parser(
        "assets",
        help="write the Prometheus rules, the Grafana dashboard and the runbook to a folder",
        description="Write the files shipped for Prometheus, Alertmanager, Grafana and"
        " prometheus-operator (and the runbook and the database role script) to FOLDER:"
        " alerts/, dashboards/, docs/, kubernetes/. Exit 0, or 2 when a file exists (without"
        " --force) or cannot be written.",
    )
    assets.add_argument("folder", metavar="FOLDER", help="where to write them (made if missing)")
    assets.add_argument("--force", action="store_true", help="replace files that exist")
    add_preflight_parser(commands, options(CONNECTION, CALLBACK))
    add_verdict_parser(commands)
    add_demo_parser(commands)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the rollout-monitor command."""
    args = parser().parse_args(argv)
    if args.command in WITHOUT_CONFIG:  # no database: they bring their own settings
        return WITHOUT_CONFIG[args.command](args)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: noise here
    flags = {f"--{k.replace('_', '-')}": v for k, v in vars(args).items() if k != "command"}
    try:
        config, redact = load(flags, os.environ)
    except (ConfigError, PasswordFileError) as error:
        problems = error.problems if isinstance(error, ConfigError) else [str(error)]
        shown = early_redactor(flags, os.environ)
        print("\n".join(shown(problem) for problem in problems), file=sys.stderr)
        return USAGE_ERROR
    configure_logging(config.log.level, config.log.format, redact)
    if args.command == "check-config":
        print(redact(summary(config)))
        return 0
    if args.command == "preflight":
        return run_preflight(config, redact, args)
    if args.command == "once":
        monitor = Monitor(config, redact)
        try:
            exposition, ok = monitor.once()
        finally:
            monitor.close()
        sys.stdout.write(exposition.decode())
        return 0 if ok else 1
    return serve(config, redact, lambda: reload(flags))


def load(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> tuple[Config, Redactor]:
    """The configuration and a redactor for its secrets (the URL's password, the file's)."""
    config = load_config(flags, environ)
    load_web_config(config.web_config_file)
    callback = config.checks.callback
    secrets = [
        *url_secrets(config.database_url),
        *userinfo_secrets(callback.url),
        *header_secrets(callback.headers),
    ]
    if config.database.password_file is not None:
        secrets.append(read_password(config.database.password_file))
    return config, Redactor(secrets)


def early_redactor(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> Redactor:
    """For problems found before a configuration stands: the secrets of the URLs as given."""
    urls = [flags.get("--database-url"), environ.get("DATABASE_URL")]
    callbacks = [flags.get("--callback-url"), environ.get("ROLLOUT_CALLBACK_URL")]
    secrets = [s for url in urls if url for s in url_secrets(url)]
    secrets += [s for url in callbacks if url for s in userinfo_secrets(url)]
    return Redactor(secrets)


def reload(flags: Mapping[str, str | None]) -> tuple[Config, Redactor]:
    """load() as at start, from today's file, environment and the same flags (SIGHUP)."""
    try:
        return load(flags, os.environ)
    except ConfigError as error:
        raise ReloadFailed(error.problems) from None
    except PasswordFileError as error:
        raise ReloadFailed([str(error)]) from None


def serve(config: Config, redact: Redactor, load_again: Loader) -> int:
    """The daemon: until SIGTERM or SIGINT, loading the configuration again on SIGHUP."""
    raise_open_files_limit()
    try:
        Daemon(config, redact, load_again).run()
    except OSError as error:
        print(
            f"listen_address: cannot listen on {config.listen_address}: {error.strerror}",
            file=sys.stderr,
        )
        return USAGE_ERROR
    return 0


def raise_open_files_limit() -> None:
    """The soft limit on open files up to the hard one (as Go servers do): a flood of
    connections must not leave the callback probe or the pool without a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def summary(config: Config) -> str:
    """What check-config found, with the password masked."""
    checks = config.checks
    enabled = [
        type(checks).model_fields[name].alias or name
        for name, check in checks
        if getattr(check, "enabled", False)
    ]
    return (
        f"configuration OK: database {redact_url(config.database_url)}, "
        f"callback {config.checks.callback.method} {config.checks.callback.url}, "
        f"listen {config.listen_address}, checks {', '.join(enabled)}"
    )
