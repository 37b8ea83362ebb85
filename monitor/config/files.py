"""Files the configuration names, read bounded: a regular file only (never a FIFO, a device or a
socket, which could block the read forever or never end), opened without waiting, and no more
than a limit of bytes; each problem one line naming the file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


class FileProblem(Exception):
    """One problem reading a file; the message names it. `missing`: there is no such file."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class NotRegular(OSError):
    """A FIFO, a device, a socket or a directory where a regular file was wanted."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"{path}: not a regular file")


def open_regular(path: str | Path) -> BinaryIO:
    """The file, opened for reading without waiting (a FIFO with no writer would block open()
    forever): OSError when it cannot be opened, NotRegular when it is not a regular file."""
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise NotRegular(path)
    return os.fdopen(handle, "rb")


def read_bounded(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The file's bytes: FileProblem when it is not a regular file, cannot be read, or holds
    more than `limit` bytes."""
    try:
        with open_regular(path) as file:
            data = file.read(limit + 1)
    except NotRegular:
        raise FileProblem(f"{path}: not a regular file: cannot be the {what}") from None
    except OSError as error:
        message = f"{path}: cannot read {what}: {error.strerror}"
        raise FileProblem(message, missing=error.errno == errno.ENOENT) from None
    if len(data) > limit:
        raise FileProblem(f"{path}: larger than {shown_size(limit)}: not a {what}")
    return data


def shown_size(size: int) -> str:
    """1048576 -> '1 MiB', 65536 -> '64 KiB'."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"
