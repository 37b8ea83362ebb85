"""The probe's connections on asyncio's own streams, as httpcore's network backend.

httpcore connects through anyio by default: a probe's TCP connect took 0.46 ms there against
0.14 ms on asyncio's streams for the same connect (bench/exporters.py's probe sits within a
millisecond of blackbox_exporter's only without that). httpcore's backend interface is its
documented extension point; httpx builds its pool without one, so `transport` gives httpx a
pool on this backend. Errors become httpcore's own, which httpx maps to its HTTPError kinds."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import httpcore
import httpx

T = TypeVar("T")
SocketOption = Any  # httpcore's SOCKET_OPTION: (level, option, value[, length])


async def within(
    work: Awaitable[T],
    timeout: float | None,
    late: type[Exception],
    failed: type[Exception],
) -> T:
    """The work's result by the timeout; `late` past it, `failed` on a socket error."""
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError as error:
        raise late(str(error) or "timed out") from None
    except (OSError, ssl.SSLError) as error:
        raise failed(str(error)) from error


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: asyncio's reader and writer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to max_bytes, b"" at the end."""
        reading = self._reader.read(max_bytes)
        return await within(reading, timeout, httpcore.ReadTimeout, httpcore.ReadError)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """All of the buffer."""
        if buffer:
            self._writer.write(buffer)
            await within(self._writer.drain(), timeout, httpcore.WriteTimeout, httpcore.WriteError)

    async def aclose(self) -> None:
        """Close without waiting on the peer."""
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """The same connection, over TLS."""
        handshake = self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        await within(handshake, timeout, httpcore.ConnectTimeout, httpcore.ConnectError)
        return self

    def get_extra_info(self, info: str) -> Any:
        """As asyncio's transport has it (ssl_object, socket, peername...)."""
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "is_readable":
            return self._reader.at_eof()
        return self._writer.get_extra_info(info)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP connections on asyncio's streams."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to host:port by the timeout."""
        local = None if local_address is None else (local_address, 0)
        opening = asyncio.open_connection(host, port, local_addr=local)
        reader, writer = await within(
            opening, timeout, httpcore.ConnectTimeout, httpcore.ConnectError
        )
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Not used by the probe."""
        raise httpcore.ConnectError("the probe connects over TCP only")

    async def sleep(self, seconds: float) -> None:
        """asyncio's."""
        await asyncio.sleep(seconds)


def transport(tls: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """httpx's transport with its pool on AsyncioBackend (and the probe's TLS context)."""
    made = httpx.AsyncHTTPTransport(verify=tls, trust_env=False)
    made._pool = httpcore.AsyncConnectionPool(  # see the module's docstring
        ssl_context=tls, max_connections=10, network_backend=AsyncioBackend()
    )
    return made
