"""The daemon's commands once the configuration stands: `run` (serve until SIGTERM), `once`
(every check once, the exposition on stdout) and `check-config` (a summary)."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable

from prometheus_client import disable_created_metrics

from monitor.config.schema import Config
from monitor.daemon.reload import Daemon, Loader
from monitor.daemon.service import Monitor
from monitor.output.redact import redact_url

USAGE_ERROR = 2


def once(config: Config, redact: Callable[[str], str]) -> int:
    """Run every check once and print the exposition; 0 when every check ran, 1 otherwise."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: noise here
    monitor = Monitor(config, redact)
    try:
        exposition, ok = monitor.once()
    finally:
        monitor.close()
    sys.stdout.write(exposition.decode())
    return 0 if ok else 1


def serve(config: Config, redact: Callable[[str], str], load_again: Loader) -> int:
    """The daemon: until SIGTERM or SIGINT, loading the configuration again on SIGHUP."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created: noise here
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
