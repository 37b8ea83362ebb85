"""An answer's body read within a size limit: counted as it arrives and as it is decompressed
(gzip, deflate), so that an endless body, a false Content-Length or a gzip bomb costs at most
the limit in memory; the probe's deadline bounds the time."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

# Content-Encoding -> zlib's wbits: gzip's header, or zlib's; anything else is kept as sent.
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class BodyTooLarge(Exception):
    """The body passed the limit (as sent or decompressed); reading stopped there."""


class BodyUnreadable(Exception):
    """The body does not decompress as its Content-Encoding says."""


async def read_bounded(raw: AsyncIterator[bytes], encoding: str, limit: int) -> bytes:
    """The body from its raw chunks, decompressed by `encoding`, at most `limit` bytes either
    way; BodyTooLarge past it."""
    wbits = WBITS.get(encoding.strip().lower())
    decoder = None if wbits is None else zlib.decompressobj(wbits)
    body, sent = bytearray(), 0
    async for chunk in raw:
        sent += len(chunk)
        if sent > limit:
            raise BodyTooLarge(f"the body passed {limit} bytes as sent")
        if decoder is None:
            body += chunk
            continue
        try:
            left = chunk
            while left and len(body) <= limit:
                body += decoder.decompress(left, limit + 1 - len(body))
                left = decoder.unconsumed_tail
        except zlib.error:
            raise BodyUnreadable(f"the body is not valid {encoding}") from None
        if len(body) > limit:
            raise BodyTooLarge(f"the body passed {limit} bytes decompressed")
    return bytes(body)
