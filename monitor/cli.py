"""Composition root: arguments -> config -> logging -> the command. No logic, and each command's
code is imported when that command runs: `run` loads the daemon and nothing of the demo, the
pre-flight or the verdict, which load none of the daemon's."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from monitor.config.names import DEFAULT_LISTEN_ADDRESS
from monitor.demo.arguments import add_demo_parser
from monitor.plan.arguments import add_plan_parser
from monitor.preflight.arguments import add_preflight_parser
from monitor.verdict.arguments import add_verdict_parser

if TYPE_CHECKING:
    from monitor.config.schema import Config

USAGE_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem, and exit 2."""
        self.exit(USAGE_ERROR, f"{self.prog}: {message} (see --help)\n")


class Version(argparse.Action):
    """--version: the version, revision and Python, looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from monitor.observe.identity import describe  # noqa: PLC0415  # only for --version

        print(describe())
        parser.exit(0)


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
# `plan` reads SQL alone; a database only adds what it says now.
PLAN_CONNECTION = (
    (
        "--database-url",
        "URL",
        "the watched database, for its sizes and blockers; env DATABASE_URL; default none",
    ),
    *CONNECTION[1:],
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
    main.add_argument("--version", action=Version, nargs=0, help="print the version and exit")
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
    assets.add_argument(
        "--runbook-url",
        metavar="URL",
        help="where docs/runbook.md is published (absolute http(s)): every alert's runbook_url"
        " becomes URL#its-section; without it they stay relative (docs/runbook.md#...), which"
        " a pager cannot open",
    )
    add_preflight_parser(commands, options(CONNECTION, CALLBACK))
    add_plan_parser(commands, options(PLAN_CONNECTION))
    add_verdict_parser(commands)
    add_demo_parser(commands)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the rollout-monitor command."""
    args = parser().parse_args(argv)
    return COMMANDS[args.command](args)


# Each command imports its own code when it runs (the `noqa: PLC0415` below).


def run_demo(args: argparse.Namespace) -> int:
    """`demo`: brings its own settings."""
    from monitor.demo.command import run_demo as demo  # noqa: PLC0415

    return demo(args)


def run_plan(args: argparse.Namespace) -> int:
    """`plan`: the migration's lock plan; the database only when a URL is given."""
    from monitor.plan.command import run_plan as plan  # noqa: PLC0415

    return plan(args)


def run_verdict(args: argparse.Namespace) -> int:
    """`verdict`: asks Prometheus, never the database."""
    from monitor.verdict.command import run_verdict as verdict  # noqa: PLC0415

    return verdict(args)


def run_assets(args: argparse.Namespace) -> int:
    """`assets`: writes the files the package ships."""
    from pathlib import Path  # noqa: PLC0415

    from monitor.assets import AssetsError, write_assets  # noqa: PLC0415

    try:
        written = write_assets(Path(args.folder), overwrite=args.force, url=args.runbook_url)
    except AssetsError as error:
        print(f"rollout-monitor assets: {error}", file=sys.stderr)
        return USAGE_ERROR
    print("\n".join(str(path) for path in written))
    return 0


Flags = dict[str, Any]  # --flag -> its value, as loading reads them
Configured = Callable[["Config", Callable[[str], str], argparse.Namespace, Flags], int]


def with_configuration(command: Configured) -> Callable[[argparse.Namespace], int]:
    """A command run with the configuration loaded (every problem printed, exit 2 if any)
    and logging set up: command(config, redact, args, flags)."""

    def run(args: argparse.Namespace) -> int:
        from monitor.config.loading import ConfigError  # noqa: PLC0415
        from monitor.daemon import setup  # noqa: PLC0415
        from monitor.db.pool import PasswordFileError  # noqa: PLC0415
        from monitor.output.logs import configure_logging  # noqa: PLC0415

        flags = {f"--{k.replace('_', '-')}": v for k, v in vars(args).items() if k != "command"}
        try:
            config, redact = setup.load(flags, os.environ)
        except (ConfigError, PasswordFileError) as error:
            problems = error.problems if isinstance(error, ConfigError) else [str(error)]
            shown = setup.early_redactor(flags, os.environ)
            print("\n".join(shown(problem) for problem in problems), file=sys.stderr)
            return USAGE_ERROR
        configure_logging(config.log.level, config.log.format, redact)
        return command(config, redact, args, flags)

    return run


@with_configuration
def run_daemon(
    config: Config, redact: Callable[[str], str], _: argparse.Namespace, flags: Flags
) -> int:
    """`run`: serve until SIGTERM, loading the configuration again on SIGHUP."""
    from monitor.daemon import commands, setup  # noqa: PLC0415

    return commands.serve(config, redact, lambda: setup.reload(flags))


@with_configuration
def run_once(config: Config, redact: Callable[[str], str], *_: object) -> int:
    """`once`: every check once."""
    from monitor.daemon import commands  # noqa: PLC0415

    return commands.once(config, redact)


@with_configuration
def check_config(config: Config, redact: Callable[[str], str], *_: object) -> int:
    """`check-config`: the configuration loaded; a summary, the password masked."""
    from monitor.daemon import commands  # noqa: PLC0415

    print(redact(commands.summary(config)))
    return 0


@with_configuration
def run_preflight(
    config: Config, redact: Callable[[str], str], args: argparse.Namespace, _: Flags
) -> int:
    """`preflight`: the plan's pre-deployment checklist."""
    from monitor.preflight.command import run_preflight as preflight  # noqa: PLC0415

    return preflight(config, redact, args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": run_daemon,
    "once": run_once,
    "check-config": check_config,
    "preflight": run_preflight,
    "plan": run_plan,
    "verdict": run_verdict,
    "demo": run_demo,
    "assets": run_assets,
}
