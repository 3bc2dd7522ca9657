"""`monitor sources check ID`: read one source once, the way a poll would, and show what it
would store (titles, URLs, dates, the start of each extracted text, what robots.txt allowed),
storing nothing. Made for a user with internet access verifying a source in one command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from monitor.config import Config, FeedConfig
from monitor.harvest import Harvest, Harvester, Visit
from monitor.models import utcnow
from monitor.pipeline import init_worker
from monitor.sources.document import source_spec
from monitor.sources.fetch import FeedRequest, Fetcher
from monitor.sources.robots import RobotsPolicy
from monitor.candidate import Candidate

EXCERPT = 200


@dataclass(frozen=True)
class CheckedEntry:
    candidate: Candidate
    robots: str | None  # what robots.txt said about its page, when the page was asked for


@dataclass(frozen=True)
class SourceCheck:
    feed: FeedConfig
    harvest: Harvest
    source_robots: str | None
    entries: tuple[CheckedEntry, ...]

    @property
    def ok(self) -> bool:
        return self.harvest.outcome.error is None and self.harvest.error is None


def check_source(config: Config, feed: FeedConfig) -> SourceCheck:
    return asyncio.run(_check(config, feed))


async def _check(config: Config, feed: FeedConfig) -> SourceCheck:
    polling = config.polling
    spec = source_spec(feed)
    init_worker(config.rules, config.dedup)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="check") as pool:

        async def work(function: Callable[..., Any], *args: Any) -> Any:
            return await loop.run_in_executor(pool, function, *args)

        async with Fetcher.for_polling(polling) as fetcher:
            robots = RobotsPolicy(fetcher, polling.user_agent)
            harvester = Harvester(fetcher, robots, work)
            request = FeedRequest(feed_id=feed.id, url=feed.url)
            harvest = await harvester.harvest(Visit(feed.id, request, spec, utcnow(), feed.language, frozenset()))
            source_robots = (await robots.check(feed.url)).reason if spec.type != "rss" else None
            entries = []
            for candidate in harvest.candidates:
                said = None
                if candidate.full_text or candidate.page_error:
                    said = (await robots.check(candidate.entry.link)).reason if candidate.entry.link else None
                entries.append(CheckedEntry(candidate, said))
    return SourceCheck(feed, harvest, source_robots, tuple(entries))


def write_text(check: SourceCheck, out: IO[str]) -> None:
    feed, harvest = check.feed, check.harvest
    outcome = harvest.outcome
    out.write(f"source {feed.id} (type {feed.type}, full_text {feed.full_text}): {feed.url}\n")
    if check.source_robots:
        out.write(f"robots.txt: {check.source_robots}\n")
    status = f"HTTP {outcome.http_status}" if outcome.http_status else "no response"
    size = f", {len(outcome.body)} bytes" if outcome.body is not None else ""
    out.write(f"fetched: {status}{size} in {outcome.elapsed:.2f}s\n")
    error = outcome.error or harvest.error
    if error:
        out.write(f"error: {error}\n")
    for warning in harvest.warnings:
        out.write(f"warning: {warning}\n")
    out.write(
        f"entries: {harvest.entries} read, {len(check.entries)} would be stored, "
        f"{harvest.pages_fetched} article pages fetched, {harvest.deferred} left for later polls\n"
    )
    for number, checked in enumerate(check.entries, 1):
        candidate = checked.candidate
        entry, decision = candidate.entry, candidate.decision
        when = entry.published.strftime("%Y-%m-%d %H:%M UTC") + (" (first seen: no date given)" if entry.published_is_fallback else "")
        text = " ".join(entry.summary.split())
        kind = "full text from the page" if candidate.full_text else "the feed's own text"
        out.write(f"\n[{number}] {entry.title or '(no title)'}\n")
        out.write(f"    url: {entry.link or '-'}\n    published: {when}\n")
        if checked.robots:
            out.write(f"    robots.txt: {checked.robots}\n")
        if candidate.page_error:
            out.write(f"    page: {candidate.page_error}\n")
        out.write(f"    text ({kind}, {len(text)} chars): {text[:EXCERPT]}{'…' if len(text) > EXCERPT else ''}\n")
        verdict = f"flagged {decision.watch}" + (f", round {decision.round}" if decision.round else "") if decision.flagged else "not flagged"
        out.write(f"    relevance: {verdict}\n")


def write_json(check: SourceCheck, out: IO[str]) -> None:
    """One JSON object per entry, after one object describing the source."""
    harvest, outcome = check.harvest, check.harvest.outcome
    head = {
        "source": check.feed.id,
        "type": check.feed.type,
        "url": check.feed.url,
        "http_status": outcome.http_status,
        "error": outcome.error or harvest.error,
        "warnings": harvest.warnings,
        "robots": check.source_robots,
        "entries": harvest.entries,
        "pages_fetched": harvest.pages_fetched,
        "deferred": harvest.deferred,
    }
    out.write(json.dumps(head, ensure_ascii=False) + "\n")
    for checked in check.entries:
        candidate = checked.candidate
        entry, decision = candidate.entry, candidate.decision
        row = {
            "title": entry.title,
            "url": entry.link,
            "published": entry.published.isoformat(),
            "published_is_fallback": entry.published_is_fallback,
            "text": entry.summary,
            "full_text": candidate.full_text,
            "page_error": candidate.page_error,
            "robots": checked.robots,
            "flagged": decision.flagged,
            "watch": decision.watch,
            "round": decision.round,
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
