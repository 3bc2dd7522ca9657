"""A story as its reader sees it: headed by a write-up in the digest's language (#10 §2),
the other outlets of both languages listed, an excerpt with the matched terms.

Read-only: one digest's items cost a handful of queries whatever its size (the feeds once,
the stories' members a few hundred stories per query). The building and sending of digests
around it is monitor.notify; their rendering, monitor.digest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from sqlalchemy.orm import defer
from sqlmodel import Session, select

from monitor.config import Config
from monitor.digest import DigestItem, Outlet
from monitor.digest_labels import article_language, aware
from monitor.models import Article, Feed, Story
from monitor.relevance import WatchConfig

EXCERPT_CHARS = 420
SUBSTANTIAL_SUMMARY = 200  # characters of a feed's own text that make it a write-up, not a teaser


def story_headline(session: Session, story: Story) -> Article:
    article = session.get(Article, story.headline_article_id) if story.headline_article_id else None
    if article is None or not article.flagged:
        article = session.exec(
            select(Article).where(Article.story_id == story.id, Article.flagged.is_(True)).order_by(Article.id)  # type: ignore[attr-defined]
        ).first()
    assert article is not None, f"story {story.id} is flagged but has no flagged article"
    return article


MEMBERS_PER_QUERY = 500  # stories whose members one query loads (bound parameters stay few)


def digest_items(session: Session, config: Config, stories: Sequence[Story], language: str = "ar") -> list[DigestItem]:
    """Each story as a reader of `language` sees it. The feeds are read once and the stories'
    members a few hundred stories per query, so a digest costs a handful of queries, not
    three per story."""
    feeds = {feed.id: feed for feed in session.exec(select(Feed))}
    members: dict[int, list[Article]] = {}
    ids = [story.id for story in stories if story.id is not None]
    for offset in range(0, len(ids), MEMBERS_PER_QUERY):
        query = (
            select(Article)
            .where(Article.story_id.in_(ids[offset : offset + MEMBERS_PER_QUERY]))  # type: ignore[union-attr]
            .order_by(Article.published_at, Article.id)  # type: ignore[arg-type]
            .options(defer(Article.features))  # type: ignore[arg-type]  (dedup's blob, not shown)
        )
        for article in session.exec(query):
            members.setdefault(article.story_id, []).append(article)  # type: ignore[arg-type]
    return [_digest_item(session, config, story, language, feeds, members.get(story.id, [])) for story in stories]  # type: ignore[arg-type]


def _digest_item(
    session: Session, config: Config, story: Story, language: str, feeds: dict[str, Feed], members: list[Article]
) -> DigestItem:
    """The story headed by a write-up in `language` when it has one (its link, source and
    excerpt with it), the other outlets listed across both languages, each with the language
    it wrote in. `members` are the story's articles in order of publication."""
    headline = next((m for m in members if m.id == story.headline_article_id and m.flagged), None)
    if headline is None:
        headline = min((m for m in members if m.flagged), key=lambda m: m.id or 0, default=None) or story_headline(session, story)

    def language_of(article: Article) -> str:
        feed = feeds.get(article.feed_id)
        return article_language(article.language or (feed.language if feed else None), article.title)

    chosen = _in_language(headline, members, language, language_of)
    names = {feed_id: feed.name or feed_id for feed_id, feed in feeds.items()}
    others: dict[str, Outlet] = {}
    for member in members:
        name = names.get(member.feed_id, member.feed_id)
        if member.id != chosen.id and member.feed_id != chosen.feed_id and name not in others:
            others[name] = Outlet(name=name, language=language_of(member))
    decision = json.loads(chosen.decision)
    excerpt, highlights = _excerpt(chosen.summary, decision.get("matches", []))
    topics = decision.get("topics") or (json.loads(headline.decision).get("topics", []) if chosen is not headline else [])
    watch_id = headline.watch or story.watch or ""
    watch = next((w for w in config.watches if w.id == watch_id), None)
    return DigestItem(
        story_id=story.key,
        headline=chosen.title,
        url=chosen.link,
        source=names.get(chosen.feed_id, chosen.feed_id),
        published=chosen.published_at,
        watch=watch_id,
        watch_title=watch_title(watch, language) if watch else watch_id,
        round=chosen.round if chosen.round is not None else (headline.round if headline.round is not None else story.round),
        topics=tuple(topics),
        excerpt=excerpt,
        highlights=highlights,
        also_reported_by=tuple(others.values()),
        more_outlets=max(0, len(members) - 1 - len(others)),
        language=language_of(chosen),
        round_word=getattr(watch.round_word, language, "") if watch else "",
    )


def _in_language(headline: Article, members: Sequence[Article], language: str, language_of: Callable[[Article], str]) -> Article:
    """The story's headline article if it is in `language`; else its best write-up in it: an
    independent one (not a near-copy), flagged, with a text (extracted from its page, or a
    summary of some length), the earliest, the longest; else the headline as it is."""
    if language_of(headline) == language:
        return headline
    candidates = [member for member in members if language_of(member) == language]
    if not candidates:
        return headline
    return min(
        candidates,
        key=lambda a: (
            a.duplicate_of is not None,
            not a.flagged,
            not (a.full_text or len(a.summary) >= SUBSTANTIAL_SUMMARY),
            aware(a.published_at),
            -len(a.summary),
            a.id or 0,
        ),
    )


def watch_title(watch: WatchConfig, language: str) -> str:
    return (watch.title_en if language == "en" else "") or watch.title or watch.id


def _excerpt(text: str, matches: Sequence[dict]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The start of the body, cut at a word boundary, with the matched terms inside it."""
    if len(text) <= EXCERPT_CHARS:
        excerpt = text
    else:
        cut = text.rfind(" ", 0, EXCERPT_CHARS)
        excerpt = text[: cut if cut > 0 else EXCERPT_CHARS] + " …"
    limit = len(excerpt)
    spans = sorted(
        {(m["start"], m["end"]) for m in matches if m.get("field") == "body" and m["end"] <= limit and m["start"] < m["end"]}
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            continue  # overlapping highlights would nest <mark> tags
        merged.append((start, end))
    return excerpt, tuple(merged)
