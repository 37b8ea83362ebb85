"""The memory of a flood of TLS connections handed back to the system (glibc's malloc).

asyncio's SSLProtocol allocates a 256 KiB read buffer for each TLS connection, OpenSSL some
more. glibc serves an allocation that large from its own mmap, and gives the pages back when it
is freed, until the first such free: then its *dynamic* threshold rises above 256 KiB, and the
later buffers come from the heap, where they stay after the flood is gone (1.3 GB after 4,000
silent TLS connections). A fixed threshold keeps the buffers in mmaps; the heap's free pages
left by a flood are handed back (malloc_trim) once the flood has receded.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024  # glibc's initial threshold, now fixed: larger blocks are mmap'd
TRIM_AFTER = 128  # TLS connections since the last trim that make a flood worth trimming after
TRIM_DELAY = 1.0  # seconds after a flood receded: the last of its connections are gone


@functools.cache
def _libc() -> Any:
    """glibc, or None (musl has neither mallopt nor malloc_trim)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt, libc.malloc_trim  # noqa: B018  (both or neither)
    except (OSError, AttributeError):
        return None
    return libc


@functools.cache
def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold (once per process); False where there is no glibc."""
    libc = _libc()
    return libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


class Flood:
    """Counts TLS connections; trims the heap a second after a flood of them has receded."""

    def __init__(self) -> None:
        self._since_trim = 0
        self._trim: asyncio.TimerHandle | None = None

    def connected(self) -> None:
        """A TLS connection was accepted."""
        self._since_trim += 1

    def receded(self, loop: asyncio.AbstractEventLoop) -> None:
        """Few connections are left: trim the heap soon if many came since the last trim."""
        if self._since_trim >= TRIM_AFTER and self._trim is None:
            self._trim = loop.call_later(TRIM_DELAY, self._trimmed)

    def _trimmed(self) -> None:
        self._since_trim, self._trim = 0, None
        libc = _libc()
        if libc is not None:
            libc.malloc_trim(0)


FLOOD = Flood()
