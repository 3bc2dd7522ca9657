"""robots.txt, honoured for every page the monitor crawls (sitemaps, listing pages, article
pages), read with Protego (longest match wins, `*` and `$` wildcards, Allow/Disallow in any
order: urllib.robotparser takes the first matching line and gets these wrong).

One robots.txt per scheme+host, fetched through the poller's own Fetcher (same limits,
User-Agent and per-host politeness) and kept for a day. What an unusable robots.txt means
follows RFC 9309: 4xx (none there) allows everything; 5xx disallows everything for a
while (the site is in trouble); a robots.txt that does not arrive in time allows
everything, with a warning, so one slow host cannot hold its articles back for ever.
RSS/Atom feeds are subscriptions, not crawling: their own URL is not checked.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from protego import Protego

from monitor.sources.fetch import FeedRequest, Fetcher

log = structlog.get_logger(__name__)

KEEP_SECONDS = 24 * 3600.0
RETRY_SECONDS = 600.0  # after a 5xx or a timeout
MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309: parse at least 500 KiB; what follows is ignored


@dataclass(frozen=True)
class RobotsVerdict:
    allowed: bool
    reason: str  # what robots.txt said, for `monitor sources check` and page errors
    transient: bool = False  # disallowed only while the site's robots.txt fails (5xx)


@dataclass
class _HostRules:
    parser: Protego | None  # None: no usable rules
    allow_all: bool
    note: str
    expires: float


class RobotsPolicy:
    """Answers "may this URL be fetched?" for one poller, caching each host's rules."""

    def __init__(self, fetcher: Fetcher, user_agent: str, wait: float = 10.0) -> None:
        self.fetcher = fetcher
        self.agent = user_agent.split("/", 1)[0].strip() or user_agent
        self.wait = wait
        self._hosts: dict[str, _HostRules] = {}
        self._loading: dict[str, asyncio.Task[_HostRules]] = {}

    async def check(self, url: str) -> RobotsVerdict:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        rules = await self._rules(origin)
        if rules.parser is None:
            return RobotsVerdict(rules.allow_all, rules.note, transient=not rules.allow_all)
        if rules.parser.can_fetch(url, self.agent):
            return RobotsVerdict(True, f"allowed by {origin}/robots.txt")
        return RobotsVerdict(False, f"disallowed by {origin}/robots.txt")

    async def _rules(self, origin: str) -> _HostRules:
        cached = self._hosts.get(origin)
        if cached is not None and cached.expires > time.monotonic():
            return cached
        task = self._loading.get(origin)
        if task is None:  # one fetch per host, however many pages wait for it
            task = self._loading[origin] = asyncio.ensure_future(self._load(origin))
            task.add_done_callback(lambda _: self._loading.pop(origin, None))
        rules = await asyncio.shield(task)
        self._hosts[origin] = rules
        return rules

    async def _load(self, origin: str) -> _HostRules:
        url = f"{origin}/robots.txt"
        now = time.monotonic()
        try:
            async with asyncio.timeout(self.wait):
                outcome = await self.fetcher.fetch(FeedRequest(feed_id="robots.txt", url=url, accept="text/plain"))
        except TimeoutError:
            log.warning("robots.txt did not arrive in time; treated as allowing everything", url=url, wait=self.wait)
            return _HostRules(None, True, f"{url} timed out after {self.wait:g}s: treated as allowed", now + RETRY_SECONDS)
        status = outcome.http_status
        if outcome.status == "ok" and outcome.body is not None:
            text = outcome.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
            return _HostRules(Protego.parse(text), True, f"{url} read", now + KEEP_SECONDS)
        if status is not None and 400 <= status < 500:
            return _HostRules(None, True, f"{url} answered HTTP {status}: no rules, all allowed", now + KEEP_SECONDS)
        if status is not None and status >= 500:
            log.warning("robots.txt answered a server error; the host's pages wait", url=url, http_status=status)
            return _HostRules(None, False, f"{url} answered HTTP {status}: host not crawled for now", now + RETRY_SECONDS)
        log.warning("robots.txt unreachable; treated as allowing everything", url=url, error=outcome.error)
        return _HostRules(None, True, f"{url} unreachable ({outcome.error}): treated as allowed", now + RETRY_SECONDS)
