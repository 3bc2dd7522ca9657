"""Articles: recording polls (each feed all-or-nothing, many feeds per transaction) and
re-applying changed rules to what is stored."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlmodel import Session, select

from monitor.dedup import DedupConfig
from monitor.models import Article, Feed, utcnow
from monitor.relevance import Decision, RuleSet
from monitor.store.engine import Database
from monitor.store.feeds import lost_leases, update_feeds
from monitor.store.pages import record_page_attempts
from monitor.store.records import Incoming, PollResult, StoredPoll, decision_json
from monitor.store.repair import repair
from monitor.store.stories import mark_story_flagged, story_of_storyless
from monitor.store.writer import SqlDedup

log = structlog.get_logger(__name__)


class ArticleStore(Database):
    """Recording polls and reclassifying stored articles."""


    def record_poll(self, result: PollResult) -> StoredPoll:
        """Commit one feed's poll, its new articles and the feed's new state together."""
        with self.session() as session:
            stored = self._record(session, [result])
            session.commit()
        self._log_redirects([result])
        return stored[0]

    def record_polls(self, results: Sequence[PollResult]) -> list[StoredPoll | Exception]:
        """Commit several feeds' polls in one transaction (a group commit: the statements and
        the commit cost the same for one feed or fifty). Each feed stays all-or-nothing: a
        crash rolls back whole feeds, and if recording fails, each feed is recorded again in a
        transaction of its own so that only the failing feed gets the exception."""
        try:
            with self.session() as session:
                stored: list[StoredPoll | Exception] = list(self._record(session, results))
                session.commit()
        except Exception:
            if len(results) == 1:
                raise
            log.warning("group commit failed; recording its feeds one by one", feeds=len(results), exc_info=True)
            return [self._record_alone(result) for result in results]
        self._log_redirects(results)
        return stored

    def _record_alone(self, result: PollResult) -> StoredPoll | Exception:
        try:
            return self.record_poll(result)
        except Exception as exc:  # handed to the caller of this feed only
            return exc

    @staticmethod
    def _record(session: Session, results: Sequence[PollResult]) -> list[StoredPoll]:
        feed_ids = {result.feed.id for result in results}
        missing = feed_ids - set(session.exec(select(Feed.id).where(Feed.id.in_(feed_ids))))  # type: ignore[attr-defined]
        if missing:
            raise LookupError(f"feeds not in the database: {', '.join(sorted(missing))}")
        lost = lost_leases(session, results)
        everything = [StoredPoll(lease_lost=result.feed.id in lost) for result in results]
        results = [result for result in results if result.feed.id not in lost]  # stale: written by nobody
        stored = [poll for poll in everything if not poll.lease_lost]
        batches: dict[tuple[str, DedupConfig], list[tuple[int, Incoming]]] = {}
        for position, result in enumerate(results):
            batch = batches.setdefault((result.rules_fingerprint, result.dedup_config), [])
            batch.extend((position, Incoming(result.feed.id, c, result.fetched_at)) for c in result.candidates)
        for (rules_fingerprint, dedup_config), batch in batches.items():
            incoming = [item for _, item in batch]
            repair(session, incoming, rules_fingerprint)
            outcomes = SqlDedup(session, dedup_config).insert_all(incoming, rules_fingerprint)
            for (position, _), outcome in zip(batch, outcomes, strict=True):
                stored[position].add(outcome)
        update_feeds(session, results, stored)
        record_page_attempts(session, results)
        for result, poll in zip(results, stored, strict=True):
            if poll.new:
                log.debug("articles stored", feed_id=result.feed.id, new=poll.new, flagged=poll.flagged)
        return everything

    @staticmethod
    def _log_redirects(results: Sequence[PollResult]) -> None:
        for result in results:
            if result.outcome.permanent_redirect:
                log.info(
                    "feed moved permanently",
                    feed_id=result.feed.id,
                    old_url=result.feed.url,
                    new_url=result.outcome.permanent_redirect,
                )

    def reclassify(self, rules: RuleSet, *, all_articles: bool = False, batch: int = 500) -> int:
        """Apply the current rules to stored articles decided under other rules."""
        changed = 0
        last_id = 0
        while True:
            with self.session() as session:
                query = select(Article).where(Article.id > last_id).order_by(Article.id).limit(batch)  # type: ignore[operator]
                if not all_articles:
                    query = query.where(Article.rules_fingerprint != rules.fingerprint)
                rows = session.exec(query).all()
                if not rows:
                    return changed
                for row in rows:
                    decision = rules.classify(row.title, row.summary)
                    if _set_decision(row, decision, rules.fingerprint):
                        changed += 1
                    session.add(row)
                    if decision.flagged:
                        if row.story_id is None:
                            row.story_id = story_of_storyless(session, row)
                        mark_story_flagged(session, row.story_id, row, utcnow())
                    last_id = row.id or last_id
                session.commit()


def _decision_columns(decision: Decision) -> dict[str, object]:
    return {
        "flagged": decision.flagged,
        "watch": decision.watch,
        "round": decision.round,
        "score": decision.score,
        "decision": decision_json(decision.to_json_dict()),
    }


def _set_decision(row: Article, decision: Decision, rules_fingerprint: str) -> bool:
    before = (row.flagged, row.watch, row.round)
    for key, value in _decision_columns(decision).items():
        setattr(row, key, value)
    row.rules_fingerprint = rules_fingerprint
    return before != (row.flagged, row.watch, row.round)
