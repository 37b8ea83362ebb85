"""The pg_restore that reads archive backups: the configured one, or the newest installed."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.config.durations import format_duration

# Debian and Ubuntu install each major version's client side by side; PATH has a wrapper.
_INSTALLED = "/usr/lib/postgresql/*/bin/pg_restore"
_VERSION = re.compile(r"\b(\d+)(?:\.(\d+))?")
_STDERR_LINES = 2


class ToolMissing(Exception):
    """No usable pg_restore; the message says where it looked."""


class ReadFailed(Exception):
    """The backup could not be read to its end; the message says what stopped."""


@dataclass(frozen=True)
class PgRestore:
    """One pg_restore binary and its version."""

    path: str
    version: str

    @property
    def key(self) -> tuple[int, ...]:
        """The version as numbers, to pick the newest."""
        match = _VERSION.search(self.version)
        return tuple(int(part) for part in match.groups() if part) if match else ()

    def run(self, arguments: list[str], deadline: float) -> str:
        """Its stdout; ReadFailed with its last error lines if it fails or outlives deadline."""
        command = [self.path, *arguments]
        shown = f"pg_restore {arguments[0]}"
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                errors="replace",
                stdin=subprocess.DEVNULL,
                timeout=max(0.1, deadline - time.monotonic()),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            limit = format_duration(float(error.timeout))
            raise ReadFailed(f"{shown} did not finish within {limit}") from None
        if done.returncode != 0:
            raise ReadFailed(f"{shown} failed: {_last_errors(done.stderr)}{_hint(done.stderr)}")
        return done.stdout


def _last_errors(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return "; ".join(lines[-_STDERR_LINES:]) or "no message"


def _hint(stderr: str) -> str:
    if "unsupported version" in stderr:
        return " (older than the pg_dump that wrote it? set preflight.pg_restore)"
    return ""


def version_of(path: str) -> str:
    """'15.18' from `pg_restore --version`; ToolMissing if it does not run."""
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ToolMissing(f"pg_restore {path} does not run: {error}") from None
    match = _VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise ToolMissing(f"pg_restore {path} does not run: {done.stderr.strip() or 'no version'}")
    return match[0]


def find_pg_restore(configured: Path | None) -> PgRestore:
    """The configured pg_restore, else the newest on PATH or in /usr/lib/postgresql."""
    if configured is not None:
        if not os.access(configured, os.X_OK):
            raise ToolMissing(f"preflight.pg_restore: {configured} is not an executable file")
        return PgRestore(str(configured), version_of(str(configured)))
    candidates = {p for p in [shutil.which("pg_restore"), *glob.glob(_INSTALLED)] if p}
    tools = [tool for path in sorted(candidates) if (tool := _usable(path))]
    if not tools:
        raise ToolMissing(
            "pg_restore not found on PATH or in /usr/lib/postgresql/*/bin: install the "
            "PostgreSQL client or set preflight.pg_restore"
        )
    return max(tools, key=lambda tool: tool.key)


def _usable(path: str) -> PgRestore | None:
    """The pg_restore at path, or None if it does not run (a broken install among several)."""
    try:
        return PgRestore(path, version_of(path))
    except ToolMissing:
        return None
