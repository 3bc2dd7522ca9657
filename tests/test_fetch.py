"""Fetcher against a real HTTP server on loopback: conditional GET, compression, caps,
timeouts, redirects, Retry-After; and the fetch → parse path for Arabic encodings."""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.sources.fetch import (
    MAX_RETRY_AFTER,
    FeedRequest,
    Fetcher,
    FetchOutcome,
    backoff_delay,
    parse_retry_after,
)
from monitor.sources.parse import parse_feed
from tests.feedserver import FeedServer, feed_server, peak_overlap  # noqa: F401  (fixture)

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
RSS = (FEEDS / "rss20_alanba.xml").read_bytes()
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

def fetcher(**overrides: object) -> Fetcher:
    options: dict = dict(concurrency=8, per_host=2, timeout=5.0, max_bytes=1_000_000, user_agent="dm-test/1")
    options.update(overrides)
    return Fetcher(**options)

def gzip_bomb(megabytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1 << 20)
    return b"".join([compressor.compress(zeros) for _ in range(megabytes)] + [compressor.flush()])


async def fetch_once(url: str, **request: object) -> FetchOutcome:
    async with fetcher() as client:
        return await client.fetch(FeedRequest(feed_id="f", url=url, **request))

# -- plain, conditional, unchanged ----------------------------------------------------------

async def test_ok_fetch_returns_body_validators_and_lowercase_headers(feed_server: FeedServer) -> None:
    feed_server.route("/rss", RSS, etag='"v1"', last_modified="Mon, 23 Nov 2026 07:00:00 GMT")
    outcome = await fetch_once(feed_server.url("/rss"))
    assert outcome.status == "ok" and outcome.error is None
    assert outcome.http_status == 200
    assert outcome.body == RSS
    assert outcome.body_hash == hashlib.sha256(RSS).hexdigest()
    assert outcome.etag == '"v1"'
    assert outcome.last_modified == "Mon, 23 Nov 2026 07:00:00 GMT"
    assert outcome.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert all(key == key.lower() for key in outcome.headers)
    assert outcome.final_url == feed_server.url("/rss") and outcome.permanent_redirect is None
    sent = feed_server.requests_for("/rss")[0].headers
    assert sent["user-agent"] == "dm-test/1"
    assert sent["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in sent and "if-modified-since" not in sent

async def test_matching_etag_gets_304_and_no_body(feed_server: FeedServer) -> None:
    feed_server.route("/rss", RSS, etag='"v1"')
    outcome = await fetch_once(feed_server.url("/rss"), etag='"v1"', last_body_hash="abc")
    assert outcome.status == "not_modified" and outcome.http_status == 304
    assert outcome.body is None and outcome.error is None
    assert outcome.etag == '"v1"' and outcome.body_hash == "abc"
    assert feed_server.requests_for("/rss")[0].headers["if-none-match"] == '"v1"'

async def test_304s_keep_the_connection_for_the_next_request(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm pass is a 304 per feed: each must leave its connection open for the next
    (httpcore closes a connection whose response was not read to its end)."""
    from tests import feedserver

    connections = []
    opened = feedserver._Handler.setup

    def counting(handler: feedserver._Handler) -> None:
        connections.append(handler.client_address)
        opened(handler)

    monkeypatch.setattr(feedserver._Handler, "setup", counting)
    feed_server.route("/rss", RSS, etag='"v1"')
    async with fetcher(concurrency=1, per_host=1) as client:
        outcomes = [await client.fetch(FeedRequest(feed_id="f", url=feed_server.url("/rss"), etag='"v1"')) for _ in range(5)]
    assert [outcome.status for outcome in outcomes] == ["not_modified"] * 5
    assert feed_server.hits("/rss") == 5
    assert len(connections) == 1


async def test_a_pooled_connection_the_server_closed_is_replaced_not_reused() -> None:
    """The fetcher's transport (monitor.sources.transport) answers httpcore's "has the server
    closed this idle connection?" from the socket it remembers: a keep-alive connection the
    server has since closed must be dropped before a request is sent on it (sent on it, the
    request would fail with "server disconnected"), and a live one reused."""
    connections: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while (await reader.readuntil(b"\r\n\r\n")).startswith(b"GET"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/rss+xml\r\ncontent-length: %d\r\n\r\n%s" % (len(RSS), RSS))
            await writer.drain()
            if len(connections) == 1:
                writer.close()  # the server ends the first keep-alive connection once idle
                return

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/rss"
    try:
        async with fetcher(concurrency=1, per_host=1) as client:
            first = await client.fetch(FeedRequest(feed_id="f", url=url))
            await asyncio.sleep(0.2)  # the server's FIN arrives: the pooled connection is readable
            second = await client.fetch(FeedRequest(feed_id="f", url=url))
            third = await client.fetch(FeedRequest(feed_id="f", url=url))
    finally:
        server.close()
    assert [o.status for o in (first, second, third)] == ["ok", "ok", "ok"], [o.error for o in (first, second, third)]
    assert len(connections) == 2  # a new connection after the close; the live one reused


async def test_stale_etag_gets_the_new_body(feed_server: FeedServer) -> None:
    feed_server.route("/rss", RSS, etag='"v2"')
    outcome = await fetch_once(feed_server.url("/rss"), etag='"v1"')
    assert outcome.status == "ok" and outcome.body == RSS and outcome.etag == '"v2"'

async def test_last_modified_is_sent_as_if_modified_since(feed_server: FeedServer) -> None:
    stamp = "Mon, 23 Nov 2026 07:00:00 GMT"
    feed_server.route("/rss", RSS, last_modified=stamp)
    outcome = await fetch_once(feed_server.url("/rss"), last_modified=stamp)
    assert outcome.status == "not_modified"
    assert outcome.last_modified == stamp
    assert feed_server.requests_for("/rss")[0].headers["if-modified-since"] == stamp

async def test_identical_body_without_validators_is_unchanged(feed_server: FeedServer) -> None:
    feed_server.route("/rss", RSS)
    outcome = await fetch_once(feed_server.url("/rss"), last_body_hash=hashlib.sha256(RSS).hexdigest())
    assert outcome.status == "unchanged" and outcome.http_status == 200
    assert outcome.body is None and outcome.body_hash == hashlib.sha256(RSS).hexdigest()
    other = await fetch_once(feed_server.url("/rss"), last_body_hash=hashlib.sha256(b"older").hexdigest())
    assert other.status == "ok" and other.body == RSS

# -- compression and size caps --------------------------------------------------------------

async def test_gzip_body_is_decompressed(feed_server: FeedServer) -> None:
    feed_server.route("/rss", RSS, gzip=True)
    outcome = await fetch_once(feed_server.url("/rss"))
    assert outcome.headers["content-encoding"] == "gzip"
    assert outcome.status == "ok" and outcome.body == RSS

@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib-deflate", "raw-deflate"])
async def test_deflate_body_is_decompressed(feed_server: FeedServer, wbits: int) -> None:
    compressor = zlib.compressobj(wbits=wbits)
    body = compressor.compress(RSS) + compressor.flush()
    feed_server.route("/rss", body, headers={"content-encoding": "deflate"})
    outcome = await fetch_once(feed_server.url("/rss"))
    assert outcome.status == "ok" and outcome.body == RSS

async def test_corrupt_gzip_is_a_clear_error(feed_server: FeedServer) -> None:
    feed_server.route("/rss", b"this is not gzip at all", headers={"content-encoding": "gzip"})
    outcome = await fetch_once(feed_server.url("/rss"))
    assert outcome.status == "error" and outcome.http_status == 200
    assert outcome.error.startswith("corrupt gzip body")

async def test_oversized_body_with_content_length_is_refused(feed_server: FeedServer) -> None:
    feed_server.route("/big", b"x" * 2_000_000)
    outcome = await fetch_once(feed_server.url("/big"))
    assert outcome.status == "error" and outcome.body is None
    assert outcome.error == "body exceeds max_bytes=1000000 (Content-Length 2000000)"

async def test_oversized_chunked_body_is_cut_while_streaming(feed_server: FeedServer) -> None:
    feed_server.route("/big", b"x" * 2_000_000, chunked=True)
    outcome = await fetch_once(feed_server.url("/big"))
    assert outcome.status == "error" and outcome.http_status == 200
    assert outcome.error == "body exceeds max_bytes=1000000 while downloading"

async def test_body_at_the_cap_is_accepted(feed_server: FeedServer) -> None:
    feed_server.route("/exact", b"y" * 1_000_000, chunked=True, gzip=True)
    outcome = await fetch_once(feed_server.url("/exact"))
    assert outcome.status == "ok" and len(outcome.body) == 1_000_000

async def test_gzip_bomb_is_cut_after_decompression_with_bounded_memory(feed_server: FeedServer) -> None:
    bomb = gzip_bomb(200)  # 200 MB of zeros, ~200 KB on the wire
    assert len(bomb) < 1_000_000
    feed_server.route("/bomb", bomb, headers={"content-encoding": "gzip"})
    tracemalloc.start()
    try:
        outcome = await fetch_once(feed_server.url("/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.status == "error"
    assert outcome.error == "body exceeds max_bytes=1000000 after decompression"
    # httpx's own decoder would inflate a whole 64 KiB network chunk (~64 MB of zeros) at once.
    assert peak < 12_000_000, f"peak traced memory {peak} bytes"

# -- HTTP errors, Retry-After, timeouts -----------------------------------------------------

async def test_500_is_a_clear_error_without_retry_after(feed_server: FeedServer) -> None:
    feed_server.route("/rss", b"oops", status=500, retry_after="30")
    outcome = await fetch_once(feed_server.url("/rss"))
    assert outcome.status == "error" and outcome.http_status == 500
    assert outcome.error == "HTTP 500 Internal Server Error"
    assert outcome.retry_after is None

async def test_429_with_delta_retry_after(feed_server: FeedServer) -> None:
    feed_server.route("/rss", b"slow down", status=429, retry_after="120")
    outcome = await fetch_once(feed_server.url("/rss"))
    assert outcome.status == "error" and outcome.http_status == 429
    assert outcome.error == "HTTP 429 Too Many Requests"
    assert outcome.retry_after == 120.0

async def test_503_with_http_date_retry_after(feed_server: FeedServer) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    feed_server.route("/rss", b"maintenance", status=503, retry_after=format_datetime(when, usegmt=True))
    outcome = await fetch_once(feed_server.url("/rss"))
    assert outcome.error == "HTTP 503 Service Unavailable"
    assert 570 <= outcome.retry_after <= 600

async def test_fail_twice_then_succeed(feed_server: FeedServer) -> None:
    feed_server.route("/flaky", RSS, fail_times=2, fail_status=503, retry_after="5")
    async with fetcher() as client:
        outcomes = [await client.fetch(FeedRequest("f", feed_server.url("/flaky"))) for _ in range(3)]
    assert [o.http_status for o in outcomes] == [503, 503, 200]
    assert [o.retry_after for o in outcomes] == [5.0, 5.0, None]
    assert outcomes[2].status == "ok" and outcomes[2].body == RSS

async def test_slow_server_hits_the_read_timeout(feed_server: FeedServer) -> None:
    feed_server.route("/slow", RSS, delay=5)
    async with fetcher(timeout=0.5) as client:
        outcome = await client.fetch(FeedRequest("f", feed_server.url("/slow")))
    assert outcome.status == "error" and outcome.http_status is None
    assert outcome.error == "read timeout after 0.5s"
    assert outcome.elapsed < 4

async def test_dripping_body_hits_the_total_deadline(feed_server: FeedServer) -> None:
    # Each 1 KiB arrives well within the read timeout, but the whole body never would.
    feed_server.route("/drip", b"z" * 40_000, drip=0.2)
    async with fetcher(timeout=0.5) as client:
        outcome = await client.fetch(FeedRequest("f", feed_server.url("/drip")))
    assert outcome.status == "error"
    assert outcome.error == "download not finished after 1.5s (server too slow)"
    assert outcome.elapsed < 4

async def test_refused_connection_is_a_clear_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = await fetch_once(f"http://127.0.0.1:{port}/rss")
    assert outcome.status == "error" and outcome.http_status is None
    assert outcome.error == "cannot connect: connection refused"

@pytest.mark.parametrize("url", ["ftp://example.invalid/feed", "http:///no-host", "not a url"])
async def test_invalid_url_does_not_raise(url: str) -> None:
    outcome = await fetch_once(url)
    assert outcome.status == "error" and outcome.error.startswith("invalid feed URL"), outcome.error

# -- redirects -------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 308])
async def test_permanent_redirect_is_reported(feed_server: FeedServer, status: int) -> None:
    feed_server.redirect("/old", "/new", status=status)
    feed_server.route("/new", RSS)
    outcome = await fetch_once(feed_server.url("/old"))
    assert outcome.status == "ok" and outcome.body == RSS
    assert outcome.requested_url == feed_server.url("/old")
    assert outcome.final_url == feed_server.url("/new")
    assert outcome.permanent_redirect == feed_server.url("/new")

async def test_temporary_redirect_is_followed_but_not_reported(feed_server: FeedServer) -> None:
    feed_server.redirect("/old", "/new", status=302)
    feed_server.route("/new", RSS)
    outcome = await fetch_once(feed_server.url("/old"))
    assert outcome.status == "ok" and outcome.final_url == feed_server.url("/new")
    assert outcome.permanent_redirect is None

async def test_permanent_then_temporary_stores_the_permanent_hop(feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b", status=301)
    feed_server.redirect("/b", "/c", status=302)
    feed_server.route("/c", RSS)
    outcome = await fetch_once(feed_server.url("/a"))
    assert outcome.final_url == feed_server.url("/c")
    assert outcome.permanent_redirect == feed_server.url("/b")

async def test_redirect_loop_is_a_clear_error(feed_server: FeedServer) -> None:
    feed_server.redirect("/loop", "/loop", status=302)
    outcome = await fetch_once(feed_server.url("/loop"))
    assert outcome.status == "error" and outcome.error == "too many redirects (more than 10)"

async def test_conditional_headers_survive_a_redirect(feed_server: FeedServer) -> None:
    feed_server.redirect("/old", "/new", status=301)
    feed_server.route("/new", RSS, etag='"v1"')
    outcome = await fetch_once(feed_server.url("/old"), etag='"v1"')
    assert outcome.status == "not_modified"
    assert outcome.permanent_redirect == feed_server.url("/new")

# -- concurrency ----------------------------------------------------------------------------

async def test_per_host_limit(feed_server: FeedServer) -> None:
    for i in range(6):
        feed_server.route(f"/f{i}", RSS, delay=0.3)
    async with fetcher(concurrency=10, per_host=2) as client:
        outcomes = await asyncio.gather(*(client.fetch(FeedRequest(f"f{i}", feed_server.url(f"/f{i}"))) for i in range(6)))
    assert all(o.status == "ok" for o in outcomes)
    assert feed_server.peak_concurrency() == 2

@pytest.mark.parametrize(("concurrency", "feeds_per_host"), [(2, 2), (6, 4), (9, 4)])
async def test_overall_limit_across_hosts(concurrency: int, feeds_per_host: int) -> None:
    """Also now that the slots are lanes, each an httpx client of its own."""
    servers = [FeedServer().start() for _ in range(3)]
    try:
        requests = []
        for n, server in enumerate(servers):
            for i in range(feeds_per_host):
                server.route(f"/f{i}", RSS, delay=0.3)
                requests.append(FeedRequest(f"s{n}f{i}", server.url(f"/f{i}")))
        async with fetcher(concurrency=concurrency, per_host=5) as client:
            outcomes = await asyncio.gather(*(client.fetch(r) for r in requests))
        assert all(o.status == "ok" for o in outcomes)

        everything = [interval for server in servers for interval in server.intervals]
        assert peak_overlap(everything) == min(concurrency, len(requests))
    finally:
        for server in servers:
            server.close()

async def test_a_host_gets_back_the_lane_holding_its_connection() -> None:
    # Two lanes, two hosts, polled in turn: each request finds the lane whose connection went
    # to its host. Handing out the lane freed last instead would close and reopen a
    # connection at every request.
    servers = [FeedServer().start() for _ in range(2)]
    try:
        for server in servers:
            server.route("/feed", RSS)
        async with fetcher(concurrency=2, per_host=2) as client:
            for _ in range(4):
                for server in servers:
                    assert (await client.fetch(FeedRequest("f", server.url("/feed")))).status == "ok"
        for server in servers:
            assert len(server.requests) == 4
            assert len({request.peer for request in server.requests}) == 1
    finally:
        for server in servers:
            server.close()


# -- fetch → parse with Arabic encodings ----------------------------------------------------

@pytest.mark.parametrize(
    ("fixture", "content_type"),
    [
        ("rss_cp1256_prolog.xml", "application/rss+xml"),
        ("rss_cp1256_undeclared.xml", "application/rss+xml; charset=windows-1256"),
        ("rss_cp1256_undeclared.xml", "application/rss+xml"),
        ("rss_cp1256_undeclared.xml", "text/xml"),
    ],
    ids=["prolog", "http-header-only", "undeclared", "undeclared-text-xml"],
)
async def test_windows_1256_feed_through_fetch_and_parse(
    feed_server: FeedServer, fixture: str, content_type: str
) -> None:
    body = (FEEDS / fixture).read_bytes()
    assert "الحوار".encode() not in body  # really windows-1256 on the wire, not UTF-8
    feed_server.route("/feed", body, content_type=content_type, gzip=True)
    outcome = await fetch_once(feed_server.url("/feed"))
    parsed = parse_feed(outcome.body, outcome.headers, base_url=outcome.final_url, fetched_at=NOW)
    assert parsed.error is None
    assert parsed.title == "الرأي - أخبار الكويت"
    assert [e.title for e in parsed.entries][0] == (
        "الخالد يبحث مع السفيرة الأمريكية التحضيرات لجولة الحوار الاستراتيجي المقبلة"
    )
    assert all("Ø" not in e.summary and "Ù" not in e.summary for e in parsed.entries)
    if "charset" in content_type or "prolog" in fixture:
        assert not any("Encoding" in w for w in parsed.warnings)

async def test_html_page_served_as_200_is_a_parse_error(feed_server: FeedServer) -> None:
    feed_server.route("/rss", (FEEDS / "html_page.html").read_bytes(), content_type="text/html; charset=utf-8")
    outcome = await fetch_once(feed_server.url("/rss"))
    assert outcome.status == "ok"
    parsed = parse_feed(outcome.body, outcome.headers, base_url=outcome.final_url, fetched_at=NOW)
    assert parsed.entries == ()
    assert parsed.error == "not a feed: the server sent an HTML page (text/html) instead of RSS/Atom"

async def test_relative_links_resolve_against_the_final_url(feed_server: FeedServer) -> None:
    feed_server.redirect("/old/rss", "/politics/rss.xml", status=301)
    feed_server.route("/politics/rss.xml", (FEEDS / "rss_relative_links.xml").read_bytes())
    outcome = await fetch_once(feed_server.url("/old/rss"))
    parsed = parse_feed(outcome.body, outcome.headers, base_url=outcome.final_url, fetched_at=NOW)
    assert [e.link for e in parsed.entries] == [
        feed_server.url("/article/44001"),
        feed_server.url("/politics/article/44002?lang=ar"),
        "http://cdn.aljarida.com/article/44003",
    ]

# -- backoff and Retry-After parsing -------------------------------------------------------

def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    rng = random.Random(7)
    for failures in range(1, 8):
        ceiling = 60.0 * 2 ** (failures - 1)
        for _ in range(50):
            delay = backoff_delay(failures, base_interval=60, cap=1e9, retry_after=None, rng=rng)
            assert ceiling / 2 <= delay <= ceiling

def test_backoff_is_capped_for_ever() -> None:
    rng = random.Random(1)
    for failures in (20, 1_000, 10**9):
        delay = backoff_delay(failures, base_interval=60, cap=3600, retry_after=None, rng=rng)
        assert 1800 <= delay <= 3600

def test_backoff_jitter_spreads_feeds_apart() -> None:
    delays = {backoff_delay(5, 60, 3600, None, random.Random(seed)) for seed in range(20)}
    assert len(delays) == 20

def test_backoff_never_undercuts_retry_after() -> None:
    rng = random.Random(3)
    assert backoff_delay(1, 60, 3600, retry_after=900, rng=rng) == 900
    assert backoff_delay(1, 60, 3600, retry_after=7200, rng=rng) == 7200  # the server's word beats the cap
    assert backoff_delay(10, 60, 3600, retry_after=5, rng=rng) >= 1800

def test_backoff_treats_zero_failures_as_the_first() -> None:
    assert 30 <= backoff_delay(0, 60, 3600, None, random.Random(0)) <= 60

def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Mon, 23 Nov 2026 08:05:00 GMT", now) == 300.0
    assert parse_retry_after("Mon, 23 Nov 2026 07:00:00 GMT", now) == 0.0  # already past
    assert parse_retry_after("Fri, 31 Dec 2100 23:59:59 GMT", now) == MAX_RETRY_AFTER
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after(None, now) is None


def test_the_tls_context_is_made_once_per_certificate_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the CA bundle costs ~90 ms of CPU: every polling pass's client shares one
    context, and SSL_CERT_FILE (trust_env) still decides which CAs it trusts."""
    import certifi

    from monitor.sources.fetch import verified_tls

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = verified_tls(None, None)
    assert verified_tls(None, None) is default
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    chosen = verified_tls(certifi.where(), None)
    assert chosen is not default and chosen.cert_store_stats()["x509_ca"] > 0
