"""Repairing articles stored with text a bad charset may have garbled.

An entry whose title or summary holds U+FFFD for invalid bytes (or whose feed was decoded
against its declaration) is stored all the same, with `article.text_suspect` set: dropping it
would lose the news, and its decision may well be right. Suspect articles stay out of the
feed's known guids, so each poll classifies them again; when the feed sends the same guid
with clean text, the stored article takes the clean text, its decision, its dedup fingerprint
and features, in the transaction of that poll.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy import delete
from sqlmodel import Session, select

from monitor.models import Article, ArticleBand
from monitor.store.records import Incoming
from monitor.store.search import reindex_article
from monitor.store.stories import mark_story_flagged, story_of_storyless
from monitor.store.bulk import select_pairs

log = structlog.get_logger(__name__)


def repair(session: Session, items: Sequence[Incoming], rules_fingerprint: str) -> int:
    """Give every stored suspect article that reappears clean its clean text and decision;
    returns how many were repaired. Runs before the batch is inserted, which then sees them
    as already stored."""
    clean = {(item.feed_id, item.candidate.entry.guid): item for item in items if not item.candidate.entry.text_suspect}
    if not clean:
        return 0
    suspects: list[Article] = select_pairs(
        session, select(Article).where(Article.text_suspect.is_(True)), Article.feed_id, Article.guid, sorted(clean),  # type: ignore[arg-type, attr-defined]
    )
    repaired = 0
    for article in suspects:
        item = clean.get((article.feed_id, article.guid))
        if item is not None:
            _repair_one(session, article, item, rules_fingerprint)
            repaired += 1
    return repaired


def _repair_one(session: Session, article: Article, item: Incoming, rules_fingerprint: str) -> None:
    candidate = item.candidate
    entry, decision, features = candidate.entry, candidate.decision, candidate.features
    assert article.id is not None
    if not article.search_pending:  # a pending article is indexed later, with the text it has then
        reindex_article(session.connection(), article.id, (article.title, article.summary), (entry.title, entry.summary))
    article.title, article.summary, article.author = entry.title, entry.summary, entry.author
    article.fingerprint, article.features = features.fingerprint, candidate.features_blob
    article.flagged, article.watch, article.round = decision.flagged, decision.watch, decision.round
    article.score, article.decision = decision.score, candidate.decision_json
    article.rules_fingerprint = rules_fingerprint
    article.text_suspect = False
    session.add(article)
    assert article.id is not None
    # The garbled text's LSH bands would find near-copies of garble, not of the article.
    session.execute(delete(ArticleBand).where(ArticleBand.article_id == article.id))  # type: ignore[arg-type]
    session.add_all(
        ArticleBand(article_id=article.id, band=band, hash=value) for band, value in enumerate(features.band_hashes)
    )
    if decision.flagged:
        if article.story_id is None:
            article.story_id = story_of_storyless(session, article)
        mark_story_flagged(session, article.story_id, article, item.seen_at)
    log.info(
        "garbled article repaired from a clean poll",
        feed_id=article.feed_id,
        article_id=article.id,
        guid=article.guid,
        flagged=decision.flagged,
    )
