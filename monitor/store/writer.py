"""The batch writer: exact, near-duplicate and story decisions for new articles, written
with a few bulk inserts per batch (monitor.store.bulk)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, update
from sqlmodel import Session, select

from monitor import dedup
from monitor.dedup import ArticleFeatures, DedupConfig, StoryExtent
from monitor.models import AlertSent, Article, ArticleBand, DigestItem, Story
from monitor.store.bulk import insert_rows, select_in, select_pairs
from monitor.store.records import Candidate, Incoming, InsertOutcome
from monitor.store.stories import mark_story_flagged


@dataclass
class _Known:
    """A stored article as the dedup checks need it."""

    id: int
    story_id: int | None
    duplicate_of: int | None
    features: ArticleFeatures | None

    @property
    def original(self) -> int:
        return self.duplicate_of or self.id


@dataclass(eq=False)
class _StoryState:
    """A story the batch adds to, stored or started by the batch, with its extent (round,
    span, delivered) kept current as the batch's plans join it, so that a later plan of the
    same batch is judged against the story as it will be written."""

    extent: StoryExtent
    id: int | None = None  # None until a story started by this batch is inserted
    founder: _Plan | None = None  # the plan that starts it (None: a stored story)
    stored: StoryExtent | None = None  # the extent as read, to write back only what changed
    delivered_read: bool = True  # False: `extent.delivered` not read yet (see SqlDedup._admits)


@dataclass
class _Plan:
    """What will be written for one new article of a batch."""

    incoming: Incoming
    original: _Known | int | None  # stored original, index of an earlier batch article, or none
    story: _StoryState | None = None
    duplicate_of: int | None = None
    article_id: int | None = None
    referenced: bool = False  # a later plan of the batch copies this one

    @property
    def story_id(self) -> int | None:
        return self.story.id if self.story is not None else None

    @property
    def new_story(self) -> bool:
        return self.story is not None and self.story.founder is self

    @property
    def feed_id(self) -> str:
        return self.incoming.feed_id

    @property
    def candidate(self) -> Candidate:
        return self.incoming.candidate

    @property
    def seen_at(self) -> datetime:
        return self.incoming.seen_at

    @property
    def needs_story(self) -> bool:
        """Stories group what a digest shows, so only articles a watch flags or could flag
        (those with near-duplicate features) get one; the rest of the news stays storyless
        and costs one row, not three. `reclassify` creates the story if rules change."""
        return self.candidate.decision.flagged or bool(self.candidate.features.band_hashes)

    @property
    def key(self) -> tuple[str, str]:
        return self.feed_id, self.candidate.entry.guid

    def outcome(self) -> InsertOutcome:
        return InsertOutcome(stored=True, duplicate_of=self.duplicate_of, flagged=self.candidate.decision.flagged)


_STORY_COLUMNS = ("key", "first_seen_at", "watch", "round", "flagged_at", "score", "first_published_at", "last_published_at",
                  "event")
_ARTICLE_COLUMNS = (
    "feed_id", "guid", "link", "canonical_url", "fingerprint", "title",
    "summary", "author", "language", "published_at", "published_is_fallback",
    "first_seen_at", "rules_fingerprint", "features", "duplicate_of", "story_id",
    "flagged", "watch", "round", "score", "decision", "text_suspect",
    "source_type", "full_text", "page_error", "search_pending",
)


class SqlDedup:
    """Exact, near-duplicate and story checks for a batch of new articles (one or several
    feeds' polls), inside the batch's transaction. Each look-up is one indexed query for the
    whole batch (guids, canonical URLs, fingerprints, LSH band hashes), so its cost does not
    grow with the archive, and a second daemon sharing the database sees the same index.
    Articles of the same batch are checked against each other too (two feeds, or one feed,
    may carry two copies of one dispatch)."""

    def __init__(self, session: Session, config: DedupConfig):
        self.session = session
        self.config = config
        self._stories: dict[int, _StoryState] = {}  # stored stories read by this batch

    def insert_all(self, items: Sequence[Incoming], rules_fingerprint: str) -> list[InsertOutcome]:
        """Decide every new entry in memory, then write the batch with a few bulk inserts."""
        if not items:
            return []
        features = [item.candidate.features for item in items]
        seen_keys = self._stored_keys(items)
        seen_urls = self._stored_urls([f.canonical_url for f in features if f.canonical_url])
        by_fingerprint: dict[str, _Known | int] = dict(self._by_fingerprint([f.fingerprint for f in features]))
        by_band: dict[int, list[_Known | int]] = dict(self._by_band(features))  # type: ignore[arg-type]
        plans: list[_Plan | None] = []
        fresh: list[_Plan] = []
        for index, item in enumerate(items):
            feats = item.candidate.features
            key = (item.feed_id, item.candidate.entry.guid)
            if key in seen_keys or (feats.canonical_url and feats.canonical_url in seen_urls):
                plans.append(None)
                continue
            seen_keys.add(key)
            if feats.canonical_url:
                seen_urls.add(feats.canonical_url)
            original = by_fingerprint.get(feats.fingerprint)
            if original is not None and not self._copy_admitted(original, feats, plans):
                original = None
            if original is None:
                original = self._near_copy(feats, by_band, features, plans)
            plan = _Plan(item, original)
            self._assign_story(plan, plans, fresh)
            plans.append(plan)
            by_fingerprint.setdefault(feats.fingerprint, index)
            for value in feats.band_hashes:
                by_band.setdefault(value, []).append(index)
        self._write(plans, fresh, rules_fingerprint)
        return [plan.outcome() if plan else InsertOutcome(stored=False) for plan in plans]

    def _write(self, plans: list[_Plan | None], fresh: list[_Plan], rules_fingerprint: str) -> None:
        """Bulk inserts (bulk.insert_rows) of the batch's new stories, then its articles, then its
        band hashes. Article ids are read back (by feed+guid) only where something refers to
        them: a new story's headline, band rows, copies of an article of the same batch. The
        ORM's unit of work, or INSERT … RETURNING in parameter order (which SQLAlchemy runs
        row by row on SQLite), cost about 3 ms per article here."""
        active = [plan for plan in plans if plan is not None]
        self._insert_stories(fresh)
        for plan in active:
            if isinstance(plan.original, int):
                plans[plan.original].referenced = True  # type: ignore[union-attr]
        # Articles whose original is stored (or that have none) first; copies of an article
        # of this same batch need its id, so they follow in a second statement.
        for copies_of_batch in (False, True):
            chosen = [plan for plan in active if isinstance(plan.original, int) == copies_of_batch]
            for plan in chosen:
                if isinstance(plan.original, int):
                    source = plans[plan.original]
                    assert source is not None and source.article_id is not None
                    plan.duplicate_of = source.duplicate_of or source.article_id
                elif isinstance(plan.original, _Known):
                    plan.duplicate_of = plan.original.original
            if chosen:
                rows = [self._article_row(plan, rules_fingerprint) for plan in chosen]
                insert_rows(self.session.connection(), Article.__table__, _ARTICLE_COLUMNS, rows)  # type: ignore[attr-defined]
                self._read_article_ids(
                    [plan for plan in chosen if plan.new_story or plan.referenced or _indexed_for_copies(plan)]
                )
        headlines = [{"id": plan.story_id, "headline_article_id": plan.article_id} for plan in active if plan.new_story]
        if headlines:
            self.session.execute(update(Story), headlines)
        grown = [
            {"id": state.id, "round": state.extent.round, "watch": state.extent.watch, "event": state.extent.event,
             "first_published_at": state.extent.first_published, "last_published_at": state.extent.last_published}
            for state in self._stories.values()
            if state.extent != state.stored
        ]
        if grown:
            self.session.execute(update(Story), grown)
        for plan in active:
            decision = plan.candidate.decision
            if decision.flagged and plan.duplicate_of is None and not plan.new_story and plan.story_id is not None:
                mark_story_flagged(self.session, plan.story_id, decision, plan.seen_at)
        band_rows = [
            (plan.article_id, band, value)
            for plan in active
            if _indexed_for_copies(plan)
            for band, value in enumerate(plan.candidate.features.band_hashes)
        ]
        if band_rows:
            insert_rows(self.session.connection(), ArticleBand.__table__, ("article_id", "band", "hash"), band_rows)  # type: ignore[attr-defined]

    def _assign_story(self, plan: _Plan, plans: list[_Plan | None], fresh: list[_Plan]) -> None:
        """A copy joins its original's story; an independent write-up of a flagged event joins
        that event's story (stored, or started earlier in this batch) if the story as a whole
        admits it; anything else a watch could care about starts a story. Plans are decided in
        batch order, each against the stories as the earlier plans left them."""
        features = plan.candidate.features
        if isinstance(plan.original, int):
            plan.story = plans[plan.original].story  # type: ignore[union-attr]
        elif isinstance(plan.original, _Known) and plan.original.story_id is not None:
            plan.story = self._stories[plan.original.story_id]
        elif plan.needs_story:
            plan.story = self._matching_story(features) or self._matching_fresh_story(plan, fresh)
        if plan.story is None and not isinstance(plan.original, int) and plan.needs_story:
            plan.story = _StoryState(StoryExtent(), founder=plan)
            fresh.append(plan)
        if plan.story is not None:
            copy = plan.original is not None and plan.story.founder is not plan
            plan.story.extent = plan.story.extent.with_member(features, copy=copy)

    def _insert_stories(self, fresh: list[_Plan]) -> None:
        if not fresh:
            return
        rows = [self._story_row(plan) for plan in fresh]
        insert_rows(self.session.connection(), Story.__table__, _STORY_COLUMNS, rows)  # type: ignore[attr-defined]
        keys = [row[0] for row in rows]
        ids = dict(select_in(self.session, lambda among: select(Story.key, Story.id).where(among(Story.key)), keys))  # type: ignore[arg-type]
        for plan, key in zip(fresh, keys, strict=True):
            assert plan.story is not None
            plan.story.id = ids[key]

    def _matching_fresh_story(self, plan: _Plan, fresh: list[_Plan]) -> _StoryState | None:
        features = plan.candidate.features
        if features.watch is None:
            return None
        for founder in fresh:
            story = founder.story
            assert story is not None
            if dedup.same_story(features, founder.candidate.features, self.config) and dedup.story_admits(
                story.extent, features, self.config
            ):
                return story
        return None

    def _copy_admitted(self, original: _Known | int, features: ArticleFeatures, plans: list[_Plan | None]) -> bool:
        """A text that nearly copies a member of a story stating another round is not a copy
        of it (see dedup.story_admits)."""
        if isinstance(original, int):
            story = plans[original].story  # type: ignore[union-attr]
        else:
            story = self._stories.get(original.story_id) if original.story_id is not None else None
        return story is None or self._admits(story, features, copy=True)

    @staticmethod
    def _story_columns() -> tuple:
        """What the look-ups of stored articles also read of each one's story (outer-joined
        by primary key), so that deciding against the whole story costs no statement of its
        own. Whether it was delivered is read apart, only where it decides (see _admits)."""
        return (Story.round.label("story_round"), Story.first_published_at, Story.last_published_at,  # type: ignore[attr-defined]
                Story.watch.label("story_watch"), Story.event.label("story_event"))  # type: ignore[attr-defined]

    def _remember_story(self, row: Any) -> None:
        """Keep the extent of a stored article's story as read by this batch (the first read
        wins: later reads in the batch would miss what the batch's plans added to it)."""
        if row.story_id is not None and row.story_id not in self._stories:
            extent = StoryExtent(row.story_round, row.first_published_at, row.last_published_at, watch=row.story_watch,
                                 event=row.story_event)
            self._stories[row.story_id] = _StoryState(extent, id=row.story_id, stored=extent, delivered_read=False)

    def _admits(self, story: _StoryState, features: ArticleFeatures, *, copy: bool = False) -> bool:
        """dedup.story_admits, reading first whether a stored story was delivered when that
        can change the answer: only for an article stating a round the story has not stated.
        (An EXISTS per candidate row in the look-ups cost 5% of store_bench's throughput.)"""
        if not story.delivered_read and features.round is not None and story.extent.round is None:
            assert story.id is not None
            delivered = self.session.exec(
                select(
                    or_(
                        exists().where(DigestItem.story_id == story.id),  # type: ignore[arg-type]
                        exists().where(AlertSent.story_id == story.id),  # type: ignore[arg-type]
                    )
                )
            ).one()
            story.extent = replace(story.extent, delivered=bool(delivered))
            story.stored = replace(story.stored, delivered=bool(delivered)) if story.stored is not None else None
            story.delivered_read = True
        return dedup.story_admits(story.extent, features, self.config, copy=copy)

    def _read_article_ids(self, plans: list[_Plan]) -> None:
        if not plans:
            return
        rows = select_pairs(
            self.session, select(Article.feed_id, Article.guid, Article.id), Article.feed_id, Article.guid,  # type: ignore[arg-type]
            sorted({plan.key for plan in plans}),
        )
        ids = {(feed_id, guid): article_id for feed_id, guid, article_id in rows}
        for plan in plans:
            plan.article_id = ids[plan.key]

    @staticmethod
    def _story_row(plan: _Plan) -> tuple:
        """The values of _STORY_COLUMNS, in that order: the extent is final, since every plan
        of the batch was decided before stories are inserted."""
        decision, extent = plan.candidate.decision, plan.story.extent  # type: ignore[union-attr]
        flagged_at = plan.seen_at if decision.flagged else None
        score = decision.score if decision.flagged else 0.0
        return (uuid.uuid4().hex, plan.seen_at, extent.watch, extent.round, flagged_at, score,
                extent.first_published, extent.last_published, extent.event)

    @staticmethod
    def _article_row(plan: _Plan, rules_fingerprint: str) -> tuple:
        """The values of _ARTICLE_COLUMNS, in that order."""
        entry, features, decision = plan.candidate.entry, plan.candidate.features, plan.candidate.decision
        return (
            plan.feed_id, entry.guid, entry.link, features.canonical_url, features.fingerprint, entry.title,
            entry.summary, entry.author, features.language or entry.language, entry.published, entry.published_is_fallback,
            plan.seen_at, rules_fingerprint, plan.candidate.features_blob, plan.duplicate_of, plan.story_id,
            decision.flagged, decision.watch, decision.round, decision.score, plan.candidate.decision_json,
            entry.text_suspect, plan.candidate.source_type, plan.candidate.full_text, plan.candidate.page_error,
            True,  # indexed for search after the pass (monitor.store.search.catch_up)
        )

    def _stored_keys(self, items: Sequence[Incoming]) -> set[tuple[str, str]]:
        rows = select_pairs(
            self.session, select(Article.feed_id, Article.guid), Article.feed_id, Article.guid,  # type: ignore[arg-type]
            sorted({(item.feed_id, item.candidate.entry.guid) for item in items}),
        )
        return {(feed_id, guid) for feed_id, guid in rows}

    def _stored_urls(self, urls: list[str]) -> set[str]:
        rows = select_in(
            self.session,
            lambda among: select(Article.canonical_url).where(among(Article.canonical_url)),  # type: ignore[arg-type]
            sorted(set(urls)),
        )
        return set(rows)

    def _by_fingerprint(self, fingerprints: list[str]) -> dict[str, _Known]:
        rows = select_in(
            self.session,
            lambda among: select(Article.id, Article.story_id, Article.duplicate_of, Article.fingerprint, *self._story_columns())
            .outerjoin(Story, Story.id == Article.story_id)  # type: ignore[arg-type]
            .where(among(Article.fingerprint))  # type: ignore[arg-type]
            .order_by(Article.id),
            sorted(set(fingerprints)),
        )
        found: dict[str, _Known] = {}
        for row in rows:  # a fingerprint's rows come from one chunk, oldest first
            self._remember_story(row)
            found.setdefault(row.fingerprint, _Known(row.id, row.story_id, row.duplicate_of, None))
        return found

    def _by_band(self, features: list[ArticleFeatures]) -> dict[int, list[_Known]]:
        """Stored originals sharing at least one LSH band value with any article of the batch.
        Band values are band-specific (the band number is mixed in), so one IN list on the
        indexed hash column finds them (joining the article there made PostgreSQL scan and
        hash the article table while its statistics were those of an empty table, in the
        first pass of a new database). Copies are left out (since #13 they get no band rows;
        older databases have some): a copy of a copy is a copy of the original, and fetching
        every stored copy of a syndicated article made each new one cost more than the last
        (poll_bench's farm at 2,000 feeds: hundreds of copies of each relevant article)."""
        values = sorted({value for f in features for value in f.band_hashes})
        if not values:
            return {}
        hits = select_in(
            self.session, lambda among: select(ArticleBand.article_id, ArticleBand.hash).where(among(ArticleBand.hash)), values,  # type: ignore[arg-type]
        )
        if not hits:
            return {}
        ids = sorted({hit.article_id for hit in hits})
        rows = select_in(  # the originals among them: a hit on a copy's band is dropped below
            self.session,
            lambda among: select(Article.id, Article.story_id, Article.duplicate_of, Article.features, *self._story_columns())
            .outerjoin(Story, Story.id == Article.story_id)  # type: ignore[arg-type]
            .where(among(Article.id), Article.duplicate_of.is_(None)),  # type: ignore[arg-type, union-attr]
            ids,
        )
        for row in rows:
            self._remember_story(row)
        known = {
            row.id: _Known(row.id, row.story_id, row.duplicate_of, dedup.features_from_bytes(row.features) if row.features else None)
            for row in rows
        }
        by_band: dict[int, list[_Known]] = {}
        for hit in hits:
            if hit.article_id in known:
                by_band.setdefault(hit.hash, []).append(known[hit.article_id])
        return by_band

    def _near_copy(
        self,
        features: ArticleFeatures,
        by_band: dict[int, list[_Known | int]],
        batch: Sequence[ArticleFeatures],
        plans: list[_Plan | None],
    ) -> _Known | int | None:
        """The earliest article this one nearly copies: a stored one (`_Known`, by id) before
        an earlier one of this batch (its index)."""
        stored: dict[int, _Known] = {}
        earlier: set[int] = set()
        for value in features.band_hashes:
            for hit in by_band.get(value, ()):
                if isinstance(hit, int):
                    earlier.add(hit)
                else:
                    stored[hit.id] = hit
        for article_id in sorted(stored):
            known = stored[article_id]
            if known.features is not None and dedup.is_near_duplicate(features, known.features, self.config):
                if self._copy_admitted(known, features, plans):
                    return known
        for index in sorted(earlier):
            if dedup.is_near_duplicate(features, batch[index], self.config) and self._copy_admitted(index, features, plans):
                return index
        return None

    def _matching_story(self, features: ArticleFeatures) -> _StoryState | None:
        """An independent write-up of an event joins the story of an earlier flagged article,
        if that story as a whole admits it (dedup.story_admits): the scan goes on past a
        similar article whose story refuses it, and stops at the first story that admits."""
        if features.watch is None:
            return None
        window = self.config.story_window
        query = (
            select(Article.story_id, Article.features, *self._story_columns())
            .outerjoin(Story, Story.id == Article.story_id)  # type: ignore[arg-type]
            .where(Article.watch == features.watch, Article.flagged.is_(True))  # type: ignore[attr-defined]
            .where(Article.published_at >= features.published - window)
            .where(Article.published_at <= features.published + window)
            .order_by(Article.id)
            .limit(500)
        )
        refused: set[int] = set()
        for row in self.session.exec(query):
            if row.features is None or row.story_id is None or row.story_id in refused:
                continue
            if dedup.same_story(features, dedup.features_from_bytes(row.features), self.config):
                self._remember_story(row)
                story = self._stories[row.story_id]
                if self._admits(story, features):
                    return story
                refused.add(row.story_id)
        return None

def _indexed_for_copies(plan: _Plan) -> bool:
    """Whether the article's band hashes are stored: an original's, where later near-copies
    look (SqlDedup._by_band)."""
    return bool(plan.candidate.features.band_hashes) and plan.duplicate_of is None
