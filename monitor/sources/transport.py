"""The HTTP transport under the fetcher's httpx client: httpx's own, on a network backend
that remembers each connection's socket.

Before httpcore hands a request a pooled connection, it asks every idle connection of the
pool whether the server has closed it. Through anyio, each such question rebuilt the
stream's attribute table, which calls getpeername() on the socket, then polled it: with 16
pooled connections, 500 feeds cost ~25,000 of each system call, most of the event loop's
CPU in a warm pass (bench/poll_bench.py). The answers are the same here (the same socket,
polled), for one poll() per question.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class PollingTransport(httpx.AsyncHTTPTransport):
    """httpx.AsyncHTTPTransport (no proxy: the client mounts the environment's proxies on
    transports of their own) whose connection pool uses `RememberingBackend`."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=RememberingBackend(),
        )


class RememberingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, its streams wrapped in `_RememberingStream`."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _RememberingStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _RememberingStream(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _RememberingStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = stream.get_extra_info("socket")
        # Registered once: the pool asks about every idle connection before every request.
        self._poller = _poller_of(self._socket)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _RememberingStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._socket
        if info == "is_readable":
            return self._readable()
        return self._stream.get_extra_info(info)

    def _readable(self) -> bool:
        """Whether a read would not block: data, or the server's close. A socket already
        closed counts as readable, as in httpcore, so that its connection is dropped (and
        its descriptor, which another socket may reuse, is never polled)."""
        if self._poller is None or self._socket is None or self._socket.fileno() < 0:
            return True
        return bool(self._poller.poll(0))


def _poller_of(sock: socket.socket | None) -> select.poll | None:
    """None for no socket or a closed one: such a stream always counts as readable."""
    if sock is None or sock.fileno() < 0:
        return None
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return poller
