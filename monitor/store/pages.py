"""Article pages: which entries are stored already (their page is never fetched again) and
how often a page has failed for a passing reason (monitor.harvest retries it a few polls)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlmodel import Session, select

from monitor.dedup import canonical_url
from monitor.models import Article, PageAttempt
from monitor.sources.parse import ParsedEntry
from monitor.store.engine import Database
from monitor.store.records import PollResult
from monitor.store.bulk import select_in


class PageStore(Database):
    def stored_entries(self, feed_id: str, entries: Sequence[ParsedEntry]) -> set[str]:
        """The guids among `entries` that need no page: stored for this feed, or their
        article (same canonical URL) stored from any source, with or without its page."""
        if not entries:
            return set()
        by_url = {canonical_url(e.link): e.guid for e in entries if e.link}
        guids = sorted({e.guid for e in entries})
        with self.session() as session:
            stored = set(
                select_in(
                    session,
                    lambda among: select(Article.guid).where(Article.feed_id == feed_id, among(Article.guid)),  # type: ignore[arg-type]
                    guids,
                )
            )
            urls = select_in(
                session,
                lambda among: select(Article.canonical_url).where(among(Article.canonical_url)),  # type: ignore[arg-type]
                sorted(by_url),
            )
        return stored | {by_url[url] for url in urls}

    def page_attempts(self, feed_id: str, guids: Sequence[str]) -> dict[str, int]:
        with self.session() as session:
            rows = select_in(
                session,
                lambda among: select(PageAttempt.guid, PageAttempt.attempts).where(
                    PageAttempt.feed_id == feed_id, among(PageAttempt.guid)  # type: ignore[arg-type]
                ),
                sorted(set(guids)),
            )
        return {guid: attempts for guid, attempts in rows}


def record_page_attempts(session: Session, results: Sequence[PollResult]) -> None:
    """In the poll's transaction: count this poll's passing page failures, and forget the
    attempts of entries now stored. The feed is leased to this poll, so no other writer
    touches its rows meanwhile. Only feeds with attempts on record are looked at: a page
    fails for a passing reason rarely, and a DELETE per feed and poll cost the writer thread
    ~0.25 s per 500 feeds of a cold pass."""
    feed_ids = sorted({result.feed.id for result in results if result.candidates})
    with_attempts = set(
        select_in(session, lambda among: select(PageAttempt.feed_id).where(among(PageAttempt.feed_id)).distinct(), feed_ids)  # type: ignore[arg-type]
    )
    for result in results:
        stored = [c.entry.guid for c in result.candidates]
        if stored and result.feed.id in with_attempts:
            for start in range(0, len(stored), 900):
                session.execute(
                    delete(PageAttempt)
                    .where(
                        PageAttempt.feed_id == result.feed.id,  # type: ignore[arg-type]
                        PageAttempt.guid.in_(stored[start : start + 900]),  # type: ignore[attr-defined]
                    )
                    .execution_options(synchronize_session=False)
                )
        for guid, error in result.page_failures:
            row = session.get(PageAttempt, (result.feed.id, guid))
            if row is None:
                row = PageAttempt(feed_id=result.feed.id, guid=guid, attempts=0, last_attempt_at=result.fetched_at)
            row.attempts += 1
            row.last_error = error
            row.last_attempt_at = result.fetched_at
            session.add(row)
