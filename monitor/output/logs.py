"""structlog set-up: JSON lines for machines, readable lines on a terminal, secrets scrubbed."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class Scrubber:
    """A structlog processor that passes every string value through the redactor."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> EventDict:
        """Scrub the event dict in place, nested lists and mappings included."""
        for key, value in event.items():
            event[key] = self._scrub(value)
        return event

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, BaseException):
            return self._redact(f"{type(value).__name__}: {value}")
        if isinstance(value, Mapping):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set):
            return [self._scrub(item) for item in value]
        return value


class LineWriter:
    """Whole lines to one stream under one lock: structlog's events and the standard library's
    records (psycopg_pool, APScheduler) come from many threads and must never share a line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write_line(self, line: str) -> None:
        """Write the line and its newline in one call, then flush; a closed or broken stream
        loses the line rather than failing the check that logged it."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._stream.write(line + "\n")
            self._stream.flush()


class LineLogger:
    """structlog's logger: every method writes the rendered event as one line."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        """Write the rendered event."""
        self._writer.write_line(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class LineHandler(logging.Handler):
    """A logging handler writing each formatted record as one line through the LineWriter."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record and write it."""
        try:
            self._writer.write_line(self.format(record))
        except Exception:  # logging's contract: a broken record must not break the caller
            self.handleError(record)


def configure_logging(
    level: str, fmt: str, redact: Callable[[str], str], stream: TextIO = sys.stderr
) -> None:
    """Route structlog and the standard library's logging (APScheduler, psycopg) to the stream."""
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        Scrubber(redact),
    ]
    writer = LineWriter(stream)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=lambda *_: LineLogger(writer),
        cache_logger_on_first_use=False,
    )
    handler = LineHandler(writer)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    route_uncaught_exceptions()
    # Libraries speak only when something is wrong; the monitor's own events cover the rest.
    root.setLevel(max(LEVELS[level], logging.WARNING))


def route_uncaught_exceptions() -> None:
    """An exception nothing caught, in any thread, becomes one scrubbed event, not a raw
    traceback on stderr (a library's text may hold a URL or a value)."""
    log = structlog.get_logger("monitor")

    def in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        thread = args.thread.name if args.thread is not None else None
        if args.exc_value is None:
            log.error("uncaught_exception", thread=thread, error=args.exc_type.__name__)
        else:
            log.error("uncaught_exception", thread=thread, exc_info=args.exc_value)

    def in_main(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, error, trace)
            return
        log.error("uncaught_exception", thread="main", exc_info=error)

    threading.excepthook = in_thread
    sys.excepthook = in_main
