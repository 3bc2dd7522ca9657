"""Fetching the article pages of a source's new entries: politely (robots.txt, the fetcher's
per-host limit, a cap per poll) and never twice (the poller asks only for entries that are
not stored yet, and a stored entry is never fetched again).

A page that fails for a reason that may pass (timeout, connection, 5xx, 429, robots.txt in
trouble) is `transient`: its entry waits for the next poll. Any other failure (404, a login
wall's 401/403, a page too large, a redirect into a path robots.txt disallows, a redirect
loop) is final: the entry is stored with what its feed gave and the page's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from monitor.sources.fetch import FeedRequest, Fetcher
from monitor.sources.parse import ParsedEntry
from monitor.sources.robots import RobotsPolicy

PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class PageFetch:
    """One article page as fetched for one entry: the body, or why there is none."""

    entry: ParsedEntry
    url: str
    fetched_at: datetime
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    transient: bool = False
    requested: bool = True  # False: robots.txt said no, the page was never asked for


def order_for_fetching(entries: Sequence[ParsedEntry]) -> list[ParsedEntry]:
    """Newest first, so a capped poll fetches today's news before a backlog; entries without
    a date of their own (listing pages) keep the page's order, which is newest first."""
    dated = [e for e in entries if not e.published_is_fallback]
    undated = [e for e in entries if e.published_is_fallback]
    return sorted(dated, key=lambda e: e.published, reverse=True) + undated


async def fetch_pages(
    entries: Sequence[ParsedEntry], fetcher: Fetcher, robots: RobotsPolicy, feed_id: str
) -> list[PageFetch]:
    return list(await asyncio.gather(*(fetch_page(entry, fetcher, robots, feed_id) for entry in entries)))


async def fetch_page(entry: ParsedEntry, fetcher: Fetcher, robots: RobotsPolicy, feed_id: str) -> PageFetch:
    """Fetch one article page, following redirects one hop at a time so that robots.txt of
    every host on the way is asked first (aggregators such as feed proxies redirect to the
    publisher's page)."""
    assert entry.link is not None, "only entries with a link have a page"
    url = entry.link
    for hop in range(MAX_REDIRECTS + 1):
        verdict = await robots.check(url)
        if not verdict.allowed:
            return PageFetch(entry, url, datetime.now(UTC), error=verdict.reason, transient=verdict.transient, requested=hop > 0)
        fetched_at = datetime.now(UTC)
        outcome = await fetcher.fetch(FeedRequest(feed_id=feed_id, url=url, accept=PAGE_ACCEPT, follow_redirects=False))
        target = _redirect_target(url, outcome.http_status, outcome.headers)
        if target is None:
            break
        url = target
    else:
        return PageFetch(entry, url, datetime.now(UTC), error=f"article page: more than {MAX_REDIRECTS} redirects")
    if outcome.status != "ok" or outcome.body is None:
        status, error = outcome.http_status, outcome.error or "no body"
        # No status: the network failed (may pass), unless the page was simply too large.
        transient = (status is None or status in TRANSIENT_STATUSES) and "body exceeds" not in error
        return PageFetch(entry, url, fetched_at, error=f"article page: {error}", transient=transient)
    return PageFetch(entry, url, fetched_at, body=outcome.body, headers=outcome.headers)


def _redirect_target(url: str, status: int | None, headers: dict[str, str]) -> str | None:
    """Where a 3xx points, as an absolute http(s) URL; None for anything else."""
    if status not in REDIRECT_STATUSES or not headers.get("location"):
        return None
    target = urljoin(url, headers["location"].strip())
    return target if urlsplit(target).scheme in ("http", "https") else None
