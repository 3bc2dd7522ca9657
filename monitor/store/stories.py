"""Story rows as articles change: a story becomes due when a member is first flagged, and an
article stored without a story gets one when rules (or a repaired text) flag it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session

from monitor.models import Article, Story
from monitor.relevance import Decision


def story_of_storyless(session: Session, article: Article) -> int:
    """Articles no watch could flag were stored without a story; one that new rules flag
    joins its original's story, or starts one (which its original joins too)."""
    original = session.get(Article, article.duplicate_of) if article.duplicate_of else None
    if original is not None and original.story_id is not None:
        return original.story_id
    headline = original or article
    story = Story(key=uuid.uuid4().hex, first_seen_at=headline.first_seen_at, headline_article_id=headline.id,
                  round=headline.round if headline.round is not None else article.round,
                  first_published_at=headline.published_at, last_published_at=headline.published_at)
    session.add(story)
    session.flush()
    assert story.id is not None
    if original is not None:
        original.story_id = story.id
        session.add(original)
    return story.id


def mark_story_flagged(session: Session, story_id: int, decision: Decision | Article, now: datetime) -> None:
    """A story becomes due for digests the moment its first member is flagged."""
    story = session.get(Story, story_id)
    if story is None:
        return
    if story.flagged_at is None:
        story.flagged_at = now
        story.watch = decision.watch
    if story.round is None:
        story.round = decision.round  # the story's one stated round (dedup.story_admits)
    story.score = max(story.score, decision.score)
    session.add(story)
