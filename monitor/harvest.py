"""One source's harvest: its document, the sitemaps an index lists, and the article pages of
entries with too little text, turned into candidates for the store.

The poller runs a harvest per claimed feed; `monitor sources check` runs one with nothing
known and nothing stored. CPU work goes to the worker pool through `work` (parse, extract,
classify: monitor.pipeline), database look-ups through `lookups`; here is only the order of
things and the politeness rules (robots.txt, same host, caps).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog

from monitor.dedup import canonical_url
from monitor.pipeline import ProcessedFeed, process_feed_body, process_pages
from monitor.sources.document import SourceSpec
from monitor.sources.fetch import FeedRequest, Fetcher, FetchOutcome, failed_outcome
from monitor.sources.pages import PageFetch, fetch_pages, order_for_fetching
from monitor.sources.parse import ParsedEntry
from monitor.sources.robots import RobotsPolicy
from monitor.candidate import Candidate

log = structlog.get_logger(__name__)

MAX_CHILD_SITEMAPS = 5  # of an index, the newest; an index is followed one level only
MAX_PAGE_ATTEMPTS = 3  # a page failing for a passing reason is tried at this many polls


class Lookups(Protocol):
    async def stored(self, feed_id: str, entries: Sequence[ParsedEntry]) -> set[str]: ...
    async def page_attempts(self, feed_id: str, guids: Sequence[str]) -> dict[str, int]: ...


Work = Callable[..., Awaitable[Any]]


class WorkFailed(Exception):
    """The CPU work of a harvest could not run (the worker pool keeps dying on it)."""


@dataclass(frozen=True)
class Visit:
    """One poll of one source: what to read, and which of its entries are stored already."""

    feed_id: str
    request: FeedRequest
    spec: SourceSpec
    fetched_at: datetime
    language: str | None
    known: frozenset[str]


@dataclass
class Harvest:
    """What one poll of a source produced."""

    outcome: FetchOutcome
    candidates: list[Candidate] = field(default_factory=list)
    entries: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    pages_fetched: int = 0
    deferred: int = 0  # entries left for a later poll (over the page cap, or a page to retry)
    page_failures: list[tuple[str, str]] = field(default_factory=list)  # (guid, error) to retry
    index: bool = False  # the document is a sitemap index

    @property
    def settled(self) -> bool:
        """Every entry of the document was dealt with: the next poll may be conditional."""
        return self.deferred == 0


@dataclass
class Harvester:
    fetcher: Fetcher
    robots: RobotsPolicy
    work: Work
    lookups: Lookups | None = None
    _validators: dict[str, FetchOutcome] = field(default_factory=dict)  # child sitemaps' last fetch

    async def harvest(self, visit: Visit) -> Harvest:
        outcome = await self._fetch_document(visit.request, visit.spec)
        harvest = Harvest(outcome)
        if outcome.status != "ok" or outcome.body is None:
            return harvest
        try:
            await self._read(harvest, visit)
        except WorkFailed as exc:  # nothing of this poll is stored; the source is read again
            harvest.candidates.clear()
            harvest.error, harvest.deferred = str(exc), harvest.deferred + 1
        return harvest

    async def _read(self, harvest: Harvest, visit: Visit) -> None:
        outcome = harvest.outcome
        assert outcome.body is not None
        processed = await self._process(visit, outcome.body, outcome.headers, outcome.final_url or visit.request.url)
        self._absorb(harvest, processed)
        pending = list(processed.pending)
        harvest.index = bool(processed.sitemaps)
        if processed.sitemaps and harvest.error is None:
            pending += await self._follow_index(harvest, processed.sitemaps, visit)
        pending = _richest_copies(harvest, pending)
        if pending:
            await self._read_pages(harvest, visit.feed_id, pending, visit.spec)

    async def _process(self, visit: Visit, body: bytes, headers: dict[str, str], base_url: str) -> ProcessedFeed:
        return await self.work(
            process_feed_body, body, headers, base_url, visit.fetched_at, visit.language, visit.known, visit.spec
        )

    async def _fetch_document(self, request: FeedRequest, spec: SourceSpec) -> FetchOutcome:
        """RSS is fetched as a subscription; sitemaps and listing pages are crawling, so
        robots.txt decides first."""
        if spec.type != "rss":
            verdict = await self.robots.check(request.url)
            if not verdict.allowed:
                return failed_outcome(request, f"not fetched: {verdict.reason}")
        return await self.fetcher.fetch(request)

    @staticmethod
    def _absorb(harvest: Harvest, processed: ProcessedFeed) -> None:
        harvest.candidates.extend(processed.candidates)
        harvest.entries += processed.entries
        harvest.warnings.extend(processed.warnings)
        if processed.error is not None and harvest.error is None:
            harvest.error = processed.error

    async def _follow_index(self, harvest: Harvest, sitemaps: Sequence[str], visit: Visit) -> list[ParsedEntry]:
        """Read the newest sitemaps of an index (on the index's own host), each fetched
        conditionally against its last fetch in this process."""
        request = visit.request
        host = _host(request.url)
        same_host = [url for url in sitemaps if _host(url) == host]
        if len(same_host) < len(sitemaps):
            harvest.warnings.append(f"{len(sitemaps) - len(same_host)} sitemaps on other hosts ignored")
        if len(same_host) > MAX_CHILD_SITEMAPS:
            harvest.warnings.append(f"sitemap index lists {len(same_host)} sitemaps; the newest {MAX_CHILD_SITEMAPS} read")
        pending: list[ParsedEntry] = []
        for url in same_host[:MAX_CHILD_SITEMAPS]:
            verdict = await self.robots.check(url)
            if not verdict.allowed:
                harvest.warnings.append(f"sitemap {url} not read: {verdict.reason}")
                continue
            last = self._validators.get(url)
            child_request = FeedRequest(
                feed_id=request.feed_id,
                url=url,
                etag=last.etag if last else None,
                last_modified=last.last_modified if last else None,
                last_body_hash=last.body_hash if last else None,
            )
            outcome = await self.fetcher.fetch(child_request)
            if outcome.error is not None:
                harvest.warnings.append(f"sitemap {url}: {outcome.error}")
                continue
            if outcome.status != "ok" or outcome.body is None:
                continue  # unchanged since this process last read it
            processed = await self._process(visit, outcome.body, outcome.headers, outcome.final_url or url)
            if processed.error is not None:
                harvest.warnings.append(f"sitemap {url}: {processed.error}")
                continue
            if processed.sitemaps:
                harvest.warnings.append(f"sitemap {url} is itself an index: not followed (one level only)")
            harvest.candidates.extend(processed.candidates)
            harvest.entries += processed.entries
            harvest.warnings.extend(f"sitemap {url}: {w}" for w in processed.warnings)
            pending.extend(processed.pending)
            if not processed.pending:
                self._validators[url] = outcome  # settled: the next fetch may be conditional
        return pending

    async def _read_pages(self, harvest: Harvest, feed_id: str, pending: list[ParsedEntry], spec: SourceSpec) -> None:
        """Fetch the newest pending pages up to the source's cap; the rest wait for the
        next poll (the source is then read again in full, not conditionally)."""
        if self.lookups is not None:
            stored = await self.lookups.stored(feed_id, pending)
            pending = [entry for entry in pending if entry.guid not in stored]
        ordered = order_for_fetching(_unique(pending))
        chosen, harvest.deferred = ordered[: spec.max_pages], max(len(ordered) - spec.max_pages, 0)
        if harvest.deferred:
            harvest.warnings.append(
                f"{harvest.deferred} article pages left for the next poll (max_pages = {spec.max_pages})"
            )
        pages = await fetch_pages(chosen, self.fetcher, self.robots, feed_id)
        harvest.pages_fetched = sum(page.requested for page in pages)
        ready = await self._settle_failures(harvest, feed_id, pages)
        if ready:
            candidates, warnings = await self.work(process_pages, ready, spec)
            harvest.candidates.extend(candidates)
            harvest.warnings.extend(warnings)

    async def _settle_failures(self, harvest: Harvest, feed_id: str, pages: list[PageFetch]) -> list[PageFetch]:
        """Pages that failed for a passing reason wait for the next poll, until their entry
        has had MAX_PAGE_ATTEMPTS tries; then it is stored with what its feed gave."""
        retry = [page for page in pages if page.transient]
        if not retry:
            return pages
        attempts = await self.lookups.page_attempts(feed_id, [p.entry.guid for p in retry]) if self.lookups else {}
        ready = [page for page in pages if not page.transient]
        for page in retry:
            if attempts.get(page.entry.guid, 0) + 1 >= MAX_PAGE_ATTEMPTS:
                ready.append(page)
            else:
                harvest.page_failures.append((page.entry.guid, page.error or "failed"))
                harvest.deferred += 1
        if harvest.page_failures:
            harvest.warnings.append(f"{len(harvest.page_failures)} article pages failed and will be tried again")
        return ready


def _richest_copies(harvest: Harvest, pending: list[ParsedEntry]) -> list[ParsedEntry]:
    """An index may list one article in two sitemaps: a news sitemap with its title, an
    archive with only its URL. The copy that says more decides: a titled copy that concerns
    no watch keeps its untitled twin from fetching the page, and a copy waiting for its page
    replaces a page-less twin (which would otherwise be stored first, making the fetched
    text a duplicate)."""
    if not pending or not harvest.candidates:
        return pending
    ready = {c.entry.guid: c for c in harvest.candidates}
    kept: list[ParsedEntry] = []
    for entry in pending:
        twin = ready.get(entry.guid)
        if twin is None or _says(entry) >= _says(twin.entry):
            kept.append(entry)
            ready.pop(entry.guid, None)
    harvest.candidates[:] = [c for c in harvest.candidates if ready.get(c.entry.guid) is c]
    return kept


def _says(entry: ParsedEntry) -> int:
    return len(entry.title) + len(entry.summary)


def _unique(entries: Sequence[ParsedEntry]) -> list[ParsedEntry]:
    """One fetch per article URL, even when a listing links it twice under two guids."""
    seen: set[str] = set()
    kept = []
    for entry in entries:
        key = canonical_url(entry.link) if entry.link else entry.guid
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return kept


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host
