"""Responses httpx refuses for a malformed Transfer-Encoding header (as KUNA's server is
reported to send) are read over HTTP/1.0 when that is safe, and fail with the reason when not.
A raw socket server on loopback sends the exact bytes."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from collections.abc import Iterator

import pytest

from monitor.sources.fetch import FeedRequest, Fetcher

ARABIC = "الحوار الاستراتيجي بين الكويت والولايات المتحدة".encode()


class RawServer:
    """Answers every connection with `response(request_bytes)`, then closes it."""

    def __init__(self, respond) -> None:
        self.respond = respond
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    piece = conn.recv(65536)
                    if not piece:
                        break
                    request += piece
                self.requests.append(request)
                conn.sendall(self.respond(request))

    def close(self) -> None:
        self.sock.close()


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


@pytest.fixture
def serve() -> Iterator:
    servers: list[RawServer] = []

    def start(respond) -> RawServer:
        server = RawServer(respond)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def fetch(url: str, max_bytes: int = 1_000_000):
    async def run():
        async with Fetcher(concurrency=2, per_host=2, timeout=3, max_bytes=max_bytes, user_agent="t/1") as fetcher:
            return await fetcher.fetch(FeedRequest(feed_id="k", url=url))

    return asyncio.run(run())


@pytest.mark.parametrize(
    "header",
    ["Transfer-Encoding: chunked, chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Transfer-Encoding: identity"],
)
def test_malformed_transfer_encoding_is_read_over_http10(serve, header: str) -> None:
    def respond(request: bytes) -> bytes:
        framed = chunked(ARABIC) if "chunked" in header else ARABIC
        return f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{header}\r\n\r\n".encode() + framed

    server = serve(respond)
    outcome = fetch(f"http://127.0.0.1:{server.port}/news")
    assert outcome.error is None and outcome.status == "ok"
    assert outcome.body == ARABIC
    assert server.requests[-1].startswith(b"GET /news HTTP/1.0\r\n")
    assert len(server.requests) == 2  # the refused HTTP/1.1 attempt, then one HTTP/1.0 request


def test_chunks_still_framed_over_http10_are_decoded_and_gzip_undone(serve) -> None:
    packed = gzip.compress(ARABIC * 10)

    def respond(request: bytes) -> bytes:
        return (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked, chunked\r\n\r\n" + chunked(packed))

    server = serve(respond)
    outcome = fetch(f"http://127.0.0.1:{server.port}/")
    assert outcome.error is None and outcome.body == ARABIC * 10


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunked(b"x"), "unsupported Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nab", "chunk"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n" + chunked(b"y" * 5000), "max_bytes"),
        (b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "HTTP 301"),
    ],
)
def test_what_cannot_be_read_safely_fails_with_the_reason(serve, response: bytes, reason: str) -> None:
    server = serve(lambda request: response)
    outcome = fetch(f"http://127.0.0.1:{server.port}/", max_bytes=4000)
    assert outcome.status == "error" and outcome.body is None
    assert "malformed Transfer-Encoding" in (outcome.error or "") and reason in (outcome.error or "")
