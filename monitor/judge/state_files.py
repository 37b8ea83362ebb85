"""Files a monitor keeps across restarts (the baseline, the window since the migration): written
in one step, read back only for the migration they were written for."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from monitor.config.files import FileProblem, read_bounded

log = structlog.get_logger("monitor.state")
# A state file holds at most MAX_PROBES (100,000) probes of ~30 bytes: about 3 MiB. Anything far
# larger (or a device, or a FIFO) is not one of ours and is refused unread.
MAX_STATE_BYTES = 16 << 20


Record = TypeVar("Record", bound=BaseModel)


def read_for_migration(
    path: Path, model: type[Record], migration: str, event: str, **fields: Any
) -> Record | None:
    """The file's record of this migration, or None: a missing file silently, an unreadable one
    or one of another migration with a warning (event, file, reason and the given fields)."""
    try:
        record = model.model_validate_json(read_bounded(path, MAX_STATE_BYTES, "state file"))
    except FileProblem as error:
        if not error.missing:
            log.warning(event, file=str(path), reason=str(error), **fields)
        return None
    except ValidationError as error:
        log.warning(event, file=str(path), reason=problem(error), **fields)
        return None
    recorded = getattr(record, "migration", None)
    if recorded != migration:
        reason = f"recorded for migration {recorded!r}"
        log.warning(event, file=str(path), reason=reason, **fields)
        return None
    return record


def problem(error: OSError | ValidationError) -> str:
    """One line saying what is wrong with the file."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def write_atomically(path: Path, text: str) -> None:
    """Replace the file's content in one step: a crash leaves the old file or the new one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
