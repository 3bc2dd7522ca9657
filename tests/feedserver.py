"""A real HTTP server on 127.0.0.1 for tests and benches that need a misbehaving feed host.

    with FeedServer() as server:
        server.route("/rss", body=feed_bytes, etag='"v1"', gzip=True)
        server.route("/slow", body=feed_bytes, delay=5)
        server.redirect("/old", "/rss", status=301)
        url = server.url("/rss")
        ...
        assert server.requests_for("/rss")[-1].headers["if-none-match"] == '"v1"'

Runs a ThreadingHTTPServer in a daemon thread, so it serves while the test's event loop
runs the client. The pytest fixture `feed_server` yields a fresh one per test (register it
with `pytest_plugins = ["tests.feedserver"]` in conftest.py).
"""

from __future__ import annotations

import gzip as gzip_module
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

RSS_TYPE = "application/rss+xml; charset=utf-8"


@dataclass
class Route:
    """How one path answers. Defaults give a plain 200 with the body."""

    body: bytes = b""
    status: int = 200
    content_type: str | None = RSS_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # sent, and 304 when If-None-Match matches
    last_modified: str | None = None  # sent, and 304 when If-Modified-Since is not older
    gzip: bool = False  # compress the body when the client accepts gzip
    chunked: bool = False  # no Content-Length: the client cannot know the size up front
    delay: float = 0.0  # seconds before the status line (slow server)
    drip: float = 0.0  # seconds between 1 KiB body chunks (slow body)
    retry_after: str | None = None
    location: str | None = None  # for redirects
    fail_times: int = 0  # answer fail_status this many times first, then normally
    fail_status: int = 500
    served: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case keys
    peer: tuple[str, int] = ("", 0)  # the client's address: one per connection


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self.intervals: list[tuple[float, float]] = []  # (arrival, done), time.monotonic()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.feed_server = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="feed-server", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping in delay/drip
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- configuration ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, body: bytes = b"", **options: object) -> Route:
        route = Route(body=body, **options)  # type: ignore[arg-type]
        with self._lock:
            self.routes[path] = route
        return route

    def redirect(self, path: str, to: str, status: int = 301) -> Route:
        return self.route(path, status=status, location=to, content_type=None)

    # -- inspection ---------------------------------------------------------------------

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def hits(self, path: str) -> int:
        return len(self.requests_for(path))

    def peak_concurrency(self) -> int:
        """The most requests this server was handling at one moment."""
        with self._lock:
            return peak_overlap(self.intervals)

    # -- used by the handler ------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> tuple[Route | None, int]:
        with self._lock:
            self.requests.append(request)
            route = self.routes.get(request.path)
            if route is None:
                return None, 0
            route.served += 1
            return route, route.served


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    feed_server: FeedServer

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that time out and hang up are the point of several tests; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        arrived = time.monotonic()
        try:
            self._respond(send_body)
        finally:
            owner = self.server.feed_server
            with owner._lock:
                owner.intervals.append((arrived, time.monotonic()))

    def _respond(self, send_body: bool) -> None:
        owner = self.server.feed_server
        path = urlsplit(self.path).path
        headers = {key.lower(): value for key, value in self.headers.items()}
        route, attempt = owner._record(RecordedRequest(self.command, path, headers, self.client_address))
        if route is None:
            self._send(404, {"content-type": "text/plain"}, b"not found", send_body)
            return
        if route.delay and owner._closing.wait(route.delay):
            return
        if attempt <= route.fail_times:
            extra = {"retry-after": route.retry_after} if route.retry_after else {}
            self._send(route.fail_status, {"content-type": "text/plain", **extra}, b"failing on purpose", send_body)
            return
        response_headers = dict(route.headers)
        if route.content_type:
            response_headers.setdefault("content-type", route.content_type)
        if route.etag:
            response_headers["etag"] = route.etag
        if route.last_modified:
            response_headers["last-modified"] = route.last_modified
        if route.retry_after:
            response_headers["retry-after"] = route.retry_after
        if route.location:
            response_headers["location"] = route.location
        if route.status == 200 and _not_modified(route, headers):
            validators = {k: v for k, v in response_headers.items() if k in ("etag", "last-modified")}
            self._send(304, validators, b"", send_body=False)
            return
        body = route.body
        if route.gzip and "gzip" in headers.get("accept-encoding", ""):
            body = gzip_module.compress(body)
            response_headers["content-encoding"] = "gzip"
        self._send(route.status, response_headers, body, send_body, chunked=route.chunked, drip=route.drip)

    def _send(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        send_body: bool,
        chunked: bool = False,
        drip: float = 0.0,
    ) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status == 304:
            self.end_headers()
            return
        if chunked:
            self.send_header("transfer-encoding", "chunked")
        else:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if not send_body:
            return
        closing = self.server.feed_server._closing
        step = 1024 if drip else 64 * 1024
        for start in range(0, len(body), step):
            piece = body[start : start + step]
            if drip and closing.wait(drip):
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def _not_modified(route: Route, request_headers: dict[str, str]) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since when both are sent."""
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        if route.etag is None:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or route.etag.removeprefix("W/") in tags
    if_modified_since = request_headers.get("if-modified-since")
    if if_modified_since and route.last_modified:
        try:
            return parsedate_to_datetime(route.last_modified) <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, change in events:  # at equal times the end (-1) sorts first: touching is not overlap
        current += change
        peak = max(peak, current)
    return peak


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server
