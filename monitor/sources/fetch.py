"""HTTP fetching of feeds: one shared httpx.AsyncClient, polite and bounded.

Every problem a remote server can cause (refused connection, timeout, 5xx, a gzip bomb, an
endless redirect loop) becomes a FetchOutcome with a specific, human `error`; `fetch()` never
raises for them, so one bad feed cannot break a polling pass.

Bodies are decompressed here, not by httpx, because httpx inflates each network chunk in one
call: a 64 KiB gzip chunk can become 64 MiB before any cap is checked. Inflating with a
`max_length` keeps memory bounded by `max_bytes` whatever the compression ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import random
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Self

import httpx
import structlog

from monitor.sources.transport import PollingTransport

log = structlog.get_logger(__name__)

FetchStatus = Literal["ok", "not_modified", "unchanged", "error"]

ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
ACCEPT_ENCODING = "gzip, deflate"
MAX_REDIRECTS = 10
PERMANENT_REDIRECTS = frozenset({301, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})
OK_STATUSES = frozenset({200, 203})
# A Retry-After years ahead is a server bug; honouring it would park the feed silently.
MAX_RETRY_AFTER = 24 * 3600.0
# A server dripping one byte per read-timeout would otherwise hold a slot for ever.
TOTAL_DEADLINE_FACTOR = 3.0
_INFLATE_CHUNK = 256 * 1024


@dataclass(frozen=True)
class FeedRequest:
    feed_id: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_body_hash: str | None = None
    accept: str | None = None  # None: feed types first (ACCEPT); article pages ask for HTML
    # False: a 3xx comes back as an error outcome with its `location` header, for a caller
    # that checks each hop first (article pages: robots.txt of the host redirected to).
    follow_redirects: bool = True


@dataclass(frozen=True)
class FetchOutcome:
    """What one fetch produced. `body` is set only for status "ok" (the decompressed bytes);
    `etag`/`last_modified` are the validators to store for the next conditional request."""

    feed_id: str
    requested_url: str
    final_url: str | None
    permanent_redirect: str | None
    status: FetchStatus
    http_status: int | None
    body: bytes | None
    headers: dict[str, str]
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    retry_after: float | None
    error: str | None
    elapsed: float


class FetchFailed(Exception):
    """A failure with its human message, raised inside the fetcher and turned into an outcome."""


class Fetcher:
    """Async context manager owning the HTTP clients of a polling process.

    Concurrency is bounded twice: overall (`concurrency`) so a pass over 500 feeds does not
    open 500 sockets, and per host (`per_host`) so feeds of one publisher (often a dozen
    section feeds on one server) do not hammer it.

    The overall slots are lanes, each an httpx client of one connection, not one client of
    `concurrency` connections: httpcore's pool, each time it hands out or takes back a
    connection, checks every waiting request against every connection (and asks each idle
    one whether the server closed it), which with 16 of each was most of a warm pass's CPU
    (bench/poll_bench.py; 4 clients of 4 still cost 12 % more than 16 of 1). A request
    takes a free lane whose connection last went to its host, so keep-alive connections
    are reused across all lanes, not only within a client."""

    def __init__(self, *, concurrency: int, per_host: int, timeout: float, max_bytes: int, user_agent: str) -> None:
        if concurrency < 1 or per_host < 1:
            raise ValueError("concurrency and per_host must be at least 1")
        self.concurrency = concurrency
        self.per_host = per_host
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self._clients: list[httpx.AsyncClient] = []  # one per lane
        self._slots = asyncio.Semaphore(concurrency)  # one per free lane
        self._free: list[int] = []  # free lanes, in the order they were freed
        self._lane_hosts: list[str] = []  # the host each lane's connection last went to
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    @classmethod
    def for_polling(cls, polling: Any) -> Fetcher:
        """The fetcher a [polling] section (monitor.config.PollingSection) describes."""
        return cls(
            concurrency=polling.concurrency,
            per_host=polling.per_host,
            timeout=polling.timeout.total_seconds(),
            max_bytes=polling.max_bytes,
            user_agent=polling.user_agent,
        )

    async def __aenter__(self) -> Self:
        tls = verified_tls(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        self._clients = [self._client_of(tls) for _ in range(self.concurrency)]
        self._free = list(range(self.concurrency))
        self._lane_hosts = [""] * self.concurrency
        return self

    def _client_of(self, tls: ssl.SSLContext) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        return httpx.AsyncClient(
            transport=PollingTransport(verify=tls, limits=limits),
            timeout=httpx.Timeout(self.timeout),
            limits=limits,  # and `verify`: for the transports of the environment's proxies
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"user-agent": self.user_agent, "accept": ACCEPT, "accept-encoding": ACCEPT_ENCODING},
            trust_env=True,  # HTTPS_PROXY / NO_PROXY / SSL_CERT_FILE, as operators expect
            verify=tls,
        )

    async def __aexit__(self, *exc_info: object) -> None:
        clients, self._clients, self._free = self._clients, [], []
        for client in clients:
            await client.aclose()

    @contextlib.asynccontextmanager
    async def _lane(self, host: str) -> AsyncIterator[httpx.AsyncClient]:
        """One of the `concurrency` overall slots, and the client it sends on."""
        async with self._slots:  # acquired: a lane is free
            index = self._take_lane(host)
            try:
                yield self._clients[index]
            finally:
                self._free.append(index)

    def _take_lane(self, host: str) -> int:
        """The free lane freed last among those whose connection went to `host` (the likeliest
        to be still open), else the one freed longest ago: a new connection is needed either
        way, and the connection it replaces is the one least likely to be wanted soon."""
        for position in range(len(self._free) - 1, -1, -1):
            if self._lane_hosts[self._free[position]] == host:
                return self._free.pop(position)
        index = self._free.pop(0)
        self._lane_hosts[index] = host
        return index

    async def fetch(self, req: FeedRequest) -> FetchOutcome:
        """Fetch one feed, conditionally when validators are known. Never raises for network
        or HTTP problems (only for programming errors such as using a closed Fetcher)."""
        if not self._clients:
            raise RuntimeError("Fetcher used outside its `async with` block")
        started = time.perf_counter()
        host = _host_key(req.url)
        # Host slot first: a task queued behind a busy host must not hold a global slot.
        async with self._host_slot(host), self._lane(host) as client:
            try:
                async with asyncio.timeout(self.timeout * TOTAL_DEADLINE_FACTOR):
                    return await self._fetch(client, req, started)
            except FetchFailed as exc:
                return _failure(req, str(exc), started)
            except TimeoutError:
                total = self.timeout * TOTAL_DEADLINE_FACTOR
                return _failure(req, f"download not finished after {total:g}s (server too slow)", started)
            except httpx.RemoteProtocolError as exc:
                if "transfer-encoding" not in str(exc).lower():
                    return _failure(req, describe_http_error(exc, self.timeout), started)
                return await self._fetch_http10(req, started, str(exc))
            except httpx.HTTPError as exc:
                return _failure(req, describe_http_error(exc, self.timeout), started)
            except (httpx.InvalidURL, ValueError) as exc:
                return _failure(req, f"invalid feed URL: {_root_message(exc)}", started)
            except (OSError, ssl.SSLError) as exc:  # raised outside httpx's mapping, rarely
                return _failure(req, f"network error: {_root_message(exc)}", started)
            except Exception as exc:
                # A bug (ours or a library's) for one odd response must not end the polling
                # pass; it is logged with its traceback and stored like any failure.
                log.exception("unexpected error while fetching", feed_id=req.feed_id, url=req.url)
                return _failure(req, f"unexpected error: {type(exc).__name__}: {_root_message(exc)}", started)

    async def _fetch_http10(self, req: FeedRequest, started: float, refusal: str) -> FetchOutcome:
        """The server's Transfer-Encoding header is malformed and httpx refuses the response:
        ask once more in HTTP/1.0, which has no chunked framing (monitor.sources.http10)."""
        from monitor.sources.http10 import get_http10

        headers = {"user-agent": self.user_agent, "accept": req.accept or ACCEPT, "accept-encoding": ACCEPT_ENCODING}
        headers.update(conditional_headers(req))
        why = f"server sent a malformed Transfer-Encoding header ({refusal})"
        try:
            response = await get_http10(
                req.url, headers, max_bytes=self.max_bytes, timeout=self.timeout * TOTAL_DEADLINE_FACTOR
            )
        except FetchFailed as exc:
            return _failure(req, f"{why}; reading it over HTTP/1.0 failed too: {exc}", started)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            return _failure(req, f"{why}; reading it over HTTP/1.0 failed too: {_root_message(exc)}", started)
        log.warning("malformed Transfer-Encoding; response read over HTTP/1.0", feed_id=req.feed_id, url=req.url)
        common = dict(
            feed_id=req.feed_id, requested_url=req.url, final_url=req.url, permanent_redirect=None,
            http_status=response.status, headers=response.headers,
        )
        if response.status == 304:
            return _not_modified(common, req, started)
        if response.status not in OK_STATUSES:
            reason = f"HTTP {response.status} {response.reason}".rstrip()
            return _response_failure(common, f"{reason} (read over HTTP/1.0: {why})", started)
        return _with_body(common, req, response.body, started)

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._host_slots.get(host)
        if slot is None:
            slot = self._host_slots[host] = asyncio.Semaphore(self.per_host)
        return slot

    async def _fetch(self, client: httpx.AsyncClient, req: FeedRequest, started: float) -> FetchOutcome:
        headers = conditional_headers(req)
        async with client.stream("GET", req.url, headers=headers, follow_redirects=req.follow_redirects) as response:
            final_url = str(response.url)
            moved_to = permanent_redirect_target(req.url, response)
            response_headers = {key.lower(): value for key, value in response.headers.items()}
            status = response.status_code
            common = dict(
                feed_id=req.feed_id,
                requested_url=req.url,
                final_url=final_url,
                permanent_redirect=moved_to,
                http_status=status,
                headers=response_headers,
            )
            if status == 304:
                # A 304 has no body, but httpcore closes a connection whose response was not
                # read to its end: reading the empty body keeps it for the next feed (a warm
                # pass otherwise opened a new connection per feed).
                await response.aread()
                return _not_modified(common, req, started)
            if status not in OK_STATUSES:
                retry_after = (
                    parse_retry_after(response_headers.get("retry-after")) if status in RETRY_AFTER_STATUSES else None
                )
                return _response_failure(common, describe_status(response), started, retry_after)
            try:
                body = await read_capped(response, self.max_bytes)
            except (FetchFailed, httpx.HTTPError) as exc:
                message = str(exc) if isinstance(exc, FetchFailed) else describe_http_error(exc, self.timeout)
                return _response_failure(common, message, started)
        return _with_body(common, req, body, started)


@functools.lru_cache(maxsize=4096)
def _host_key(url: str) -> str:
    """Scheme, host and port: what a connection (and the per-host limit) is for. Cached: a
    daemon asks for the same few thousand feed URLs every pass, and parsing one into an
    httpx.URL was 2 % of a warm pass (500 feeds, all 304)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return url
    return f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}".lower()


@functools.lru_cache(maxsize=4)
def verified_tls(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR when set:
    the arguments key the cache), made once per process: loading the CA bundle cost ~90 ms
    of CPU for every client, i.e. every polling pass of `monitor poll`."""
    return httpx.create_ssl_context(trust_env=True)


def conditional_headers(req: FeedRequest) -> dict[str, str]:
    headers = {"accept": req.accept} if req.accept else {}
    if req.etag:
        headers["if-none-match"] = req.etag
    if req.last_modified:
        headers["if-modified-since"] = req.last_modified
    return headers


def permanent_redirect_target(requested_url: str, response: httpx.Response) -> str | None:
    """The URL to store from now on: where the leading run of 301/308 hops ends. A temporary
    hop (302/303/307) stops the run, since the publisher may point back any time."""
    target: str | None = None
    for hop in response.history:
        if hop.status_code not in PERMANENT_REDIRECTS:
            break
        target = str(hop.next_request.url) if hop.next_request is not None else _location(hop)
    if target is None or target == requested_url:
        return None
    return target


def _location(hop: httpx.Response) -> str | None:
    location = hop.headers.get("location")
    return str(hop.url.join(location)) if location else None


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The decompressed body, refusing to hold more than `max_bytes` of it in memory."""
    declared = response.headers.get("content-length")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed(f"body exceeds max_bytes={max_bytes} (Content-Length {int(declared)})")
    parts: list[bytes] = []
    size = 0
    async for chunk in _decoded_chunks(response.aiter_raw(), encoding, max_bytes):
        size += len(chunk)
        if size > max_bytes:
            where = "after decompression" if encoding not in ("", "identity") else "while downloading"
            raise FetchFailed(f"body exceeds max_bytes={max_bytes} {where}")
        parts.append(chunk)
    return b"".join(parts)


async def _decoded_chunks(raw: AsyncIterator[bytes], encoding: str, max_bytes: int) -> AsyncIterator[bytes]:
    if encoding in ("", "identity"):
        async for chunk in raw:
            yield chunk
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FetchFailed(f"unsupported Content-Encoding {encoding!r}")
    inflater = _Inflater(encoding)
    async for chunk in raw:
        for piece in inflater.feed(chunk, max_bytes + 1):
            yield piece
    for piece in inflater.flush():
        yield piece


class _Inflater:
    """zlib inflation in bounded pieces. `deflate` is zlib-wrapped per RFC 9110, but some
    servers send raw deflate, so the first failure retries in raw mode."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._gzip = encoding in ("gzip", "x-gzip")
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes, limit: int) -> list[bytes]:
        pieces = []
        produced = 0
        while data:
            try:
                piece = self._obj.decompress(data, _INFLATE_CHUNK)
            except zlib.error as exc:
                if not self._gzip and not self._started:
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._started = True
                    continue
                raise FetchFailed(f"corrupt {self.encoding} body: {exc}") from exc
            self._started = True
            if piece:
                pieces.append(piece)
                produced += len(piece)
                if produced > limit:
                    return pieces  # the caller raises; no need to inflate the rest
            data = self._obj.unconsumed_tail
            if self._obj.eof:
                # Concatenated gzip members are legal; anything after them is ignored by browsers.
                data = self._obj.unused_data if self._gzip else b""
                if data:
                    self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16)
        return pieces

    def flush(self) -> list[bytes]:
        try:
            rest = self._obj.flush()
        except zlib.error as exc:
            raise FetchFailed(f"corrupt {self.encoding} body: {exc}") from exc
        return [rest] if rest else []


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait, from either form of Retry-After (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff_delay(
    consecutive_failures: int, base_interval: float, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds until the next attempt after `consecutive_failures` failures in a row:
    base × 2^(n-1), capped, with "equal jitter" (half fixed, half random) so feeds that failed
    together do not retry together, yet the delay still grows. A failing feed keeps being
    retried at about the cap for ever; a server's Retry-After is a floor, even above the cap."""
    exponent = min(max(consecutive_failures, 1) - 1, 62)
    ceiling = min(cap, base_interval * (2.0**exponent))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def describe_status(response: httpx.Response) -> str:
    reason = response.reason_phrase or _default_reason(response.status_code)
    text = f"HTTP {response.status_code} {reason}".rstrip()
    if 300 <= response.status_code < 400:
        text += " (redirect without a usable Location)"
    return text


def _default_reason(status: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def describe_http_error(exc: httpx.HTTPError, timeout: float) -> str:
    """A message an analyst can act on, naming the kind of failure, not the exception class."""
    match exc:
        case httpx.ConnectTimeout():
            return f"connect timeout after {timeout:g}s"
        case httpx.ReadTimeout():
            return f"read timeout after {timeout:g}s"
        case httpx.WriteTimeout():
            return f"write timeout after {timeout:g}s"
        case httpx.PoolTimeout():
            return f"no free connection after {timeout:g}s"
        case httpx.TooManyRedirects():
            return f"too many redirects (more than {MAX_REDIRECTS})"
        case httpx.ConnectError() if _is_tls_error(exc):
            return f"TLS error: {_root_message(exc)}"
        case httpx.ConnectError():
            return f"cannot connect: {_connect_failure(exc)}"
        case httpx.RemoteProtocolError():
            return f"server broke the HTTP protocol: {_root_message(exc)}"
        case httpx.DecodingError():
            return f"cannot decode the body: {_root_message(exc)}"
        case httpx.UnsupportedProtocol() | httpx.InvalidURL():
            return f"invalid feed URL: {_root_message(exc)}"
        case httpx.ReadError() | httpx.WriteError():
            return f"connection lost: {_root_message(exc)}"
    return f"{type(exc).__name__}: {_root_message(exc)}"


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "ssl" in str(exc).lower() or "certificate" in str(exc).lower()


def _connect_failure(exc: BaseException) -> str:
    """anyio reports "All connection attempts failed" and keeps the real reason in the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return f"DNS lookup failed ({seen.strerror or seen})"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    return _root_message(exc)


def _root_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _response_failure(
    common: dict[str, Any], error: str, started: float, retry_after: float | None = None
) -> FetchOutcome:
    """A failed fetch; `common` keeps what is known of the response (status, URL, headers)."""
    return FetchOutcome(
        **common,
        status="error",
        body=None,
        etag=None,
        last_modified=None,
        body_hash=None,
        retry_after=retry_after,
        error=error,
        elapsed=time.perf_counter() - started,
    )


def _not_modified(common: dict[str, Any], req: FeedRequest, started: float) -> FetchOutcome:
    """A 304: the validators the server sent, else the ones the request carried."""
    headers = common["headers"]
    return FetchOutcome(
        **common,
        status="not_modified",
        body=None,
        etag=headers.get("etag") or req.etag,
        last_modified=headers.get("last-modified") or req.last_modified,
        body_hash=req.last_body_hash,
        retry_after=None,
        error=None,
        elapsed=time.perf_counter() - started,
    )


def _with_body(common: dict[str, Any], req: FeedRequest, body: bytes, started: float) -> FetchOutcome:
    """A 200: "unchanged" (and no body) when it hashes like the last body stored."""
    headers = common["headers"]
    body_hash = hashlib.sha256(body).hexdigest()
    unchanged = req.last_body_hash is not None and body_hash == req.last_body_hash
    return FetchOutcome(
        **common,
        status="unchanged" if unchanged else "ok",
        body=None if unchanged else body,
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        body_hash=body_hash,
        retry_after=None,
        error=None,
        elapsed=time.perf_counter() - started,
    )


def failed_outcome(req: FeedRequest, error: str) -> FetchOutcome:
    """A fetch that did not happen (robots.txt said no): an error outcome like any other."""
    return _failure(req, error, time.perf_counter())


def _failure(req: FeedRequest, error: str, started: float) -> FetchOutcome:
    """A failure before any response (DNS, connection, timeout, bad URL)."""
    before_response = dict(
        feed_id=req.feed_id, requested_url=req.url, final_url=None, permanent_redirect=None, http_status=None, headers={}
    )
    return _response_failure(before_response, error, started)
