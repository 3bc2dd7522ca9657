"""What one source's URL serves, read into entries: an RSS/Atom feed, a sitemap, or an HTML
listing page. Every kind yields the same ParsedEntry, so classify → dedup → store never
know where an entry came from (the stored article does: `source_type`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from monitor.sources.listing import parse_listing
from monitor.sources.parse import ParsedEntry, parse_feed
from monitor.sources.sitemap import parse_sitemap

if TYPE_CHECKING:
    from monitor.config import FeedConfig

SourceType = Literal["rss", "sitemap", "html"]
FullTextMode = Literal["never", "candidates", "always"]


@dataclass(frozen=True)
class SourceSpec:
    """How to read one source (from its [[feeds]] entry); small and picklable for workers."""

    type: SourceType = "rss"
    include: str | None = None
    links: str | None = None
    text: str | None = None
    full_text: FullTextMode = "candidates"
    max_pages: int = 30
    max_age: timedelta = timedelta(days=7)

    @cached_property
    def include_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.include) if self.include else None


def source_spec(feed: FeedConfig) -> SourceSpec:
    """The reading instructions of a [[feeds]] entry."""
    return SourceSpec(
        type=feed.type,
        include=feed.include,
        links=feed.links,
        text=feed.text,
        full_text=feed.full_text,
        max_pages=feed.max_pages,
        max_age=feed.max_age,
    )


@dataclass(frozen=True)
class SourceDocument:
    entries: tuple[ParsedEntry, ...]
    warnings: tuple[str, ...]
    error: str | None
    sitemaps: tuple[str, ...] = ()  # a sitemap index: the sitemaps it lists


def read_document(
    spec: SourceSpec,
    body: bytes,
    headers: Mapping[str, str],
    *,
    base_url: str,
    fetched_at: datetime,
    language: str | None,
) -> SourceDocument:
    if spec.type == "sitemap":
        sitemap = parse_sitemap(
            body,
            base_url=base_url,
            fetched_at=fetched_at,
            default_language=language,
            include=spec.include_pattern,
            max_age=spec.max_age,
        )
        return SourceDocument(sitemap.entries, sitemap.warnings, sitemap.error, sitemap.sitemaps)
    if spec.type == "html":
        assert spec.links is not None, "config validation requires `links` for html sources"
        listing = parse_listing(
            body,
            headers,
            base_url=base_url,
            fetched_at=fetched_at,
            default_language=language,
            selector=spec.links,
            include=spec.include_pattern,
        )
        return SourceDocument(listing.entries, listing.warnings, listing.error)
    feed = parse_feed(body, headers, base_url=base_url, fetched_at=fetched_at, default_language=language)
    return SourceDocument(feed.entries, feed.warnings, feed.error)
