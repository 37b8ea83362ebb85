"""Files the configuration names, read bounded: a regular file only (never a FIFO, a device or a
socket, which could block the read forever or never end), opened without waiting, and no more
than a limit of bytes; each problem one line naming the file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class FileProblem(Exception):
    """One problem reading a file; the message names it. `missing`: there is no such file."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def read_bounded(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The file's bytes: FileProblem when it is not a regular file, cannot be read, or holds
    more than `limit` bytes."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        handle = os.open(path, flags)
    except OSError as error:
        message = f"{path}: cannot read {what}: {error.strerror}"
        raise FileProblem(message, missing=error.errno == errno.ENOENT) from None
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise FileProblem(f"{path}: not a regular file: cannot be the {what}")
        data = _read(handle, limit + 1)
    except OSError as error:
        raise FileProblem(f"{path}: cannot read {what}: {error.strerror}") from None
    finally:
        os.close(handle)
    if len(data) > limit:
        raise FileProblem(f"{path}: larger than {shown_size(limit)}: not a {what}")
    return data


def _read(handle: int, most: int) -> bytes:
    chunks, left = [], most
    while left > 0:
        chunk = os.read(handle, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def shown_size(size: int) -> str:
    """1048576 -> '1 MiB', 65536 -> '64 KiB'."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"
