"""The demo in a terminal: progress, where to look, typed fault injections, a status line."""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import httpx

from monitor.demo.app import ACTIONS
from monitor.demo.settings import DemoSettings
from monitor.demo.stack import DemoStack

STATUS_EVERY = 10.0
READY_LINE = "demo ready"
QUIT_WORDS = frozenset({"q", "quit", "exit"})


def run(settings: DemoSettings, commands: TextIO | None, say: Callable[[str], None] = print) -> int:
    """Run the demo until Ctrl-C, SIGTERM or `quit`; 0 after a clean stop.

    `commands` is read to its end (a pipe ends, the demo goes on); the prompt to type an action
    is shown only when it is a terminal.
    """
    stop = threading.Event()
    try:
        with DemoStack(settings, say) as stack:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            say(where_to_look(stack, typing=commands is not None and commands.isatty()))
            say(READY_LINE)
            if commands is not None:
                threading.Thread(target=obey, args=(stack, commands, stop), daemon=True).start()
            while not stop.wait(STATUS_EVERY):
                stack.step(status_line(stack))
            say("stopping: every process, the database and the working directory go away ...")
    except KeyboardInterrupt:
        say("interrupted while starting: stopped what had started")
        return 130
    except RuntimeError as error:
        say(f"demo failed: {error}")
        return 1
    say("stopped")
    return 0


def where_to_look(stack: DemoStack, typing: bool) -> str:
    """The addresses of everything the demo started, and how to inject failures."""
    ends = stack.endpoints
    lines = [
        "",
        "rollout-monitor demo is running; Ctrl-C stops it and removes everything it started.",
        f"  status page   {ends.metrics.removesuffix('metrics')}   (the six success criteria)",
        f"  metrics       {ends.metrics}",
        f"  app callback  {ends.callback}",
        f"  database      {ends.database}   (psql works: trust auth, 127.0.0.1 only)",
        f"  its files     {ends.database_dir}",
    ]
    if ends.prometheus:
        lines.append(f"  prometheus    {ends.prometheus}/alerts   and   {ends.prometheus}/graph")
    if ends.alertmanager:
        lines.append(f"  alertmanager  {ends.alertmanager}")
        lines.append(
            "  pages         here, as PAGER and TICKET lines: Alertmanager's receivers post to"
            " this console's stand-in pager"
        )
    if ends.prometheus:
        verdict = shlex.join(
            [*own_command(), "verdict", "--prometheus-url", ends.prometheus, "--window", "5m"]
        )
        lines.append(f"  verdict       {verdict}   (5 minutes after the migration)")
    lines.append(f"  logs          {stack.workdir}/*.log")
    after = stack.settings.migrate_after
    if after is not None:
        lines.append(f"Migration 001 is applied live {after:g}s after start.")
    return "\n".join([*lines, *how_to_act(ends.app, typing), ""])


def own_command() -> list[str]:
    """rollout-monitor as a shell runs it without this virtualenv on its PATH."""
    script = Path(sys.executable).parent / "rollout-monitor"
    if script.is_file():
        return [str(script.absolute())]
    return [sys.executable, "-m", "monitor"]


def how_to_act(app: str, typing: bool) -> list[str]:
    """How to take an action: typed when stdin is a terminal, else over HTTP (or piped in)."""
    if typing:
        return [
            f"Type an action and Enter: {', '.join(ACTIONS)}, or quit.",
            f"  or from another shell: curl -X POST {app}/demo/callback_5xx",
        ]
    return [
        f"Actions: {', '.join(ACTIONS)}: curl -X POST {app}/demo/<action>",
        "  (standard input is not a terminal: lines piped in are actions too, quit stops)",
    ]


def obey(stack: DemoStack, commands: TextIO, stop: threading.Event) -> None:
    """Run each typed action until `quit` or the end of input (the app announces each)."""
    for line in commands:
        word = line.strip().lower().replace("-", "_")
        if word in QUIT_WORDS:
            break
        if word:
            with contextlib.suppress(Exception):  # a failed injection must not end the demo
                stack.act(word)
    else:
        return  # end of input: keep running until Ctrl-C
    stop.set()


def status_line(stack: DemoStack) -> str:
    """Migration state, logins, and the alerts Prometheus has pending or firing."""
    counts = stack.load.counts if stack.load else None
    logins = f"logins {counts.ok} ok, {counts.failed} failed" if counts else "no load"
    return f"migration {migration_state(stack)} | {logins} | alerts: {alerts(stack) or 'none'}"


def migration_state(stack: DemoStack) -> str:
    """The state the monitor exports right now."""
    with contextlib.suppress(httpx.HTTPError):
        text = httpx.get(stack.endpoints.metrics, timeout=2.0, trust_env=False).text
        for line in text.splitlines():
            if line.startswith("rollout_migration_state{") and line.endswith(" 1.0"):
                return line.split('"')[1]
    return "unknown"


def alerts(stack: DemoStack) -> str:
    """`Name (state)` for each alert Prometheus has pending or firing."""
    if stack.endpoints.prometheus is None:
        return "(no Prometheus)"
    started = time.monotonic()
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        answer = httpx.get(f"{stack.endpoints.prometheus}/api/v1/alerts", timeout=2.0)
        found = answer.json()["data"]["alerts"]
        return ", ".join(sorted({f"{a['labels']['alertname']} ({a['state']})" for a in found}))
    return f"(Prometheus did not answer in {time.monotonic() - started:.0f}s)"
