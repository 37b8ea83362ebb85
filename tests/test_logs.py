"""Log lines from many threads, structlog's and the standard library's, never share a line."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from pathlib import Path

import structlog

from monitor.output.logs import configure_logging
from monitor.output.redact import Redactor

THREADS = 8
LINES_EACH = 500


def test_concurrent_structlog_and_stdlib_lines_stay_whole(tmp_path: Path) -> None:
    """Every line is one JSON object, and none is lost, with both kinds written at once."""
    path = tmp_path / "log.jsonl"
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: interleaving shows up
    try:
        write_concurrently(path)
    finally:
        sys.setswitchinterval(switch_interval)
        restore_default_logging()
    lines = path.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]  # raises on two objects sharing a line
    assert len(events) == THREADS * LINES_EACH
    assert sum(e["event"] == "check_failed" for e in events) == THREADS // 2 * LINES_EACH


def test_a_closed_stream_loses_the_line_instead_of_failing_the_caller(tmp_path: Path) -> None:
    """A check that logs after stderr went away still completes."""
    stream = open(tmp_path / "log.jsonl", "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        configure_logging("info", "json", Redactor(), stream)
        stream.close()
        structlog.get_logger("monitor.test").info("check_failed", check="drift")
        logging.getLogger("psycopg.pool").warning("error connecting")
    finally:
        restore_default_logging()


def restore_default_logging() -> None:
    """Leave logging as other tests expect it: structlog's defaults, no root handler."""
    structlog.reset_defaults()
    logging.getLogger().handlers = []


def write_concurrently(path: Path) -> None:
    """Half the threads log through structlog, half through logging, all at once."""
    # Unbuffered and write-through, as stderr is under PYTHONUNBUFFERED: every write() is a
    # system call that lets another thread run in between.
    with io.TextIOWrapper(
        open(path, "wb", buffering=0), encoding="utf-8", write_through=True
    ) as stream:
        configure_logging("info", "json", Redactor(), stream)
        start = threading.Barrier(THREADS)

        def from_structlog(worker: int) -> None:
            start.wait()
            for n in range(LINES_EACH):
                structlog.get_logger("monitor.test").info("check_failed", worker=worker, n=n)

        def from_stdlib(worker: int) -> None:
            start.wait()
            for n in range(LINES_EACH):
                logging.getLogger("psycopg.pool").warning("error connecting %d/%d", worker, n)

        threads = [
            threading.Thread(target=from_structlog if i % 2 else from_stdlib, args=(i,))
            for i in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
