"""The daemon's window since the migration, kept in a file across restarts.

A restarted daemon used to start its window afresh, so its page and rollout_success_criterion
forgot the failures the verdict (over Prometheus) still counted. With baseline.state_file set,
the window is kept beside it (`<state file>-window.json`): written at most once a minute while
probes come in and when the monitor stops, read when it starts if it watches the same migration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict

from monitor.judge.state_files import problem, read_for_migration, write_atomically

log = structlog.get_logger("monitor.window")
STATE_VERSION = 1
# (at, success, bucket index or None, wrongly_invalid or None): compact, one a probe.
Probe = tuple[float, bool, int | None, float | None]


class WindowState(BaseModel):
    """What a LiveView needs to carry on: its times, its last look and its probes."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # at first use

    version: Literal[1]
    migration: str
    applied_at: float | None
    started_at: float | None
    left_at: float | None
    last_look: str | None
    probes: tuple[Probe, ...]


def window_path(state_file: Path | None) -> Path | None:
    """Where the window is kept for this baseline state file; None without one."""
    if state_file is None:
        return None
    return state_file.with_name(f"{state_file.stem}-window{state_file.suffix or '.json'}")


def save(path: Path, state: WindowState) -> None:
    """Write the window in one step; a failure is logged, never raised (probes go on)."""
    try:
        write_atomically(path, json.dumps(state.model_dump(), separators=(",", ":")))
    except OSError as error:
        log.warning("window_state_not_saved", file=str(path), reason=problem(error))


def load(path: Path, migration: str) -> WindowState | None:
    """The saved window of this migration, or None (with a warning when it cannot be used)."""
    return read_for_migration(path, WindowState, migration, "window_state_unreadable")
